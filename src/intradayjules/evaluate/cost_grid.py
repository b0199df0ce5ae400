"""Cost sensitivity: the same policy re-evaluated with every cost scaled, at several participation caps.

For each multiplier ``m`` and cap ``c``: the half-spread of every session and symbol (the env panel's, from the
universe table, the tier table or the Roll estimate), ``market.impact_coef``, ``market.commission_bps`` and
``market.flat_cost_bps`` are multiplied by ``m`` and ``market.participation_cap`` is set to ``c``; the policy
is rolled over the same sessions (``evaluation.evaluate_policy``). Per point: mean daily net P&L (bps of
initial cash) with its block-bootstrap interval (``paired.paired_comparison`` against 0), costs paid (bps of
initial cash per day), gross P&L (net + costs) and fills.

**Break-even multiplier** per cap: where the mean daily net P&L crosses 0, by linear interpolation between
adjacent grid points (``None`` with ``"above"`` / ``"below"`` when it does not cross inside the grid), and
the linear estimate from the ``m = 1`` point, ``gross / costs``: if the policy traded the same whatever the
costs, its P&L would be ``gross - m * costs`` (a policy that sees its equity may trade a little differently).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..config import ExperimentConfig
from ..env import EnvData
from ..env.rollout import Policy
from .evaluation import evaluate_policy
from .paired import paired_comparison

DEFAULT_MULTIPLIERS = (0.5, 1.0, 2.0, 4.0)
DEFAULT_CAPS = (0.05, 0.10, 0.20)


def parse_grid(text: str) -> list[float]:
    """``"0.5,1,2,4"`` -> ``[0.5, 1.0, 2.0, 4.0]``; raises naming the bad item."""
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            v = float(item)
        except ValueError:
            raise ValueError(f"--cost-grid: {item!r} is not a number (expected e.g. 0.5,1,2,4)") from None
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"--cost-grid: multipliers must be finite and >= 0 (got {item})")
        out.append(v)
    if not out:
        raise ValueError("--cost-grid: no multipliers")
    return sorted(set(out))


def scaled(env_data: EnvData, cfg: ExperimentConfig, m: float, cap: float) -> tuple[EnvData, ExperimentConfig]:
    """The env data and config with every cost multiplied by ``m`` and the participation cap at ``cap``."""
    panel = replace(env_data.panel, half_spread=env_data.panel.half_spread * m, _cache={})
    mk = cfg.market.model_copy(update={"impact_coef": cfg.market.impact_coef * m,
                                       "commission_bps": cfg.market.commission_bps * m,
                                       "flat_cost_bps": cfg.market.flat_cost_bps * m,
                                       "participation_cap": cap})
    return replace(env_data, panel=panel), cfg.model_copy(update={"market": mk})


def cost_grid(policy: Policy, env_data: EnvData, cfg: ExperimentConfig, split: str = "test",
              multipliers: Sequence[float] = DEFAULT_MULTIPLIERS, caps: Sequence[float] = DEFAULT_CAPS,
              n_resamples: int = 10_000) -> dict[str, Any]:
    """The grid (module docstring): ``{"points": [...], "break_even": {cap: {...}}}``."""
    points = []
    for cap in caps:
        for m in multipliers:
            data, c = scaled(env_data, cfg, m, cap)
            stats, res = evaluate_policy(policy, data, c, split)
            closes = res.closing_equity()
            pnl = 1e4 * (closes.to_numpy() / res.initial_equity - 1.0)
            costs = res.steps.groupby("session", sort=False)[["spread_cost", "impact_cost", "commission"]].sum()
            cost_bps = 1e4 * costs.sum(axis=1).to_numpy() / res.initial_equity
            ci = paired_comparison(pnl, np.zeros_like(pnl), name_a="policy", name_b="zero",
                                   n_resamples=n_resamples) if len(pnl) >= 2 else None
            points.append({"multiplier": m, "cap": cap, "sessions": len(pnl), "mean_pnl_bps": float(pnl.mean()),
                           "ci_low": ci.ci_low if ci else math.nan, "ci_high": ci.ci_high if ci else math.nan,
                           "costs_bps": float(cost_bps.mean()), "gross_bps": float((pnl + cost_bps).mean()),
                           "trades": int(stats["n_trades"]), "unfilled_notional": float(
                               res.steps["unfilled_notional"].sum())})
    return {"points": points, "break_even": {str(cap): break_even([p for p in points if p["cap"] == cap])
                                             for cap in caps}}


def break_even(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Break-even multiplier of one cap's points (module docstring)."""
    pts = sorted(points, key=lambda p: p["multiplier"])
    xs = [p["multiplier"] for p in pts]
    ys = [p["mean_pnl_bps"] for p in pts]
    out: dict[str, Any] = {"interpolated": None, "where": None, "linear_from_1x": None}
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y0 == 0:
            out["interpolated"] = x0
            break
        if (y0 > 0) != (y1 > 0) or y1 == 0:
            out["interpolated"] = x0 + (x1 - x0) * y0 / (y0 - y1)
            break
    if out["interpolated"] is None:
        out["where"] = "above" if all(y > 0 for y in ys) else "below" if all(y < 0 for y in ys) else None
    one = [p for p in pts if p["multiplier"] == 1.0]
    if one and one[0]["costs_bps"] > 0:
        out["linear_from_1x"] = one[0]["gross_bps"] / one[0]["costs_bps"]
    return out
