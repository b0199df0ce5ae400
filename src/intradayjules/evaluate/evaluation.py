"""Evaluate a policy on held-out sessions, net of the realistic market model: one JSON-ready dict.

Each session is one episode that starts from ``env.initial_cash`` (positions are flattened at the
close), so daily returns are ``equity_close / initial_cash - 1`` (``reset_daily``) and the statistics of
``evaluate.metrics.performance`` are computed on that series. The evaluation market model is
``market.model`` of the config given (``realistic`` by default) whatever the model was trained with:
comparing a flat-cost-trained baseline with a risk-aware model happens under the same realistic costs.

The episodes come from the one rollout, ``env.rollout.run_sessions``; this module only computes
statistics of its result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ExperimentConfig
from ..env import EnvData, make_env
from ..env.rollout import Policy, RolloutResult, run_sessions
from ..risk.composite import RiskComposite
from ..risk.metrics import RiskTracker
from ..risk.pretrade_env import with_pretrade_limits
from .metrics import performance

REQUIRED_KEYS = ("total_return", "sharpe", "sortino", "calmar", "max_drawdown", "ulcer_index", "turnover",
                 "n_trades", "win_rate", "profit_factor", "avg_holding_bars", "costs", "illiquid_trade_share",
                 "avg_participation")


def rollout_stats(res: RolloutResult, cfg: ExperimentConfig, split: str) -> dict[str, Any]:
    """The statistics of a rollout (see module docstring) as a JSON-ready dict."""
    closes = res.closing_equity()
    stats = performance(closes, res.trades, initial_equity=res.initial_equity,
                        sessions=list(closes.index), reset_daily=True)
    stats["split"] = split
    stats["sessions"] = len(closes)
    stats["market_model"] = cfg.market.model
    stats["risk"] = dict(res.risk)
    stats["risk_composite"] = RiskComposite(cfg.risk).score(res.risk)
    stats["mean_daily_return_bps"] = float(np.mean(res.daily_returns()) * 1e4)
    notional = (res.trades["qty"].abs() * res.trades["price"]) if len(res.trades) else None
    stats["traded_notional_by_tier"] = (
        {t: float(notional[res.trades["tier"] == t].sum()) for t in ("liquid", "mid", "illiquid")}
        if notional is not None else {"liquid": 0.0, "mid": 0.0, "illiquid": 0.0})
    o = res.orders
    order_notional = (o["qty"].abs() * o["price"]) if len(o) else None
    stats["illiquid_order_share"] = (float(order_notional[o["tier"] == "illiquid"].sum() / order_notional.sum())
                                     if order_notional is not None and order_notional.sum() > 0 else 0.0)
    return stats


def evaluate_policy(policy: Policy, data: EnvData, cfg: ExperimentConfig, split: str = "test",
                    sessions=None) -> tuple[dict[str, Any], RolloutResult]:
    """Roll ``policy`` over every session of ``split`` (or ``sessions``) of ``data`` under ``cfg``'s
    market model (and, with ``env.pretrade_limits``, the pre-trade limits); returns (metrics dict,
    RolloutResult)."""
    env = with_pretrade_limits(make_env(cfg, None, split=split, data=data), cfg)
    res = run_sessions(policy, env, sessions, RiskTracker(cfg.risk.ulcer_window))
    return rollout_stats(res, cfg, split), res
