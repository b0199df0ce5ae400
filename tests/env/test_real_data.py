"""Episodes on the shared real 5-minute bars (skipped when the folder is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import ExperimentConfig
from intradayjules.env import make_env, make_vec_env, prepare
from intradayjules.env.fallback_features import fallback_features

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real(shared_bars):
    cfg = ExperimentConfig()
    cfg.env.mode = "multi"
    f = shared_bars.frame
    syms = ["SPY", "AAPL", "XLRE", "CRSP", "WEBL", "NAIL"]
    cfg.env.symbols = syms
    sub = f[f["symbol"].isin(syms)].reset_index(drop=True)
    data = prepare(cfg, sub, None, fallback_features(sub))
    return cfg, sub, data


def test_mixed_tier_episodes_balance_to_the_cent(real):
    cfg, f, data = real
    env = make_env(cfg, f, None, "test", data=data)
    tiers = set()
    rng = np.random.default_rng(0)
    for ep in range(3):
        obs, info0 = env.reset(seed=ep if ep == 0 else None)
        tiers |= set(info0["tiers"])
        raw = {s: f[(f["symbol"] == s) & (f["session"] == pd.Timestamp(info0["session"]))].reset_index(drop=True)
               for s in data.symbols}
        pos = np.zeros(len(data.symbols))
        eq = cfg.env.initial_cash
        while True:
            obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            assert env.observation_space.contains(obs)
            b = info["bar"]
            o1 = np.array([raw[s]["open"][b] for s in data.symbols])
            c0 = np.array([raw[s]["close"][b - 1] for s in data.symbols])
            c1 = np.array([raw[s]["close"][b] for s in data.symbols])
            vol = np.array([raw[s]["volume"][b] for s in data.symbols])
            np.testing.assert_array_equal(info["fill_price"], o1)
            assert (np.abs(info["fill_qty"]) <= np.floor(0.1 * vol)).all()
            q = info["fill_qty"]
            pnl = pos @ (o1 - c0) + (pos + q) @ (c1 - o1) - sum(info["costs"].values())
            assert info["equity"] - eq == pytest.approx(pnl, abs=0.005)
            pos = pos + q + info["flatten_qty"]
            eq = info["equity"]
            if term:
                break
        assert not pos.any()
        assert info["end_reason"] in ("session_close", "drawdown")
    assert tiers == {"liquid", "mid", "illiquid"}


def test_vectorised_real_episodes_run(real):
    cfg, f, data = real
    venv = make_vec_env(cfg, f, None, "train", n_envs=4, data=data, seed=1)
    venv.reset()
    rng = np.random.default_rng(2)
    dones = 0
    for _ in range(300):
        obs, r, d, infos = venv.step(rng.integers(venv.action_space.n, size=4))
        assert np.isfinite(r).all() and venv.observation_space.contains(obs[0])
        dones += int(d.sum())
    assert dones >= 4  # each slot finished at least one session
