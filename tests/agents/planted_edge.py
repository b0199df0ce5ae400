"""A market with a planted edge, for positive controls: an agent that learns anything must beat flat here.

One liquid symbol whose 5-minute log returns follow an AR(1) within each session,
``r_t = phi * r_{t-1} + e_t`` with ``e_t ~ N(0, sigma^2)`` (``r`` restarts at 0 each session, so nothing
carries overnight), and every bar opens at the previous bar's close. An order decided on bar t fills at
bar t+1's open = close_t, so the position earns ``r_{t+1}``, whose conditional mean ``phi * r_t`` the agent
sees in its observation (the 1-bar log return feature). The rule "long after an up bar, short after a
down bar" earns about ``position_size * phi * E|r_t|`` per bar: with ``phi = 0.5``, ``sigma = 10`` bps and
25 % of equity that is ~1.1 bps of equity a bar, ~90 bps a day before costs (flat 1 bp of notional, ~13
bps a day for that rule). The flat policy earns exactly 0.

Timestamps, sessions and volumes come from the synthetic market (``data.synthetic``, one liquid name);
only the prices are replaced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from intradayjules.config import ExperimentConfig, SyntheticConfig
from intradayjules.data.synthetic import generate

PHI, SIGMA = 0.5, 0.0010


def write_planted_edge(out: Path, days: int = 60, seed: int = 7, phi: float = PHI, sigma: float = SIGMA) -> Path:
    """``out/bars.parquet`` and ``out/universe.parquet`` of the planted-edge market; returns ``out``."""
    market = generate(SyntheticConfig(n_symbols=1, days=days, seed=seed))
    f = market.bars.frame.copy()
    rng = np.random.default_rng(seed)
    r = np.empty(len(f))
    first = f["session"].ne(f["session"].shift()).to_numpy()
    prev = 0.0
    for i, e in enumerate(rng.normal(0.0, sigma, len(f))):
        prev = e if first[i] else phi * prev + e
        r[i] = prev
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    f["open"], f["close"] = open_, close
    f["high"] = np.maximum(open_, close) * (1 + 1e-5)
    f["low"] = np.minimum(open_, close) * (1 - 1e-5)
    f["volume"] = np.maximum(f["volume"].to_numpy(), 1e5)  # always trades
    f["stale"] = False
    f["secs_since_trade"] = 0.0
    out.mkdir(parents=True, exist_ok=True)
    f.to_parquet(out / "bars.parquet", index=False)
    market.universe.to_parquet(out / "universe.parquet", index=False)
    return out


def planted_edge_config(tmp: Path, data: Path, algo: str, **agent) -> ExperimentConfig:
    """Single-asset env on the planted-edge market, flat 1 bp costs, reward in bps, no risk shaping."""
    return ExperimentConfig.model_validate({
        "name": f"edge-{algo}", "workdir": str(tmp / "runs"),
        "data": {"source": "path", "path": str(data), "tiers": {"adv_window_days": 1, "min_history_days": 1},
                 "splits": {"train_frac": 0.6, "val_frac": 0.2}},
        "features": {"store_dir": str(tmp / "store")},
        "market": {"model": "flat", "flat_cost_bps": 1.0},
        "env": {"mode": "single", "reward_scale": 1e4},
        "risk": {"profile": "off", "early_stop": False, "eval_freq": 10**9},
        "agent": {"algo": algo, **agent},
        "tracking": {"enabled": False},
    })
