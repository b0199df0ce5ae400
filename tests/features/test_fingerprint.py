"""data_fingerprint: cheap on a hit (no content read), content-based, sensitive to loader settings."""

from __future__ import annotations

import os

import pytest

from intradayjules.config import DataConfig, SyntheticConfig
from intradayjules.data import fingerprint as fpm
from intradayjules.data.fingerprint import data_fingerprint, files_fingerprint


@pytest.fixture()
def bar_dir(tmp_path, synthetic_market):
    d = tmp_path / "bars"
    d.mkdir()
    f = synthetic_market.bars.frame
    for sym, g in f.groupby("symbol"):
        g[["timestamp", "open", "high", "low", "close", "volume"]].to_csv(d / f"{sym}_5min.csv", index=False)
    return d


def test_second_call_reads_no_content(bar_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first, cached = files_fingerprint(bar_dir, cache)
    assert not cached and len(list(cache.glob("*.json"))) == 1

    def boom(*a, **k):
        raise AssertionError("content was re-hashed")

    monkeypatch.setattr(fpm, "content_hash", boom)
    again, cached = files_fingerprint(bar_dir, cache)
    assert cached and again == first


def test_touch_rehashes_to_same_value_and_edit_changes_it(bar_dir, tmp_path):
    cache = tmp_path / "cache"
    fp0 = data_fingerprint(source=bar_dir, cache_dir=cache)
    f = next(bar_dir.glob("*.csv"))
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert data_fingerprint(source=bar_dir, cache_dir=cache) == fp0
    assert len(list(cache.glob("*.json"))) == 2  # a new stat key, same content hash
    text = f.read_text().splitlines()
    text[5] = text[5].rsplit(",", 1)[0] + ",12345"
    f.write_text("\n".join(text) + "\n")
    assert data_fingerprint(source=bar_dir, cache_dir=cache) != fp0


def test_loader_settings_and_synthetic_config_count(bar_dir, tmp_path):
    cache = tmp_path / "cache"
    base = data_fingerprint(source=bar_dir, cache_dir=cache)
    assert data_fingerprint(source=bar_dir, data_cfg=DataConfig(bar="15min"), cache_dir=cache) != base
    assert data_fingerprint(source=bar_dir, data_cfg=DataConfig(symbols=["LQ01"]), cache_dir=cache) != base
    # splits and tiers do not change the bars
    assert data_fingerprint(source=bar_dir, data_cfg=DataConfig(splits={"train_frac": 0.5}),
                            cache_dir=cache) == base
    s0 = data_fingerprint(source=SyntheticConfig())
    assert data_fingerprint(source=SyntheticConfig()) == s0
    assert data_fingerprint(source=SyntheticConfig(seed=1)) != s0
    assert data_fingerprint(source=SyntheticConfig(days=61)) != s0


def test_in_memory_frames(synthetic_market):
    f = synthetic_market.bars.frame
    a = data_fingerprint(f)
    assert data_fingerprint(synthetic_market.bars) == a
    g = f.copy()
    g.loc[100, "close"] *= 1.0001
    assert data_fingerprint(g) != a
    with pytest.raises(ValueError):
        data_fingerprint()
