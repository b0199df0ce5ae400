"""Run a policy over held-out sessions of the trading environment, one episode per session.

The backtest steps the very same ``TradingEnv`` (and so the same market model) that training uses, with a
deterministic policy, and records what every report needs: the per-step equity curve, one row per fill
(for round trips and costs), and the risk metrics of ``risk.metrics.RiskTracker``.

A policy is any callable ``obs (np.ndarray[obs_dim]) -> action (int)``; ``policy_from_model`` adapts an
SB3 model, a TorchScript module or an MLflow pyfunc model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..risk.metrics import RiskTracker


@dataclass
class BacktestResult:
    initial_equity: float
    steps: pd.DataFrame  # one row per step: session, bar, equity, step_pnl, traded_notional, costs...
    trades: pd.DataFrame  # one row per fill: step, session, symbol, qty, price, costs, tier, participation
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per order sent: step, session,
    # symbol, qty (shares asked for), price (the fill bar's open), tier: what the agent wanted to trade
    risk: dict[str, float] = field(default_factory=dict)
    end_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def sessions(self) -> list[str]:
        return list(dict.fromkeys(self.steps["session"])) if len(self.steps) else []

    def equity_curve(self) -> pd.Series:
        return pd.Series(self.steps["equity"].to_numpy(), index=self.steps["session"].to_numpy())


def policy_from_model(model) -> Callable[[np.ndarray], int]:
    """A greedy policy from an SB3 model (``predict``), a TorchScript module, or a pyfunc model."""
    if hasattr(model, "predict") and hasattr(model, "policy"):  # SB3
        return lambda obs: int(model.predict(obs, deterministic=True)[0])
    if hasattr(model, "predict"):  # mlflow pyfunc: batch of observations -> actions
        return lambda obs: int(np.asarray(model.predict(obs[None, :].astype(np.float32))).reshape(-1)[0])
    import torch

    def scripted(obs: np.ndarray) -> int:
        with torch.no_grad():
            return int(model(torch.as_tensor(obs[None, :], dtype=torch.float32))[0])

    return scripted


def backtest(policy: Callable[[np.ndarray], int], env, sessions: Iterable[str] | None = None,
             tracker: RiskTracker | None = None) -> BacktestResult:
    """One episode per session (default: every session of the env's split, in date order)."""
    inner = env.unwrapped
    if sessions is None:
        sessions = [str(np.datetime_as_string(inner.panel.sessions[i], unit="D")) for i in inner.picker.indices]
    tracker = tracker or RiskTracker()
    step_rows: list[tuple] = []
    trade_rows: list[tuple] = []
    order_rows: list[tuple] = []
    end_reasons: dict[str, str] = {}
    symbols = list(inner.symbols)
    step_no = 0
    for session in sessions:
        obs, info0 = env.reset(options={"session": session})
        tiers = info0.get("tiers")
        tracker.start_episode(inner.cfg.initial_cash)
        done = False
        while not done:
            action = policy(obs)
            obs, _reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            tracker.update(info)
            step_no += 1
            c = info["costs"]
            step_rows.append((session, info["bar"], info["equity"], info["step_pnl"], info["traded_notional"],
                              c["spread"], c["impact"], c["commission"], info["drawdown"], info["exposure"],
                              info["participation"], bool(info["stale_decision"]), int(action)))
            _collect_fills(trade_rows, info, step_no, session, symbols, tiers)
            oq = info["order_qty"]
            for k in np.flatnonzero(oq):
                order_rows.append((step_no, session, symbols[k], float(oq[k]), float(info["fill_price"][k]),
                                   tiers[k] if tiers is not None else None))
            if done:
                end_reasons[session] = info.get("end_reason") or "truncated"
    steps = pd.DataFrame(step_rows, columns=["session", "bar", "equity", "step_pnl", "traded_notional",
                                             "spread_cost", "impact_cost", "commission", "drawdown",
                                             "exposure", "participation", "stale_decision", "action"])
    trades = pd.DataFrame(trade_rows, columns=["step", "session", "symbol", "qty", "price", "spread_cost",
                                               "impact_cost", "commission", "tier", "participation"])
    orders = pd.DataFrame(order_rows, columns=["step", "session", "symbol", "qty", "price", "tier"])
    return BacktestResult(float(inner.cfg.initial_cash), steps, trades, orders, tracker.snapshot(), end_reasons)


def _collect_fills(rows: list, info: dict, step: int, session: str, symbols: list[str], tiers) -> None:
    sc = info["symbol_costs"]
    for kind in ("fill", "flatten"):
        qty = info[f"{kind}_qty"]
        if not np.any(qty):
            continue
        price = info[f"{kind}_price"]
        part = info.get(f"{kind}_participation")
        for k in np.flatnonzero(qty):
            rows.append((step, session, symbols[k], float(qty[k]), float(price[k]),
                         float(sc[kind]["spread"][k]), float(sc[kind]["impact"][k]),
                         float(sc[kind]["commission"][k]), tiers[k] if tiers is not None else None,
                         float(part[k]) if part is not None else np.nan))
