"""The experiment that shows risk-aware training stops the agent from trading illiquid names.

Two arms, same data, budget and seeds, multi-asset env over the whole universe (synthetic: 2 liquid,
2 mid, 2 illiquid names with the bid-ask-bounce trap):

(a) ``original``: the original set-up: flat 5 bps costs in the training env, no risk shaping.
(b) ``risk_aware``: the realistic market model in training and the ``balanced`` risk profile (reward
    shaping, illiquid cost multiplier, early stopping).

Both are evaluated on the held-out test sessions under the realistic market model. The target: (b)'s mean
``illiquid_trade_share`` at most 20 % of (a)'s with a mean net Sharpe no worse. The result is reported
as measured, whether or not it meets the target.

What both arms share (set in the config, not here): the agent, budget, seeds, observation and
``env.reward_scale`` (the example configs use 1e4: reward in bps of initial cash, see
examples/configs/illiquid_experiment.yaml). What differs is only the arm definition above; the
risk-aware arm's liquidity penalty uses ``risk.illiquid_penalty_basis`` (default ``ordered``: the cost of
the whole illiquid order, unfilled part included, risk/shaping.py).

``illiquid_trade_share`` counts filled notional (fills and the end-of-session flatten);
``illiquid_order_share`` counts the notional the agent asked for. Net Sharpe is the daily Sharpe (252)
of the evaluation's equity; it is undefined (NaN) for a policy that never trades (flat equity). The mean
over seeds never drops a NaN silently (``evaluate.daily_pnl.mean_over_seeds``): one undefined seed makes
the arm's mean Sharpe NaN, and ``sharpe_note`` names the seeds and why (``n_sharpe``: seeds with a
Sharpe ratio).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..agents.sb3 import load_model
from ..agents.policy import policy_from_model
from ..config import ExperimentConfig, RiskConfig, apply_overrides, with_risk_profile
from ..evaluate.daily_pnl import mean_over_seeds
from ..evaluate.evaluation import evaluate_policy
from ..evaluate.metrics import json_safe
from .prepare import prepare, run_dir
from .train_run import train

ARMS = ("original", "risk_aware")


def arm_config(cfg: ExperimentConfig, arm: str, seed: int) -> ExperimentConfig:
    if arm == "original":
        # the original set-up exactly: no shaping, no masking, no early stop, whatever the config says
        # explicitly about risk; only the evaluation schedule is kept
        r = cfg.risk
        risk = RiskConfig(profile="off", eval_freq=r.eval_freq, eval_episodes=r.eval_episodes,
                          ulcer_window=r.ulcer_window)
        c = cfg.model_copy(update={"risk": risk})
        market = c.market.model_copy(update={"model": "flat"})
    elif arm == "risk_aware":
        c = with_risk_profile(cfg, "balanced")
        market = c.market.model_copy(update={"model": "realistic"})
    else:
        raise ValueError(f"unknown arm {arm!r}; one of {ARMS}")
    agent = c.agent.model_copy(update={"seed": seed})
    return c.model_copy(update={"market": market, "agent": agent})


@dataclass
class ArmResult:
    arm: str
    seed: int
    illiquid_trade_share: float
    illiquid_order_share: float
    sharpe: float
    total_return: float
    n_trades: int
    traded_notional_by_tier: dict
    costs: dict
    timesteps: int
    stopped_early: bool = False


def run(cfg: ExperimentConfig, seeds: int = 3, out_dir: str | Path | None = None, data_path=None,
        timesteps: int | None = None, progress=None) -> dict:
    """Train and evaluate both arms for ``seeds`` seeds; returns (and writes) the per-run and mean table."""
    eval_cfg = apply_overrides(cfg, {"market.model": "realistic"})
    prepared = prepare(cfg, data_path)
    cfg = prepared.cfg  # records --data (pipeline.prepare.with_data_path)
    out = Path(out_dir) if out_dir else run_dir(cfg, f"{cfg.name}-illiquid-experiment")
    rows: list[ArmResult] = []
    for seed in range(seeds):
        for arm in ARMS:
            acfg = arm_config(cfg, arm, cfg.agent.seed + seed)
            res = train(prepared, out / f"{arm}-seed{seed}", cfg=acfg, total_timesteps=timesteps)
            stats, _ = evaluate_policy(policy_from_model(load_model(res.model_path)), prepared.env_data, eval_cfg,
                                       "test")
            rows.append(ArmResult(arm, seed, stats["illiquid_trade_share"], stats["illiquid_order_share"], stats["sharpe"], stats["total_return"],
                                  stats["n_trades"], stats["traded_notional_by_tier"], stats["costs"],
                                  res.timesteps, res.stopped_early))
            if progress:
                progress(rows[-1])
    summary = summarize(rows)
    path = out / "illiquid_experiment.json"
    summary["path"] = str(path)
    summary["config"] = {"name": cfg.name, "symbols": list(prepared.env_data.symbols), "seeds": seeds,
                         "timesteps": int(timesteps or cfg.agent.total_timesteps),
                         "reward_scale": cfg.env.reward_scale, "data": str(data_path) if data_path else None}
    path.write_text(json.dumps(json_safe(summary), indent=2, default=float))
    return summary


def _nanmean(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(xs)) if xs else math.nan


TARGET_SHARE_RATIO = 0.20


def summarize(rows: list[ArmResult]) -> dict:
    """Per-arm means over seeds and the target verdict.

    ``illiquid_share_at_most_20pct_of_original``: mean share of (b) <= 0.2 x mean share of (a); None when
    (a) traded no illiquid notional (nothing to reduce). ``sharpe_no_worse``: mean Sharpe of (b) >= (a)'s;
    None when either mean is undefined. ``met``: both True."""
    means = {}
    for arm in ARMS:
        rs = [r for r in rows if r.arm == arm]
        sharpes = [r.sharpe for r in rs if r.sharpe is not None and math.isfinite(r.sharpe)]
        reasons = {r.seed: "no variance (never traded)" if r.n_trades == 0 else "undefined" for r in rs}
        sr = mean_over_seeds({r.seed: math.nan if r.sharpe is None else r.sharpe for r in rs}, reasons=reasons,
                             nan="propagate", what=f"{arm} net Sharpe") if rs else None
        means[arm] = {"illiquid_trade_share": _nanmean([r.illiquid_trade_share for r in rs]),
                      "illiquid_order_share": _nanmean([r.illiquid_order_share for r in rs]),
                      "sharpe": sr.mean if sr else math.nan, "sharpe_note": sr.reason if sr else "no runs",
                      "n_sharpe": len(sharpes),
                      "total_return": _nanmean([r.total_return for r in rs]),
                      "n_trades": _nanmean([r.n_trades for r in rs]), "n_runs": len(rs)}
    a, b = means["original"], means["risk_aware"]
    ratio = b["illiquid_trade_share"] / a["illiquid_trade_share"] if a["illiquid_trade_share"] > 0 else math.nan
    share_ok = bool(ratio <= TARGET_SHARE_RATIO) if math.isfinite(ratio) else None
    sharpe_ok = bool(b["sharpe"] >= a["sharpe"]) if math.isfinite(a["sharpe"]) and math.isfinite(b["sharpe"]) else None
    return {"runs": [r.__dict__ for r in rows], "means": means,
            "target": {"illiquid_share_ratio": ratio, "illiquid_share_at_most_20pct_of_original": share_ok,
                       "sharpe_no_worse": sharpe_ok, "met": bool(share_ok and sharpe_ok)}}
