"""Tables the commands print, built from evaluation results (rich)."""

from __future__ import annotations

import math

from rich.table import Table


def _fmt(v, spec: str = ".4g") -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else format(v, spec)
    return str(v)


def _p(p: float) -> str:
    if not isinstance(p, float) or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def suite_table(suite, title: str) -> Table:
    """One row per policy (the subject first): mean and total daily net P&L, Sharpe, trades, and the
    subject minus the policy on paired daily P&L with its 95 % CI, bootstrap p-value and reading."""
    from ..evaluate.verdict import comparison_reading

    a = suite.assessment
    table = Table(title=f"{title}: {len(a.sessions)} full sessions, {a.n_excluded} partial excluded")
    for c in ("policy", "mean bps/day", "total bps", "Sharpe", "trades", f"{a.subject} - policy", "95 % CI", "p",
              "reading"):
        table.add_column(c, justify="left" if c in ("policy", "reading") else "right")
    for name, pnl in a.pnl.items():
        c = a.comparisons.get(name)
        row = [name, _fmt(float(pnl.mean()) if len(pnl) else math.nan, "+.2f"), _fmt(float(pnl.sum()), "+.1f"),
               _fmt(a.sharpes[name].sharpe, ".2f"), str(suite.stats[name].get("n_trades", ""))]
        if c is None:
            row += ["", "", "", "(subject)"]
        else:
            row += [_fmt(c.mean_diff, "+.2f"), f"[{_fmt(c.ci_low, '+.2f')}, {_fmt(c.ci_high, '+.2f')}]",
                    _p(c.p_value), comparison_reading(c)]
        table.add_row(*row)
    return table
