"""Performance statistics of a backtest: from an equity series and a trade (fill) list.

Conventions (tested against ``empyrical-reloaded`` on the same daily return series):

* Daily returns ``r_d``: ``daily_returns`` turns a per-step or per-day equity series into one return per
  session. Chained (default): ``r_d = E_close(d) / E_close(d-1) - 1`` with ``E_close(-1)`` the initial
  equity. ``reset_daily=True`` (every session restarts from the initial equity): ``r_d = E_close(d) /
  initial_equity - 1``.
* ``total_return = prod(1 + r) - 1``; ``annual_return = (1 + total_return) ** (252 / n_days) - 1``.
* ``sharpe = mean(r) / std(r, ddof=1) * sqrt(252)`` (risk-free 0) by ``sharpe.sharpe_ratio``, the one
  convention: NaN when the returns have no variance (a flat policy, any constant series) or there are fewer
  than 2 days, never +-inf (empyrical gives +-inf for a constant non-zero series; we do not).
  ``sortino = 252 * mean(r) / (sqrt(mean(min(r, 0)^2)) * sqrt(252))``; NaN with fewer than 2 days; a zero
  denominator gives +-inf (NaN when the numerator is 0 too), as empyrical does.
* ``max_drawdown`` is a **positive** fraction (0.1 = 10 %; empyrical reports -0.1) of the daily
  compounded curve anchored at 1 before the first day; ``calmar = annual_return / max_drawdown`` (NaN
  when there is no drawdown); ``ulcer_index = sqrt(mean(drawdown_d^2))`` over the same daily curve
  (fraction, not percent). With a per-step equity series ``max_intraday_drawdown`` is also given.
* Trades: one row per fill with ``step`` (int, bar index of the fill), ``symbol``, ``qty`` (signed
  shares), ``price`` (USD) and ``spread_cost``, ``impact_cost``, ``commission`` (or ``fees``) in USD;
  optional ``tier`` (liquid/mid/illiquid) and ``participation`` (filled shares / bar volume).
  ``n_trades`` = fills with ``qty != 0``. ``costs`` = each kind summed / traded notional, in bps.
  ``illiquid_trade_share`` = notional in the illiquid tier / all notional. ``avg_participation`` = mean
  ``participation`` over fills. ``turnover`` = traded notional / mean equity / n_days (average daily
  turnover, x of equity).
* Round trips, per symbol in step order: one opens when the position leaves 0 and closes when it returns
  to 0; a fill that flips the sign closes one and opens the next, its quantity and costs split
  pro rata. A round trip's P&L is its cash flow, ``-qty * price - costs`` summed over its fills.
  ``win_rate`` = share with P&L > 0, ``profit_factor`` = gross profit / gross loss, ``avg_holding_bars``
  = mean of close step - open step. Round trips still open at the end are not counted (``open_trades``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .sharpe import sharpe_ratio

TRADING_DAYS = 252
TRADE_COLUMNS = ("step", "symbol", "qty", "price", "spread_cost", "impact_cost")


# ------------------------------------------------------------------------------------ returns
def daily_returns(equity: pd.Series, initial_equity: float | None = None, *,
                  sessions: Sequence[Any] | None = None, reset_daily: bool = False,
                  timezone: str = "America/New_York") -> pd.Series:
    """One return per session from an equity series (USD), per step or per day.

    ``sessions`` labels each value with its session; without it, a tz-aware DatetimeIndex is grouped by
    its date in ``timezone``, and any other index is taken as one value per day. ``initial_equity``
    defaults to the first value (then the first day's return is measured from it).
    """
    eq = pd.Series(np.asarray(equity, dtype=float), index=equity.index)
    if len(eq) == 0:
        return pd.Series(dtype=float)
    if not np.isfinite(eq.to_numpy()).all():
        bad = int(np.flatnonzero(~np.isfinite(eq.to_numpy()))[0])
        raise DataError("equity is not finite", file="<equity>", line=bad + 1, column="equity")
    if sessions is not None:
        labels = pd.Index(sessions)
        if len(labels) != len(eq):
            raise ValueError(f"sessions has {len(labels)} labels for {len(eq)} equity values")
    elif isinstance(eq.index, pd.DatetimeIndex) and eq.index.tz is not None:
        labels = eq.index.tz_convert(timezone).normalize().tz_localize(None)
    else:
        labels = eq.index
    close = eq.groupby(np.asarray(labels), sort=False).last()
    start = float(initial_equity) if initial_equity is not None else float(eq.iloc[0])
    if not start > 0:
        raise ValueError(f"initial equity must be > 0 (got {start})")
    values = close.to_numpy()
    if reset_daily:
        r = values / start - 1.0
    else:
        prev = np.concatenate([[start], values[:-1]])
        r = values / prev - 1.0
    return pd.Series(r, index=close.index, name="return")


def _drawdowns(curve: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(curve)
    return (peak - curve) / peak


def _ratio(num: float, den: float) -> float:
    if den == 0.0:
        return math.nan if num == 0.0 else math.copysign(math.inf, num)
    return num / den


def return_stats(returns: Sequence[float] | np.ndarray | pd.Series) -> dict[str, float]:
    """total_return, annual_return, sharpe, sortino, calmar, max_drawdown, ulcer_index, n_days."""
    r = np.asarray(returns, dtype=float)
    n = len(r)
    out: dict[str, float] = {"n_days": float(n)}
    if n == 0:
        return out | {k: math.nan for k in ("total_return", "annual_return", "sharpe", "sortino", "calmar",
                                              "max_drawdown", "ulcer_index")}
    curve = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    total = float(curve[-1] - 1.0)
    annual = float((1.0 + total) ** (TRADING_DAYS / n) - 1.0)
    dd = _drawdowns(curve)
    max_dd = float(dd.max())
    ulcer = float(math.sqrt(np.mean(dd[1:] ** 2)))
    if n >= 2:
        mean = float(r.mean())
        sharpe = sharpe_ratio(r)
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(TRADING_DAYS)
        sortino = _ratio(mean * TRADING_DAYS, downside)
    else:
        sharpe = sortino = math.nan
    calmar = annual / max_dd if max_dd > 0 else math.nan
    if math.isinf(calmar):
        calmar = math.nan
    return out | {"total_return": total, "annual_return": annual, "sharpe": sharpe, "sortino": sortino,
                  "calmar": calmar, "max_drawdown": max_dd, "ulcer_index": ulcer}


# ------------------------------------------------------------------------------------- trades
def _check_trades(trades: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in TRADE_COLUMNS if c not in trades.columns]
    if "commission" not in trades.columns and "fees" not in trades.columns:
        missing.append("commission (or fees)")
    if missing:
        raise DataError(f"trade list lacks columns {missing}", file="<trades>", rule="missing_column",
                        column=missing[0])
    t = trades.copy()
    if "commission" not in t.columns:
        t["commission"] = t["fees"]
    for col in ("qty", "price", "spread_cost", "impact_cost", "commission"):
        v = pd.to_numeric(t[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if col == "price":
            bad |= v <= 0
        elif col != "qty":
            bad |= v < 0
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"bad value {t[col].iloc[row]!r}", file="<trades>", line=row + 1,
                            rule="bad_value", column=col)
        t[col] = v
    return t


def round_trips(trades: pd.DataFrame) -> pd.DataFrame:
    """Closed round trips: symbol, open_step, close_step, pnl (USD, net of costs), holding_bars.
    Also ``.attrs['open_trades']``: round trips still open at the end."""
    t = _check_trades(trades)
    rows: list[tuple[str, int, int, float]] = []
    still_open = 0
    t = t[t["qty"] != 0].sort_values(["symbol", "step"], kind="stable")
    for sym, g in t.groupby("symbol", sort=True):
        pos = 0.0
        acc = 0.0
        open_step = 0
        for step, q, px, cost in zip(g["step"].to_numpy(), g["qty"].to_numpy(), g["price"].to_numpy(),
                                     (g["spread_cost"] + g["impact_cost"] + g["commission"]).to_numpy()):
            step = int(step)
            if pos == 0.0:
                open_step, acc, pos = step, -q * px - cost, q
            elif (q > 0) == (pos > 0):
                acc += -q * px - cost
                pos += q
            elif abs(q) <= abs(pos) * (1 + 1e-12):
                acc += -q * px - cost
                pos += q
                if abs(pos) <= 1e-9 * max(abs(q), 1.0):
                    rows.append((sym, open_step, step, acc))
                    pos = 0.0
            else:  # flip: close the old round trip with part of this fill, open a new one with the rest
                frac = abs(pos) / abs(q)
                acc += pos * px - cost * frac
                rows.append((sym, open_step, step, acc))
                rest = q + pos
                open_step, acc, pos = step, -rest * px - cost * (1.0 - frac), rest
        if pos != 0.0:
            still_open += 1
    out = pd.DataFrame(rows, columns=["symbol", "open_step", "close_step", "pnl"])
    out["holding_bars"] = out["close_step"] - out["open_step"]
    out.attrs["open_trades"] = still_open
    return out


def trade_stats(trades: pd.DataFrame | None) -> dict[str, Any]:
    """n_trades, round-trip stats, costs in bps, illiquid_trade_share, avg_participation, notional."""
    empty_costs = {"spread": 0.0, "impact": 0.0, "commission": 0.0, "total": 0.0}
    if trades is None or len(trades) == 0:
        return {"n_trades": 0, "n_round_trips": 0, "open_trades": 0, "win_rate": math.nan,
                "profit_factor": math.nan, "avg_holding_bars": math.nan, "costs": empty_costs,
                "illiquid_trade_share": 0.0, "avg_participation": math.nan, "traded_notional": 0.0}
    t = _check_trades(trades)
    t = t[t["qty"] != 0]
    notional = (t["qty"].abs() * t["price"]).to_numpy()
    total = float(notional.sum())

    def bps(col: str) -> float:
        return float(t[col].sum()) / total * 1e4 if total > 0 else 0.0

    costs = {"spread": bps("spread_cost"), "impact": bps("impact_cost"), "commission": bps("commission")}
    costs["total"] = costs["spread"] + costs["impact"] + costs["commission"]
    if "tier" in t.columns and total > 0:
        illiquid = float(notional[(t["tier"] == "illiquid").to_numpy()].sum()) / total
    else:
        illiquid = 0.0
    participation = float(t["participation"].mean()) if "participation" in t.columns and len(t) else math.nan
    rt = round_trips(t)
    pnl = rt["pnl"].to_numpy()
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    if len(pnl):
        win_rate = float((pnl > 0).mean())
        profit_factor = float(wins / losses) if losses > 0 else (math.inf if wins > 0 else math.nan)
        holding = float(rt["holding_bars"].mean())
    else:
        win_rate = profit_factor = holding = math.nan
    return {"n_trades": int(len(t)), "n_round_trips": int(len(rt)), "open_trades": int(rt.attrs["open_trades"]),
            "win_rate": win_rate, "profit_factor": profit_factor, "avg_holding_bars": holding,
            "costs": costs, "illiquid_trade_share": illiquid, "avg_participation": participation,
            "traded_notional": total}


# ---------------------------------------------------------------------------------- together
def performance(equity: pd.Series, trades: pd.DataFrame | None = None, *, initial_equity: float | None = None,
                sessions: Sequence[Any] | None = None, reset_daily: bool = False) -> dict[str, Any]:
    """Every evaluation statistic (module docstring) from an equity series and a fill list."""
    r = daily_returns(equity, initial_equity, sessions=sessions, reset_daily=reset_daily)
    out: dict[str, Any] = return_stats(r.to_numpy())
    eq = np.asarray(equity, dtype=float)
    if len(eq) > len(r):  # finer than daily: the drawdown inside days too
        start = float(initial_equity) if initial_equity is not None else float(eq[0])
        if reset_daily:
            out["max_intraday_drawdown"] = math.nan  # equity restarts every day: see per-day figures
        else:
            out["max_intraday_drawdown"] = float(_drawdowns(np.concatenate([[start], eq])).max())
    ts = trade_stats(trades)
    n_days = len(r)
    mean_eq = float(eq.mean()) if len(eq) else math.nan
    ts["turnover"] = ts["traded_notional"] / mean_eq / n_days if n_days and mean_eq > 0 else 0.0
    out.update(ts)
    return out


def json_safe(obj: Any) -> Any:
    """Replace NaN and +-inf by None (JSON has no such numbers), recursively; numpy scalars to Python."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def costs_by_tier(trades: pd.DataFrame) -> pd.DataFrame:
    """Costs by kind and liquidity tier: one row per tier present (``"unknown"`` when a fill has none) and
    ``"all"``; columns ``fills``, ``notional`` (USD), ``spread``, ``impact``, ``commission``, ``total`` (bps of
    the row's traded notional, as ``trade_stats``) and ``total_usd``. Fills with ``qty == 0`` are ignored."""
    cols = ["fills", "notional", "spread", "impact", "commission", "total", "total_usd"]
    if trades is None or len(trades) == 0:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="tier"))
    t = _check_trades(trades)
    t = t[t["qty"] != 0].copy()
    t["notional"] = t["qty"].abs() * t["price"]
    tier = t["tier"] if "tier" in t.columns else pd.Series(None, index=t.index, dtype=object)
    t["tier"] = tier.astype(object).where(tier.notna(), "unknown").astype(str)
    order = {"liquid": 0, "mid": 1, "illiquid": 2}
    names = sorted(t["tier"].unique(), key=lambda s: (order.get(s, 3), s))
    groups = [(name, t[t["tier"] == name]) for name in names] + [("all", t)]
    rows = []
    for name, g in groups:
        notional = float(g["notional"].sum())
        usd = {k: float(g[c].sum()) for k, c in (("spread", "spread_cost"), ("impact", "impact_cost"),
                                                  ("commission", "commission"))}
        bps = {k: v / notional * 1e4 if notional > 0 else 0.0 for k, v in usd.items()}
        rows.append({"tier": name, "fills": int(len(g)), "notional": notional, **bps,
                     "total": sum(bps.values()), "total_usd": sum(usd.values())})
    return pd.DataFrame(rows, columns=["tier", *cols]).set_index("tier")
