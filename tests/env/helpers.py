"""Small builders for env tests: a synthetic market, its contract-shaped feature table, configs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from intradayjules.config import ExperimentConfig
from intradayjules.data.bars import add_staleness
from intradayjules.data.synthetic import generate
from intradayjules.config import SyntheticConfig
from intradayjules.env.fallback_features import fallback_features

CONTRACT_KEYS = {
    "equity": float, "cash": float, "positions": np.ndarray, "exposure": float, "drawdown": float,
    "step_pnl": float, "traded_notional": float, "traded_notional_by_symbol": dict,
    "traded_notional_by_tier": dict, "costs": dict, "costs_by_tier": dict, "participation": float,
    "adv_participation": float, "unfilled_notional": float, "stale_decision": bool, "stale_share": float,
    "secs_since_trade": float, "n_fills": int, "session": str, "tiers": tuple,
}


def market(days: int = 30, n_symbols: int = 6, seed: int = 0):
    return generate(SyntheticConfig(n_symbols=n_symbols, days=days, seed=seed))


def config(mode: str = "single", **env) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.data.tiers.adv_window_days = 5
    cfg.env.mode = mode
    for k, v in env.items():
        setattr(cfg.env, k, v)
    return cfg


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """A feature table in the features contract's shape (causal: row t uses bars <= t)."""
    return fallback_features(frame)


def with_bars(frame: pd.DataFrame, symbol: str, session, bar_index, **values) -> pd.DataFrame:
    """A copy of a canonical frame with bar ``bar_index`` of ``symbol`` on ``session`` changed
    (prices and/or volume); stale flags recomputed."""
    f = frame.copy()
    rows = np.flatnonzero((f["symbol"] == symbol).to_numpy() & (f["session"] == pd.Timestamp(session)).to_numpy())
    r = rows[bar_index]
    for k, v in values.items():
        f.loc[r, k] = v
    p = f.loc[r, ["open", "high", "low", "close"]].astype(float)
    f.loc[r, "high"] = p.max()
    f.loc[r, "low"] = p.min()
    return add_staleness(f)


def bars_of(frame: pd.DataFrame, symbol: str, session) -> pd.DataFrame:
    m = (frame["symbol"] == symbol).to_numpy() & (frame["session"] == pd.Timestamp(session)).to_numpy()
    return frame.loc[m].reset_index(drop=True)


def run_episode(env, actions, seed=0, session=None):
    """Reset, then step ``actions`` (a callable(step) or a list) until the episode ends.
    Returns obs list (including the reset obs), rewards, infos."""
    obs, info0 = env.reset(seed=seed, options={"session": session} if session else None)
    out_obs, rewards, infos = [obs], [], []
    i = 0
    while True:
        a = actions(i) if callable(actions) else actions[i % len(actions)]
        obs, r, term, trunc, info = env.step(a)
        out_obs.append(obs)
        rewards.append(r)
        infos.append(info)
        i += 1
        if term or trunc:
            return out_obs, rewards, infos, info0
