"""Roll simple reference policies through a ``TradingEnv`` and summarise each episode (USD).

Policies: ``random`` (uniform actions, seeded), ``flat`` (never trades), ``long`` (single: always long;
multi: asks every symbol for a long target in turn, so the gross limit decides how many it gets),
or any callable ``policy(obs, info) -> action``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ..data.tiers import TIERS

POLICIES = ("random", "flat", "long")


def _policy(name: str | Callable, env, seed: int) -> Callable:
    if callable(name):
        return name
    if name not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES} or a callable, got {name!r}")
    multi = env.cfg.mode == "multi"
    k = len(env.symbols)
    rng = np.random.default_rng(seed)
    step = {"n": 0}

    def act(obs, info):
        step["n"] += 1
        if name == "random":
            return int(rng.integers(env.action_space.n))
        if name == "flat":
            return 0 if multi else 1
        return 1 + 3 * (step["n"] % k) + 2 if multi else 2

    return act


def rollout(env, policy: str | Callable = "random", episodes: int = 1, seed: int = 0) -> pd.DataFrame:
    """One row per episode: session, steps, end_reason, pnl, return_bps, costs by kind, traded notional
    (total and by tier), max participation, unfilled notional, max drawdown."""
    act = _policy(policy, env, seed)
    rows = []
    for e in range(episodes):
        obs, info = env.reset(seed=seed if e == 0 else None)
        start = info["equity"]
        acc = {"spread": 0.0, "impact": 0.0, "commission": 0.0, "traded_notional": 0.0,
               "unfilled_notional": 0.0, **{f"notional_{t}": 0.0 for t in TIERS}}
        max_part = max_dd = 0.0
        steps = 0
        while True:
            obs, _, term, trunc, info = env.step(act(obs, info))
            steps += 1
            for k in ("spread", "impact", "commission"):
                acc[k] += info["costs"][k]
            acc["traded_notional"] += info["traded_notional"]
            acc["unfilled_notional"] += info["unfilled_notional"]
            for t in TIERS:
                acc[f"notional_{t}"] += info["traded_notional_by_tier"][t]
            max_part = max(max_part, info["participation"])
            max_dd = max(max_dd, info["drawdown"])
            if term or trunc:
                break
        pnl = info["equity"] - start
        rows.append({"session": info["session"], "steps": steps, "end_reason": info["end_reason"],
                     "pnl": pnl, "return_bps": 1e4 * pnl / start, **acc, "max_participation": max_part,
                     "max_drawdown": max_dd})
    return pd.DataFrame(rows)
