"""What is recorded for every evaluated policy: one row per session and one row per fill.

``daily_table(result)`` (``daily.parquet``), one row per episode of a ``RolloutResult`` (each starts from the
initial cash ``C`` and is flat at the close), all P&L in **bps of starting capital** (``1e4 * USD / C``):

========================  ==============================================================================
column                    meaning
========================  ==============================================================================
``session``               the session date (datetime64, midnight)
``net_bps``               ``1e4 (equity_close - C) / C``: the day's P&L after every cost
``gross_bps``             ``net_bps + cost_bps``: the P&L the same fills would have made without costs
``spread_bps``            half-spread paid on every fill (the closing flatten included)
``impact_bps``            market impact paid
``commission_bps``        commission paid
``cost_bps``              spread + impact + commission
``turnover``              traded notional / ``C`` (x of starting capital; a round trip of the whole
                          capital is 2)
``traded_notional``       USD
``trades``                fills (order fills and the closing flatten)
``max_drawdown_bps``      the largest intraday drawdown from the day's running peak equity (marked at bar
                          closes, the start included), ``1e4 (peak - equity) / peak``
``session_bars``          bars the session has in the data; ``expected_bars``: in the exchange calendar
                          at this bar size (0 when unknown)
``partial``               ``session_bars < expected_bars`` (a data hole, an early end of the file):
                          statistics exclude these sessions by default and count them
``end_reason``            ``session_close``, ``drawdown`` (the env's stop) or ``episode_end``
========================  ==============================================================================

``trades_table(result)`` (``trades.parquet``), one row per fill: ``timestamp`` (UTC, the time of the
price: an order fills at its bar's open, the closing flatten at its bar's close), ``session``, ``symbol``,
``tier``, ``side`` (buy/sell), ``quantity`` (shares, > 0), ``qty`` (signed shares), ``price``,
``notional`` (USD), ``spread_cost``, ``impact_cost``, ``commission`` (USD), ``cost_bps`` (of the fill's
notional), ``participation`` (filled shares / bar volume; NaN for the closing cross), ``reason``
(``order``, ``session_close``, ``stop``) and ``step`` (the rollout's step counter, for round trips).

Both load straight into pandas (``pd.read_parquet``); for quantstats, ``daily.set_index("session")
["net_bps"] / 1e4`` is the daily return series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..env.rollout import RolloutResult

DAILY_COLUMNS = ["session", "net_bps", "gross_bps", "spread_bps", "impact_bps", "commission_bps", "cost_bps",
                 "turnover", "traded_notional", "trades", "max_drawdown_bps", "session_bars", "expected_bars",
                 "partial", "end_reason"]
TRADES_COLUMNS = ["timestamp", "session", "symbol", "tier", "side", "quantity", "qty", "price", "notional",
                  "spread_cost", "impact_cost", "commission", "cost_bps", "participation", "reason", "step"]


def daily_table(res: RolloutResult) -> pd.DataFrame:
    """One row per session of ``res`` (module docstring)."""
    s = res.steps
    if not len(s):
        return pd.DataFrame(columns=DAILY_COLUMNS)
    c = res.initial_equity
    g = s.groupby("session", sort=False)
    costs = g[["spread_cost", "impact_cost", "commission"]].sum()
    eq = s["equity"].to_numpy()
    # running peak inside each session, the starting capital included
    peak = s.assign(e=eq).groupby("session", sort=False)["e"].cummax().to_numpy()
    peak = np.maximum(peak, c)
    dd = pd.Series(1e4 * (peak - eq) / peak, index=s.index).groupby(s["session"], sort=False).max()
    fills = res.trades.groupby("session", sort=False).size() if len(res.trades) else pd.Series(dtype=int)
    net = 1e4 * (g["equity"].last() - c) / c
    cost = 1e4 * costs.sum(axis=1) / c
    out = pd.DataFrame({
        "net_bps": net,
        "gross_bps": net + cost,
        "spread_bps": 1e4 * costs["spread_cost"] / c,
        "impact_bps": 1e4 * costs["impact_cost"] / c,
        "commission_bps": 1e4 * costs["commission"] / c,
        "cost_bps": cost,
        "turnover": g["traded_notional"].sum() / c,
        "traded_notional": g["traded_notional"].sum(),
        "trades": fills.reindex(net.index).fillna(0).astype(int),
        "max_drawdown_bps": dd,
    })
    ep = res.episodes.drop_duplicates("session", keep="last").set_index("session") if len(res.episodes) else None
    if ep is not None:
        out["session_bars"] = ep["session_bars"].reindex(out.index).fillna(0).astype(int)
        out["expected_bars"] = ep["expected_bars"].reindex(out.index).fillna(0).astype(int)
        out["partial"] = ep["partial"].reindex(out.index).fillna(False).astype(bool)
    else:
        out["session_bars"], out["expected_bars"], out["partial"] = 0, 0, False
    out["end_reason"] = out.index.map(lambda x: res.end_reasons.get(x))
    out.index = pd.to_datetime(out.index)
    out = out.rename_axis("session").reset_index()
    return out[DAILY_COLUMNS]


def trades_table(res: RolloutResult) -> pd.DataFrame:
    """One row per fill of ``res`` (module docstring)."""
    t = res.trades
    if not len(t):
        return pd.DataFrame(columns=TRADES_COLUMNS)
    out = pd.DataFrame({
        "timestamp": pd.to_datetime(t["timestamp"], utc=True),
        "session": pd.to_datetime(t["session"]),
        "symbol": t["symbol"].astype(str),
        "tier": t["tier"],
        "side": np.where(t["qty"].to_numpy() > 0, "buy", "sell"),
        "quantity": t["qty"].abs(),
        "qty": t["qty"],
        "price": t["price"],
        "notional": t["qty"].abs() * t["price"],
        "spread_cost": t["spread_cost"],
        "impact_cost": t["impact_cost"],
        "commission": t["commission"],
        "participation": t["participation"],
        "reason": t["reason"],
        "step": t["step"].astype(int),
    })
    cost = out["spread_cost"] + out["impact_cost"] + out["commission"]
    out["cost_bps"] = np.where(out["notional"] > 0, 1e4 * cost / out["notional"].where(out["notional"] > 0, 1.0),
                               np.nan)
    return out[TRADES_COLUMNS].reset_index(drop=True)


def net_pnl(daily: pd.DataFrame) -> pd.Series:
    """``net_bps`` indexed by session (all sessions, partial ones included)."""
    return pd.Series(daily["net_bps"].to_numpy(dtype=float), index=pd.DatetimeIndex(daily["session"]),
                     name="net_bps")


def partial_flags(daily: pd.DataFrame) -> pd.Series:
    return pd.Series(daily["partial"].to_numpy(dtype=bool), index=pd.DatetimeIndex(daily["session"]),
                     name="partial")


def write_records(daily: pd.DataFrame, trades: pd.DataFrame, directory: str | Path) -> dict[str, Path]:
    """``daily.parquet`` and ``trades.parquet`` in ``directory`` (created); returns their paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"daily": d / "daily.parquet", "trades": d / "trades.parquet"}
    daily.to_parquet(paths["daily"], index=False)
    trades.to_parquet(paths["trades"], index=False)
    return paths
