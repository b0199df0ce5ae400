"""Evaluate a policy on held-out sessions, net of the realistic market model: one JSON-ready dict.

Each session is one episode that starts from ``env.initial_cash`` (positions are flattened at the
close), so daily returns are ``equity_close / initial_cash - 1`` (``reset_daily``) and the statistics of
``evaluate.metrics.performance`` are computed on that series. The evaluation market model is
``market.model`` of the config given (``realistic`` by default) whatever the model was trained with:
comparing a flat-cost-trained baseline with a risk-aware model happens under the same realistic costs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import ExperimentConfig

REQUIRED_KEYS = ("total_return", "sharpe", "sortino", "calmar", "max_drawdown", "ulcer_index", "turnover",
                 "n_trades", "win_rate", "profit_factor", "avg_holding_bars", "costs", "illiquid_trade_share",
                 "avg_participation")


def load_policy_model(ref: str | Path, device: str = "cpu", cfg: ExperimentConfig | None = None,
                      trust_pickle: bool = False):
    """The policy of a bundle, run directory, ``.zip`` or ``models:/NAME@ALIAS``, verified and loaded
    without unpickling (``track/loader.py``); an SB3 zip without a bundle only with ``trust_pickle``."""
    from ..track.loader import load_policy

    return load_policy(ref, cfg=cfg, trust_pickle=trust_pickle, device=device)


def evaluate_policy(policy, prepared, split: str = "test", cfg: ExperimentConfig | None = None,
                    sessions=None) -> tuple[dict[str, Any], Any]:
    """Backtest ``policy`` on every session of ``split``; returns (metrics dict, BacktestResult)."""
    from ..env import make_env
    from ..evaluate.backtest import backtest
    from ..evaluate.metrics import performance
    from ..risk.composite import RiskComposite
    from ..risk.metrics import RiskTracker

    cfg = cfg or prepared.cfg
    env = make_env(cfg, None, split=split, data=prepared.env_data)
    res = backtest(policy, env, sessions, RiskTracker(cfg.risk.ulcer_window))
    closes = res.steps.groupby("session", sort=False)["equity"].last()
    stats = performance(closes, res.trades, initial_equity=res.initial_equity,
                        sessions=list(closes.index), reset_daily=True)
    stats["split"] = split
    stats["sessions"] = len(closes)
    stats["market_model"] = cfg.market.model
    stats["risk"] = dict(res.risk)
    stats["risk_composite"] = RiskComposite(cfg.risk).score(res.risk)
    stats["mean_daily_return_bps"] = float(np.mean(closes.to_numpy() / res.initial_equity - 1) * 1e4)
    notional = (res.trades["qty"].abs() * res.trades["price"]) if len(res.trades) else None
    stats["traded_notional_by_tier"] = (
        {t: float(notional[res.trades["tier"] == t].sum()) for t in ("liquid", "mid", "illiquid")}
        if notional is not None else {"liquid": 0.0, "mid": 0.0, "illiquid": 0.0})
    o = res.orders
    order_notional = (o["qty"].abs() * o["price"]) if len(o) else None
    stats["illiquid_order_share"] = (float(order_notional[o["tier"] == "illiquid"].sum() / order_notional.sum())
                                     if order_notional is not None and order_notional.sum() > 0 else 0.0)
    return stats, res
