"""Tear-sheet pieces: charts (PNG bytes or base64 data URIs) and HTML tables, each self-contained.

Inputs are plain data: ``pnl`` maps a policy name to a ``pd.Series`` of daily net P&L in bps, indexed by
session date (``datetime64``, ``date`` or ISO strings); comparisons, Sharpe estimates, DSR and PBO are the
dataclasses of ``paired``, ``sharpe`` and ``overfitting``; trades follow the fill contract of ``metrics``.

Charts (``*_figure`` returns the matplotlib ``Figure``; the function without the suffix returns a data URI):

* ``equity``: cumulative net P&L (bps of equity, the sum of daily net bps) of every policy on one chart,
  dates on the x axis.
* ``drawdown``: cumulative P&L minus its running maximum (bps, <= 0; the maximum starts at 0 before the first
  session), every policy on one chart, dates on the x axis.
* ``pnl_distribution``: histogram (shared bins) and box plot of daily net P&L per policy.
* ``importance``: horizontal bars of parameter importances, largest at the top, full parameter names.
* ``pbo_logits``: histogram of the CSCV logits, the line at 0 (left of it = overfit).

Tables (HTML fragments, every text escaped): ``comparison_table`` (paired comparisons with CIs and both
p-values), ``sharpe_table``, ``overfitting_block`` (DSR and PBO numbers with the one-line reading),
``costs_table`` (costs by kind and tier, ``metrics.costs_by_tier``), ``largest_trades_table``,
``verdict_block``. Numbers print as "n/a" when NaN, with the reason where one is known.

Figures are built on ``matplotlib.figure.Figure`` (rendered by the Agg canvas, no pyplot global state), so
these functions are safe to call from worker threads and never open a window.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import costs_by_tier
from .overfitting import DeflatedSharpe, PBOResult
from .paired import PairedComparison
from .sharpe import SharpeEstimate
from .verdict import comparison_reading, selection_phrase

COLORS = {"model": "#1f77b4", "flat": "#7f7f7f", "buy_hold": "#d62728", "buy_hold_liquid": "#e377c2",
          "random": "#9467bd", "baseline": "#ff7f0e", "momentum": "#2ca02c", "reversal": "#8c564b",
          "mean_reversion": "#8c564b"}
_CYCLE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
DPI = 90


# ------------------------------------------------------------------------------------ helpers
def figure_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes (Agg)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def img_tag(uri: str, alt: str) -> str:
    return f'<img class="plot" alt="{html.escape(alt)}" src="{uri}">'


def colors_for(names: Iterable[str]) -> dict[str, str]:
    """A stable colour per policy: fixed for known names, then a cycle for the others in order (colours the
    known names take are skipped while the cycle has others)."""
    names = list(names)
    taken = {COLORS[n] for n in names if n in COLORS}
    free = [c for c in _CYCLE if c not in taken] or list(_CYCLE)
    out, k = {}, 0
    for name in names:
        if name in COLORS:
            out[name] = COLORS[name]
        else:
            out[name] = free[k % len(free)]
            k += 1
    return out


def _dated(name: str, s: pd.Series) -> pd.Series:
    if len(s) == 0:
        raise ValueError(f"policy {name!r}: no sessions to plot")
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(s.index))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"policy {name!r}: session labels must be dates (first is {s.index[0]!r})") from exc
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    v = pd.Series(np.asarray(s, dtype=float), index=idx).sort_index()
    bad = np.flatnonzero(~np.isfinite(v.to_numpy()))
    if len(bad):
        raise ValueError(f"policy {name!r}: daily P&L on {v.index[bad[0]].date()} is {v.iloc[bad[0]]}")
    return v


def cumulative(s: pd.Series) -> pd.Series:
    return s.cumsum()


def drawdown(s: pd.Series) -> pd.Series:
    """Cumulative P&L minus its running maximum, the maximum starting at 0 before the first session."""
    cum = s.cumsum()
    return cum - np.maximum(cum.cummax(), 0.0)


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _fmt(v: Any, spec: str = ".2f", signed: bool = False) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "n/a"
        return format(float(v), ("+" if signed else "") + spec)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return html.escape(str(v))


def _p(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return "&lt; 0.001" if v < 0.001 else f"{v:.3f}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str) -> str:
    """Cells are HTML already (escape text before)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# ------------------------------------------------------------------------------------- charts
def equity_figure(pnl: Mapping[str, pd.Series], *, title: str = "cumulative net P&L") -> Figure:
    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    for name, color in colors_for(pnl).items():
        s = _dated(name, pnl[name])
        ax.plot(s.index, cumulative(s).to_numpy(), label=name, color=color, lw=1.4)
    ax.axhline(0.0, color="#444", lw=0.6)
    _date_axis(ax)
    ax.set_ylabel("bps of equity")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def equity_chart(pnl: Mapping[str, pd.Series], **kw: Any) -> str:
    return data_uri(figure_png(equity_figure(pnl, **kw)))


def drawdown_figure(pnl: Mapping[str, pd.Series], *, title: str = "drawdown of cumulative net P&L") -> Figure:
    fig = Figure(figsize=(8, 2.6))
    ax = fig.add_subplot()
    for name, color in colors_for(pnl).items():
        s = _dated(name, pnl[name])
        ax.plot(s.index, drawdown(s).to_numpy(), label=name, color=color, lw=1.2)
    _date_axis(ax)
    ax.set_ylabel("bps below peak")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def drawdown_chart(pnl: Mapping[str, pd.Series], **kw: Any) -> str:
    return data_uri(figure_png(drawdown_figure(pnl, **kw)))


def pnl_distribution_figure(pnl: Mapping[str, pd.Series], *, bins: int = 40) -> Figure:
    names = list(pnl)
    colors = colors_for(names)
    values = [_dated(n, pnl[n]).to_numpy() for n in names]
    fig = Figure(figsize=(8, 2.4 + 0.3 * len(names)), layout="constrained")
    ax_h, ax_b = fig.subplots(1, 2, width_ratios=[3, 2])
    allv = np.concatenate(values)
    lo, hi = float(allv.min()), float(allv.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    for name, v in zip(names, values):
        ax_h.hist(v, bins=edges, histtype="step", lw=1.3, color=colors[name], label=name)
    ax_h.set_xlabel("daily net P&L (bps)")
    ax_h.set_ylabel("sessions")
    ax_h.legend(fontsize=8)
    ax_b.boxplot(values, orientation="horizontal", tick_labels=names, widths=0.6)
    ax_b.invert_yaxis()  # first policy at the top, as in the legend
    ax_b.axvline(0.0, color="#444", lw=0.6)
    ax_b.set_xlabel("daily net P&L (bps)")
    fig.suptitle("distribution of daily net P&L")
    return fig


def pnl_distribution_chart(pnl: Mapping[str, pd.Series], **kw: Any) -> str:
    return data_uri(figure_png(pnl_distribution_figure(pnl, **kw)))


def importance_figure(importances: Mapping[str, float], *, title: str = "parameter importances") -> Figure:
    """Horizontal bars, largest at the top, the full parameter names as labels. NaN values are skipped."""
    items = sorted(((str(k), float(v)) for k, v in importances.items() if v is not None and math.isfinite(v)),
                   key=lambda kv: kv[1], reverse=True)
    if not items:
        raise ValueError("no finite parameter importances to plot")
    names, vals = zip(*items)
    fig = Figure(figsize=(7, 0.9 + 0.32 * len(items)))
    ax = fig.add_subplot()
    y = np.arange(len(items))
    ax.barh(y, vals, color="#1f77b4")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    for yi, v in zip(y, vals):
        ax.text(v, yi, f" {v:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, max(vals) * 1.18 if max(vals) > 0 else 1.0)
    ax.set_xlabel("importance")
    ax.set_title(title)
    return fig


def importance_chart(importances: Mapping[str, float], **kw: Any) -> str:
    return data_uri(figure_png(importance_figure(importances, **kw)))


def pbo_logits_figure(pbo: PBOResult) -> Figure:
    fig = Figure(figsize=(6, 2.6))
    ax = fig.add_subplot()
    ax.hist(pbo.logits, bins=30, color="#1f77b4")
    ax.axvline(0.0, color="#d62728", lw=1.2)
    ax.set_xlabel("logit of the OOS rank of the IS-best trial (left of 0: overfit)")
    ax.set_ylabel("combinations")
    ax.set_title(f"CSCV: PBO = {pbo.pbo:.2f} over {pbo.n_combinations} combinations")
    return fig


def pbo_logits_chart(pbo: PBOResult) -> str:
    return data_uri(figure_png(pbo_logits_figure(pbo)))


# ------------------------------------------------------------------------------------- tables
def verdict_block(text: str) -> str:
    return f'<p class="verdict"><strong>Verdict:</strong> {html.escape(text)}</p>'


def comparison_table(comparisons: Mapping[str, PairedComparison] | Iterable[PairedComparison], *,
                     units: str = "bps/day") -> str:
    """One row per reference: mean difference, CI, bootstrap and t-test p-values, n, block, reading."""
    comps = list(comparisons.values()) if isinstance(comparisons, Mapping) else list(comparisons)
    level = f"{comps[0].level * 100:g} %" if comps else "95 %"
    headers = ["comparison", f"mean difference ({units})", f"{level} CI", "p (bootstrap)", "p (t-test)",
               "sessions", "mean block (days)", "reading"]
    rows = []
    for c in comps:
        ci = f"[{_fmt(c.ci_low, signed=True)}, {_fmt(c.ci_high, signed=True)}]"
        rows.append([html.escape(f"{c.name_a} vs {c.name_b}"), _fmt(c.mean_diff, signed=True), ci, _p(c.p_value),
                     _p(c.p_value_t), _fmt(c.n), _fmt(c.block_length, ".1f"),
                     html.escape(comparison_reading(c))])
    return _table(headers, rows, "comparison")


def sharpe_table(sharpes: Mapping[str, SharpeEstimate]) -> str:
    """Annualised Sharpe per policy with its bootstrap CI and Lo (2002) standard errors."""
    level = f"{next(iter(sharpes.values())).level * 100:g} %" if sharpes else "95 %"
    headers = ["policy", "Sharpe (annualised)", f"{level} CI (bootstrap)", "SE Lo iid", "SE Lo HAC",
               "mean (bps/day)", "sd (bps/day)", "sessions", "note"]
    rows = []
    for name, s in sharpes.items():
        rows.append([html.escape(str(name)), _fmt(s.sharpe), f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]",
                     _fmt(s.se_iid), _fmt(s.se_hac), _fmt(s.mean), _fmt(s.sd), _fmt(s.n),
                     html.escape(s.reason)])
    return _table(headers, rows, "sharpe")


def overfitting_block(dsr: DeflatedSharpe | None, pbo: PBOResult | None, *, alpha: float = 0.05) -> str:
    """The one-line reading of DSR and PBO, then their numbers."""
    parts = [f'<p class="reading">{html.escape(selection_phrase(dsr, pbo, alpha=alpha))}</p>']
    rows = []
    if dsr is not None:
        rows += [["trials (N)", _fmt(dsr.n_trials)],
                 ["selected trial", html.escape(str(dsr.selected)) if dsr.selected is not None else "n/a"],
                 ["Sharpe of the selected trial (annualised)", _fmt(dsr.sharpe_annual)],
                 ["expected max Sharpe of N luck-only trials (annualised)", _fmt(dsr.sr0_annual)],
                 ["deflated Sharpe ratio (DSR)", _fmt(dsr.dsr, ".3f")],
                 ["DSR p-value", _p(dsr.p_value)],
                 ["sessions", _fmt(dsr.n_obs)],
                 ["skewness / kurtosis", f"{_fmt(dsr.skew)} / {_fmt(dsr.kurt)}"],
                 ["trials without variance (not in the Sharpe variance)", _fmt(dsr.n_undefined)]]
        if dsr.reason:
            rows.append(["DSR undefined", html.escape(dsr.reason)])
    if pbo is not None:
        rows += [["PBO (CSCV)", _fmt(pbo.pbo, ".3f")],
                 ["blocks / combinations", f"{pbo.n_blocks} / {pbo.n_combinations:,}"],
                 ["performance metric", html.escape(pbo.metric)],
                 ["degradation slope (OOS on IS)", _fmt(pbo.slope, ".3f")],
                 ["P(selected trial loses out of sample)", _fmt(pbo.prob_oos_loss, ".3f")]]
    if rows:
        parts.append(_table(["statistic", "value"], rows, "overfitting"))
    return "".join(parts)


def costs_table(trades: Mapping[str, pd.DataFrame]) -> str:
    """Costs by kind (bps of traded notional) and liquidity tier, per policy (``metrics.costs_by_tier``)."""
    headers = ["policy", "tier", "fills", "traded notional (USD)", "spread (bps)", "impact (bps)",
               "commission (bps)", "total (bps)", "total (USD)"]
    rows = []
    for name, t in trades.items():
        table = costs_by_tier(t)
        if len(table) == 0:
            rows.append([html.escape(str(name)), "no trades", "0", "0", "", "", "", "", "0"])
            continue
        for tier, r in table.iterrows():
            rows.append([html.escape(str(name)), html.escape(str(tier)), _fmt(int(r["fills"])),
                         _fmt(r["notional"], ",.0f"), _fmt(r["spread"]), _fmt(r["impact"]), _fmt(r["commission"]),
                         _fmt(r["total"]), _fmt(r["total_usd"], ",.0f")])
    return _table(headers, rows, "costs")


def largest_trades_table(trades: pd.DataFrame, k: int = 10) -> str:
    """The ``k`` fills with the largest traded notional, largest first, with their costs in bps."""
    headers = ["session", "step", "symbol", "side", "qty", "price", "notional (USD)", "tier", "cost (bps)"]
    if trades is None or len(trades) == 0:
        return _table(headers, [], "largest-trades")
    t = trades[pd.to_numeric(trades["qty"]) != 0].copy()
    t["notional"] = t["qty"].abs() * t["price"]
    fees = t["commission"] if "commission" in t.columns else t.get("fees", 0.0)
    t["cost_bps"] = (t["spread_cost"] + t["impact_cost"] + fees) / t["notional"] * 1e4
    t = t.sort_values("notional", ascending=False, kind="stable").head(k)
    rows = []
    for _, r in t.iterrows():
        rows.append([html.escape(str(r.get("session", ""))), _fmt(int(r["step"])), html.escape(str(r["symbol"])),
                     "buy" if r["qty"] > 0 else "sell", _fmt(abs(float(r["qty"])), ",.0f"), _fmt(r["price"]),
                     _fmt(r["notional"], ",.0f"), html.escape(str(r.get("tier", "") or "")), _fmt(r["cost_bps"])])
    return _table(headers, rows, "largest-trades")
