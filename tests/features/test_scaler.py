"""The one scaler: per-symbol statistics from training sessions, stored with the entry, used by the env."""

import numpy as np
import pandas as pd
import pytest

from intradayjules.features.scaler import Scaler


def _frame():
    rng = np.random.default_rng(0)
    days = pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-06"])
    rows = []
    for sym, (mu, sd) in {"A": (10.0, 2.0), "B": (-5.0, 0.5)}.items():
        for d in days:
            for _ in range(50):
                rows.append((d, sym, d, rng.normal(mu, sd), 3.0, False))
    f = pd.DataFrame(rows, columns=["timestamp", "symbol", "session", "x", "const", "warm"])
    f.loc[0, "x"] = 1e9  # a warm row with a wild value must not enter the statistics
    f.loc[0, "warm"] = True
    return f, days


def test_per_symbol_statistics_by_hand():
    f, days = _frame()
    train = days[:2]
    sc = Scaler.fit(f, train, by_symbol=True)
    for sym in ("A", "B"):
        rows = f[(f.symbol == sym) & f.session.isin(train) & ~f.warm]
        i = sc.columns.index("x")
        assert sc.mean[sym][i] == pytest.approx(rows["x"].mean(), rel=1e-12)
        assert sc.std[sym][i] == pytest.approx(rows["x"].std(ddof=0), rel=1e-12)
        assert sc.std[sym][sc.columns.index("const")] == 1.0  # constant -> std 1
    z = sc.transform(f)
    for sym in ("A", "B"):
        zs = z[(f.symbol == sym) & f.session.isin(train) & ~f.warm]["x"]
        assert abs(zs.mean()) < 1e-9 and zs.std(ddof=0) == pytest.approx(1.0, rel=1e-9)
    mu, sd = sc.arrays(["B", "A"], ["x"])
    assert mu[0, 0] == sc.mean["B"][0] and sd[1, 0] == sc.std["A"][0]
    with pytest.raises(ValueError, match="no statistics for symbols"):
        sc.arrays(["C"])
    assert Scaler.from_json(sc.to_json()) == sc and sc.by_symbol


def test_pooled_mode_and_training_only():
    f, days = _frame()
    pooled = Scaler.fit(f, days[:2])
    assert not pooled.by_symbol and list(pooled.mean) == ["*"]
    moved = f.copy()
    moved.loc[moved.session == days[2], "x"] += 100.0  # later sessions do not change the scaler
    assert Scaler.fit(moved, days[:2], by_symbol=True) == Scaler.fit(f, days[:2], by_symbol=True)
    assert Scaler.fit(moved, days, by_symbol=True) != Scaler.fit(f, days, by_symbol=True)


def test_env_uses_the_stored_scaler(tmp_path):
    from intradayjules.config import ExperimentConfig
    from intradayjules.features.store import FeatureStore
    from intradayjules.pipeline.prepare import prepare

    cfg = ExperimentConfig.model_validate({
        "name": "sc", "workdir": str(tmp_path / "runs"), "features": {"store_dir": str(tmp_path / "store")},
        "data": {"synthetic": {"n_symbols": 3, "days": 40, "seed": 1}}, "env": {"mode": "multi", "n_assets": 3},
        "tracking": {"enabled": False}})
    p = prepare(cfg)
    store = FeatureStore(tmp_path / "store")
    stored = store.scaler(p.feature_key, p.env_data.splits["train"], by_symbol=True)
    assert p.scaler == stored and p.env_data.panel.scaler is p.scaler
    files = list((tmp_path / "store" / "entries" / p.feature_key).glob("scaler-*.json"))
    assert len(files) == 1
    # the env's observation features are exactly (x - mean) / std of that scaler (clipped)
    panel = p.env_data.panel
    feats, key, _ = store.get_or_build(p.bars, p.data_fingerprint, cfg.features, calendar=cfg.data.calendar)
    feats = feats.reset_index(drop=True)
    sym = panel.symbols[0]
    name = panel.feature_names[0]
    rows = feats[(feats.symbol == sym) & ~feats.warm]
    r = rows.iloc[len(rows) // 2]
    grid = pd.DatetimeIndex(p.bars.frame.loc[p.bars.frame.symbol.isin(panel.symbols), "timestamp"].unique()).sort_values()
    t = grid.get_loc(r["timestamp"])  # the panel's row of that bar
    i = p.scaler.columns.index(name)
    want = np.clip((r[name] - p.scaler.mean[sym][i]) / p.scaler.std[sym][i], -cfg.env.obs_clip, cfg.env.obs_clip)
    assert panel.feat[t, 0, 0] == pytest.approx(want, rel=1e-5, abs=1e-5)
