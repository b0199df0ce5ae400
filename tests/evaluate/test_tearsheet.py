"""Tear-sheet charts (dates on the axis, values from the input) and HTML tables (values, escaping)."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import matplotlib.dates as mdates
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from intradayjules.evaluate import tearsheet as ts
from intradayjules.evaluate.metrics import costs_by_tier
from intradayjules.evaluate.overfitting import deflated_sharpe_from_trials, pbo_cscv
from intradayjules.evaluate.paired import paired_comparison
from intradayjules.evaluate.sharpe import sharpe_estimate

DATES = pd.bdate_range("2024-01-02", periods=60)


def pnl_dict():
    rng = np.random.default_rng(0)
    iso = [d.strftime("%Y-%m-%d") for d in DATES]  # ISO strings, as the rollout labels sessions
    return {"model": pd.Series(rng.normal(1, 10, 60), index=iso), "flat": pd.Series(0.0, index=iso),
            "buy_hold": pd.Series(rng.normal(0, 40, 60), index=DATES)}


class Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._row, self._in = [], None, False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._in = True
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "tr":
            self.rows.append(self._row)
        elif tag in ("td", "th"):
            self._in = False

    def handle_data(self, data):
        if self._in:
            self._row[-1] += data


def cells(fragment):
    p = Cells()
    p.feed(fragment)
    return p.rows


def decode(uri):
    assert uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(io.BytesIO(png))


def test_equity_chart_puts_every_policy_on_one_dated_axis():
    pnl = pnl_dict()
    fig = ts.equity_figure(pnl)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert set(lines) == set(pnl)
    x = mdates.num2date(mdates.date2num(lines["model"].get_xdata()))
    assert x[0].date() == DATES[0].date() and x[-1].date() == DATES[-1].date()
    np.testing.assert_allclose(lines["model"].get_ydata(), pnl["model"].cumsum().to_numpy())
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    lo, hi = mdates.num2date(ax.get_xlim()[0]), mdates.num2date(ax.get_xlim()[1])
    assert lo.date() <= DATES[0].date() and hi.date() >= DATES[-1].date()
    img = decode(ts.equity_chart(pnl))
    assert img.ndim == 3 and img.shape[1] > 400


def test_equity_sorts_sessions_and_rejects_non_dates():
    s = pd.Series([1.0, 2.0, 3.0], index=["2024-01-04", "2024-01-02", "2024-01-03"])
    line = ts.equity_figure({"model": s}).axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [2.0, 5.0, 6.0])
    with pytest.raises(ValueError, match="policy 'model': session labels must be dates"):
        ts.equity_figure({"model": pd.Series([1.0], index=["session-a"])})
    with pytest.raises(ValueError, match="2024-01-03"):
        ts.equity_figure({"model": pd.Series([1.0, np.nan], index=["2024-01-02", "2024-01-03"])})


def test_drawdown_values_by_hand():
    s = pd.Series([1.0, -2.0, 3.0, -1.0])
    np.testing.assert_allclose(ts.drawdown(s), [0.0, -2.0, 0.0, -1.0])
    np.testing.assert_allclose(ts.drawdown(pd.Series([-1.0, 2.0, -0.5])), [-1.0, 0.0, -0.5])  # peak starts at 0
    fig = ts.drawdown_figure(pnl_dict())
    ys = {ln.get_label(): ln.get_ydata() for ln in fig.axes[0].get_lines()}
    assert max(np.max(y) for y in ys.values()) <= 0.0
    decode(ts.drawdown_chart(pnl_dict()))


def test_pnl_distribution_has_histogram_and_boxes_per_policy():
    fig = ts.pnl_distribution_figure(pnl_dict())
    ax_h, ax_b = fig.axes
    assert [t.get_text() for t in ax_b.get_yticklabels()] == ["model", "flat", "buy_hold"]
    assert len(ax_h.patches) == 3
    decode(ts.pnl_distribution_chart(pnl_dict()))


def test_importances_horizontal_sorted_with_full_names():
    imp = {"agent.learning_rate": 0.1, "risk.weights.drawdown_penalty_multiplier": 0.6, "gamma": float("nan"),
           "agent.exploration_fraction": 0.3}
    fig = ts.importance_figure(imp)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["risk.weights.drawdown_penalty_multiplier", "agent.exploration_fraction",
                      "agent.learning_rate"]
    widths = [p.get_width() for p in ax.patches]
    assert widths == [0.6, 0.3, 0.1]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # inverted: the largest at the top
    with pytest.raises(ValueError, match="no finite"):
        ts.importance_figure({"a": float("nan")})
    decode(ts.importance_chart(imp))


def test_comparison_and_sharpe_tables():
    pnl = pnl_dict()
    c = paired_comparison(pnl["model"], pnl["flat"], name_b="flat<script>", n_resamples=2000)
    rows = cells(ts.comparison_table([c]))
    assert rows[0][0] == "comparison" and rows[0][2] == "95 % CI"
    row = rows[1]
    assert row[0] == "model vs flat<script>"  # text, not markup
    assert row[1] == f"{c.mean_diff:+.2f}" and row[2] == f"[{c.ci_low:+.2f}, {c.ci_high:+.2f}]"
    assert row[3] == f"{c.p_value:.3f}" and row[5] == "60"
    assert "<script>" not in ts.comparison_table([c])
    est = {"model": sharpe_estimate(pnl["model"], n_resamples=2000), "flat": sharpe_estimate(pnl["flat"])}
    srows = cells(ts.sharpe_table(est))
    assert srows[1][1] == f"{est['model'].sharpe:.2f}"
    assert srows[2][1] == "n/a" and srows[2][-1] == "no variance"


def test_overfitting_block_reading_and_numbers():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(120, 8))
    d, p = deflated_sharpe_from_trials(m), pbo_cscv(m, n_blocks=8)
    frag = ts.overfitting_block(d, p)
    assert "the best of 8 trials is" in frag
    table = dict(r for r in cells(frag) if len(r) == 2)
    assert table["PBO (CSCV)"] == f"{p.pbo:.3f}" and table["DSR p-value"] == f"{d.p_value:.3f}"
    assert table["blocks / combinations"] == "8 / 70"
    assert "no tuning trials" in ts.overfitting_block(None, None)
    decode(ts.pbo_logits_chart(p))


TRADES = pd.DataFrame({
    "step": [1, 2, 3, 4], "session": ["2024-01-02"] * 2 + ["2024-01-03"] * 2, "symbol": ["A", "B", "A", "C"],
    "qty": [100.0, -50.0, -100.0, 10.0], "price": [10.0, 40.0, 11.0, 5.0],
    "spread_cost": [0.5, 1.0, 0.5, 0.1], "impact_cost": [0.1, 2.0, 0.2, 0.4], "commission": [0.0, 0.0, 0.1, 0.0],
    "tier": ["liquid", "illiquid", "liquid", None]})


def test_costs_by_tier_by_hand():
    t = costs_by_tier(TRADES)
    assert list(t.index) == ["liquid", "illiquid", "unknown", "all"]
    liquid = t.loc["liquid"]  # notional 1000 + 1100 = 2100; spread 1.0, impact 0.3, commission 0.1 USD
    assert liquid["notional"] == 2100 and liquid["fills"] == 2
    assert liquid["spread"] == pytest.approx(1.0 / 2100 * 1e4)
    assert liquid["impact"] == pytest.approx(0.3 / 2100 * 1e4)
    assert liquid["total"] == pytest.approx(1.4 / 2100 * 1e4) and liquid["total_usd"] == pytest.approx(1.4)
    assert t.loc["all", "notional"] == 2100 + 2000 + 50
    assert t.loc["all", "total_usd"] == pytest.approx(4.9)
    rows = cells(ts.costs_table({"model": TRADES, "flat": TRADES.iloc[0:0]}))
    assert rows[1][:4] == ["model", "liquid", "2", "2,100"]
    assert rows[-1][:2] == ["flat", "no trades"]


def test_largest_trades_by_notional():
    rows = cells(ts.largest_trades_table(TRADES, k=2))
    assert [r[2] for r in rows[1:]] == ["B", "A"]  # 2,000 then 1,100 USD
    assert rows[1][3] == "sell" and rows[1][6] == "2,000" and rows[1][8] == f"{3.0 / 2000 * 1e4:.2f}"
    assert len(cells(ts.largest_trades_table(TRADES.iloc[0:0]))) == 1  # header only


def test_verdict_block_escapes():
    assert ts.verdict_block("a < b") == '<p class="verdict"><strong>Verdict:</strong> a &lt; b</p>'


def test_every_policy_of_a_report_gets_its_own_colour():
    from intradayjules.agents.references import REFERENCE_NAMES
    from intradayjules.evaluate.tearsheet import colors_for

    names = ["model", *REFERENCE_NAMES, "baseline", "other_a", "other_b"]
    colors = colors_for(names)
    assert len(set(colors.values())) == len(names)
