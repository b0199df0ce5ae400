"""FeatureStore: hits, misses, invalidation, point-in-time reads, corruption, gc, manifest, CLI."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from intradayjules.config import FeaturesConfig, SyntheticConfig
from intradayjules.data.fingerprint import data_fingerprint
from intradayjules.data.synthetic import generate
from intradayjules.features import indicators
from intradayjules.features.pipeline import compute_features
from intradayjules.features.store import CorruptEntry, FeatureStore

SYN = SyntheticConfig(n_symbols=3, days=8, seed=3)
CFG = FeaturesConfig(adv_days=3)


@pytest.fixture(scope="module")
def small():
    return generate(SYN).bars


@pytest.fixture()
def store(tmp_path):
    return FeatureStore(tmp_path / "fs")


def _counting(bars):
    calls = []

    def load():
        calls.append(1)
        return bars

    return load, calls


def test_miss_then_hit_without_loading_or_recomputing(store, small):
    fp = data_fingerprint(source=SYN)
    load, calls = _counting(small)
    a, key, hit = store.get_or_build(load, fp, CFG)
    assert not hit and len(calls) == 1
    pd.testing.assert_frame_equal(a, compute_features(small.frame, CFG), check_exact=True)
    b, key2, hit = store.get_or_build(load, fp, CFG)
    assert hit and key2 == key and len(calls) == 1  # the bars were not even loaded
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert store.keys() == [key]


def test_any_input_change_is_a_new_entry(store, small, monkeypatch):
    fp = data_fingerprint(source=SYN)
    _, k0, _ = store.get_or_build(small, fp, CFG)
    variants = {
        "config": dict(cfg=FeaturesConfig(adv_days=3, rsi_window=10)),
        "fingerprint": dict(fingerprint=data_fingerprint(source=SYN.model_copy(update={"seed": 4}))),
        "symbols": dict(symbols=["LQ01", "MD01"]),
        "range": dict(start="2025-01-06"),
        "calendar": dict(calendar="XNAS"),
    }
    keys = {k0}
    for name, kw in variants.items():
        args = dict(fingerprint=fp, cfg=CFG) | kw
        key = store.key_for(args.pop("fingerprint"), args.pop("cfg"), **args)
        assert key not in keys, name
        keys.add(key)
    # settings that do not change a value do not change the key
    assert store.key_for(fp, FeaturesConfig(adv_days=3, lookback=9, store_dir="elsewhere")) == k0
    # an indicator's code version is part of the key: bumping it invalidates the entries using it
    monkeypatch.setitem(indicators.VERSIONS, "amihud", indicators.VERSIONS["amihud"] + 1)
    load, calls = _counting(small)
    _, k1, hit = store.get_or_build(load, fp, CFG)
    assert k1 != k0 and not hit and len(calls) == 1


def test_range_and_symbols_point_in_time(store, small):
    fp = data_fingerprint(source=SYN)
    full, kfull, _ = store.get_or_build(small, fp, CFG)
    sessions = sorted(full["session"].unique())
    start, end = sessions[2], sessions[5]
    part, kpart, hit = store.get_or_build(small, fp, CFG, symbols=["md01", "IL01"], start=start, end=end)
    assert not hit and kpart != kfull
    assert set(part["symbol"]) == {"MD01", "IL01"}
    assert part["session"].min() == start and part["session"].max() == end
    # values in a range equal the full run's (history before `start` is used, nothing after `end`)
    want = full[full["symbol"].isin(["MD01", "IL01"]) & full["session"].between(start, end)]
    pd.testing.assert_frame_equal(part, want.reset_index(drop=True), check_exact=True)
    # get: only rows inside the requested range and symbols
    got = store.get(kfull, symbols=["LQ01"], start=sessions[3], end=sessions[3])
    assert set(got["symbol"]) == {"LQ01"} and set(got["session"]) == {sessions[3]}
    assert len(got) == ((full["symbol"] == "LQ01") & (full["session"] == sessions[3])).sum()
    spec = dict(fingerprint=fp, cfg=CFG, symbols=["IL01", "MD01"], start=start, end=end)
    pd.testing.assert_frame_equal(store.get(spec), part, check_exact=True)
    with pytest.raises(KeyError):
        store.get(store.key_for("0" * 32, CFG))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_corrupted_entry_is_detected_and_rebuilt(store, small, damage):
    fp = data_fingerprint(source=SYN)
    a, key, _ = store.get_or_build(small, fp, CFG)
    path = store.root / "entries" / key / "data.parquet"
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        b = bytearray(raw)
        b[len(b) // 2] ^= 0xFF
        path.write_bytes(bytes(b))
    else:
        path.unlink()
    with pytest.raises(CorruptEntry):
        store.get(key)
    assert store.info(key)["status"].startswith("corrupt")
    load, calls = _counting(small)
    with pytest.warns(UserWarning, match=f"entry {key} is corrupt"):
        b2, key2, hit = store.get_or_build(load, fp, CFG)
    assert key2 == key and not hit and len(calls) == 1
    pd.testing.assert_frame_equal(a, b2, check_exact=True)
    assert path.read_bytes() == raw  # deterministic rebuild, same bytes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, hit = store.get_or_build(load, fp, CFG)
    assert hit and store.info(key)["status"] == "ok"


def test_scaler_stored_with_entry(store, small):
    fp = data_fingerprint(source=SYN)
    frame, key, _ = store.get_or_build(small, fp, CFG)
    days = sorted(frame["session"].unique())[:5]
    sc = store.scaler(key, days)
    files = list((store.root / "entries" / key).glob("scaler-*.json"))
    assert len(files) == 1
    assert store.scaler(key, days) == sc
    other = store.scaler(key, sorted(frame["session"].unique())[:6])
    assert other != sc and len(list((store.root / "entries" / key).glob("scaler-*.json"))) == 2


def test_manifest_sql_and_gc(store, small):
    fp = data_fingerprint(source=SYN)
    keys = [store.get_or_build(small, fp, FeaturesConfig(adv_days=3, vol_window=w))[1] for w in (5, 6, 7)]
    m = store.manifest()
    assert set(m["key"]) == set(keys) and (m["rows"] > 0).all()
    assert store.sql("SELECT count(*) AS n FROM entries WHERE n_symbols = 3")["n"].iloc[0] == 3
    store.get(keys[0])  # most recently used now
    removed = store.gc(keep_last=1)
    assert set(removed) == set(keys[1:]) and store.keys() == [keys[0]]
    assert store.gc(keep_last=0) == [keys[0]] and store.keys() == []
    assert store.manifest().empty


def test_cli_build_ls_info_gc(tmp_path):
    from typer.testing import CliRunner

    from intradayjules.cli.features_cmd import app

    cfg = tmp_path / "cfg.yaml"
    root = tmp_path / "store"
    cfg.write_text(f"name: t\ndata:\n  synthetic: {{n_symbols: 3, days: 8, seed: 3}}\n"
                   f"features:\n  adv_days: 3\n  store_dir: {root}\n")
    r = CliRunner()
    first = r.invoke(app, ["build", "--config", str(cfg)])
    assert first.exit_code == 0, first.output
    assert "miss" in first.output
    second = r.invoke(app, ["build", "--config", str(cfg)])
    assert second.exit_code == 0 and "hit" in second.output and "miss" not in second.output
    key = second.output.split()[1]
    ls = r.invoke(app, ["ls", "--store", str(root)])
    assert ls.exit_code == 0 and key in ls.output and "1 entries" in ls.output
    info = r.invoke(app, ["info", key[:8], "--store", str(root)])
    assert info.exit_code == 0
    rec = json.loads(info.output)
    assert rec["key"] == key and rec["status"] == "ok" and len(rec["scalers"]) == 1
    gc = r.invoke(app, ["gc", "--keep-last", "0", "--store", str(root)])
    assert gc.exit_code == 0 and f"deleted {key}" in gc.output
    missing = r.invoke(app, ["info", "abc", "--store", str(root)])
    assert missing.exit_code == 1


def test_hits_are_isolated_copies_and_cache_can_be_off(tmp_path, small):
    fp = data_fingerprint(source=SYN)
    store = FeatureStore(tmp_path / "fs")
    built, key, _ = store.get_or_build(small, fp, CFG)
    want = built.copy(deep=True)
    built.loc[0, "rsi_14"] = -1.0  # a caller editing its result must not change what others get
    a, _, hit = store.get_or_build(small, fp, CFG)
    assert hit
    pd.testing.assert_frame_equal(a, want, check_exact=True)
    a.loc[:, "vwap_dev"] = 0.0
    pd.testing.assert_frame_equal(store.get(key), want, check_exact=True)
    cold = FeatureStore(tmp_path / "fs", memory_cache_mb=0)  # always decodes from disk
    pd.testing.assert_frame_equal(cold.get(key), want, check_exact=True)


@pytest.mark.parametrize("offset", [0.25, 0.5, 0.9])
def test_corruption_is_caught_while_decoding_without_the_memory_cache(tmp_path, small, offset):
    """The CRC runs beside the Parquet decode: a damaged file is refused whether or not Arrow can decode
    it, and no table from it is returned."""
    fp = data_fingerprint(source=SYN)
    st = FeatureStore(tmp_path / "fs", memory_cache_mb=0)
    _, key, _ = st.get_or_build(small, fp, CFG)
    path = st.root / "entries" / key / "data.parquet"
    b = bytearray(path.read_bytes())
    b[int(len(b) * offset)] ^= 0x01
    path.write_bytes(bytes(b))
    with pytest.raises(CorruptEntry, match="checksum mismatch"):
        st.get(key)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o007, 0o660)])
def test_files_follow_the_umask(tmp_path, small, umask, mode):
    import os
    import stat

    old = os.umask(umask)
    try:
        st = FeatureStore(tmp_path / "fs")
        _, key, _ = st.get_or_build(small, data_fingerprint(source=SYN), CFG, train_sessions=[small.frame["session"].iloc[-1]])
    finally:
        os.umask(old)
    entry = st.root / "entries" / key
    files = [entry / "data.parquet", entry / "meta.json", *entry.glob("scaler-*.json")]
    assert len(files) == 3
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == mode, f
    assert stat.S_IMODE(entry.stat().st_mode) == 0o777 & ~umask


def test_a_hit_in_a_fresh_process_loads_neither_numba_nor_the_config_schema(tmp_path, small):
    import os
    import subprocess
    import sys
    from pathlib import Path

    st = FeatureStore(tmp_path / "fs")
    a, key, _ = st.get_or_build(small, data_fingerprint(source=SYN), CFG)
    import intradayjules

    code = ("import sys; from intradayjules.features.store import FeatureStore; "
            f"f = FeatureStore({str(st.root)!r}).get({key!r}); "
            "print(len(f), 'numba' in sys.modules, 'pydantic' in sys.modules)")
    src = str(Path(intradayjules.__file__).parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": src})
    assert out.stdout.split() == [str(len(a)), "False", "False"]
