"""The run report: a tear sheet in one self-contained HTML page (plots embedded as PNG data URIs).

``write_report_data(run_dir, data)`` stores what the page shows in ``report_data.json``;
``render_report(run_dir)`` turns it into ``report.html`` (``intradayjules report RUN_DIR`` regenerates it).
The data (written by ``pipeline.main_job``): ``name``, ``summary``, ``assessment``
(``assessment.Assessment.to_dict``: daily net P&L per policy on the full test sessions, comparisons, Sharpe
estimates, DSR, PBO, verdict), ``policies`` (per policy: ``description``, ``stats`` from
``evaluation.rollout_stats`` and ``records``, the paths of its ``daily.parquet``/``trades.parquet``
relative to the run directory), ``training``, ``tuning`` and ``lineage``.

Sections, each an ``<section id=...>``, in this order (``SECTIONS``):

* ``verdict``: the sentence the statistics support (``verdict.verdict``), first on the page;
* ``equity``: cumulative net P&L of the model and every reference on one chart, dates on the axis; drawdown;
* ``distribution``: daily net P&L per policy (histogram and box plot);
* ``comparison``: model vs each reference (mean difference, 95 % CI, bootstrap and t-test p-values, reading),
  the ranking by mean daily P&L, and each policy's Sharpe ratio with its CI and Lo standard errors;
* ``selection``: DSR and PBO of the tuning with their one-line reading and the CSCV logits;
* ``metrics``: the backtest statistics of every policy;
* ``costs``: costs by kind (bps of traded notional) and liquidity tier, per policy;
* ``trades``: the model's largest fills;
* ``training``: risk metrics and validation objective over training;
* ``tuning``: objective per trial (pruned and failed marked), parameter importances (horizontal bars, full
  names), best parameters;
* ``lineage``: config, fingerprints, versions.

Missing pieces (no tuning, no trades file) are stated in their section; the page never fetches anything.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..redact import redact_obj
from .assessment import Assessment
from .metrics import json_safe
from .tearsheet import (comparison_table, costs_table, data_uri, drawdown_chart, equity_chart, figure_png, img_tag,
                        importance_chart, largest_trades_table, overfitting_block, pbo_logits_chart,
                        pnl_distribution_chart, sharpe_table, verdict_block)

SECTIONS = ("verdict", "equity", "distribution", "comparison", "selection", "metrics", "costs", "trades", "training",
            "tuning", "lineage")
METRIC_ROWS = ("total_return", "sharpe", "sortino", "max_drawdown", "ulcer_index", "turnover", "n_trades",
               "win_rate", "profit_factor", "avg_holding_bars", "illiquid_trade_share", "illiquid_order_share",
               "avg_participation", "mean_daily_return_bps")


def suite_data(suite, records: dict[str, dict[str, Path]], run_dir: str | Path) -> dict[str, Any]:
    """The report data of an evaluation suite (``suite.Suite``) whose records were written under ``run_dir``:
    ``{"assessment": ..., "policies": {name: {description, stats, records}}}``."""
    run_dir = Path(run_dir)
    return {"assessment": suite.assessment.to_dict(),
            "policies": {n: {"description": suite.descriptions.get(n, ""), "stats": suite.stats[n],
                             "records": {k: str(Path(p).relative_to(run_dir)) for k, p in records[n].items()}}
                         for n in suite.stats}}


def write_report_data(run_dir: str | Path, data: dict[str, Any]) -> Path:
    p = Path(run_dir) / "report_data.json"
    p.write_text(json.dumps(redact_obj(json_safe(data)), indent=1, default=str))  # no passwords (redact.py)
    return p


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    if v is None:
        return "n/a"
    return html.escape(str(v))


def _uri(fig: Figure) -> str:
    return data_uri(figure_png(fig))


def _lines(xs, series: dict[str, list[float]], title: str, xlabel: str) -> str:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return img_tag(_uri(fig), title)


def _tuning_plot(trials: list[dict]) -> str:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    for state, marker, color in (("complete", "o", "#1f77b4"), ("pruned", "x", "#7f7f7f"), ("failed", "s", "#d62728")):
        pts = [(t["number"], t["value"]) for t in trials if t.get("state") == state and t.get("value") is not None
               and math.isfinite(t["value"])]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, color=color, label=f"{state} ({len(pts)})")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (last reported)")
    ax.set_title("tuning history")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return img_tag(_uri(fig), "tuning history")


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _read(run_dir: Path, rel: str | None) -> pd.DataFrame | None:
    if not rel:
        return None
    p = run_dir / rel
    return pd.read_parquet(p) if p.exists() else None


def seeds_block(comparison: dict | None) -> str:
    """The seed comparison of a run with ``agent.n_seeds`` > 1 (``pipeline.compare.comparison_table``): per
    arm mean +- sd over seeds and the per-seed values, then each contrast with its two-level interval. The
    tables above judge the registered model (one seed); this one judges the training set-up."""
    if not comparison:
        return ""
    arms = _table(["arm", "mean (bps/day)", "sd over seeds", "per seed"],
                  [[html.escape(n), _fmt(a["mean"]), _fmt(a["sd"]), ", ".join(_fmt(v) for v in a["per_seed"])]
                   for n, a in comparison["arms"].items()], "seeds")
    rows = [[html.escape(f"{c['a']} - {c['b']}"), _fmt(c["mean_diff_bps"]),
             f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]", _fmt(c["p_value"]), html.escape(c["verdict"])]
            for c in comparison["contrasts"]]
    n = max((len(a["per_seed"]) for a in comparison["arms"].values()), default=0)
    return (f"<h3>The training set-up over {n} seeds (paired daily net P&amp;L, sessions and seeds resampled)</h3>"
            + arms + _table(["contrast", "mean difference (bps/day)", "95 % CI", "p", "reading"], rows, "seeds"))


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body}</section>'


def render_report(run_dir: str | Path) -> Path:
    """Render ``report.html`` from ``report_data.json`` in ``run_dir``."""
    run_dir = Path(run_dir)
    src = run_dir / "report_data.json"
    if not src.exists():
        raise FileNotFoundError(f"{src} not found: run `intradayjules run` first")
    data = json.loads(src.read_text())
    a = Assessment.from_dict(data["assessment"])
    policies: dict[str, dict] = data.get("policies", {})
    subject = a.subject
    parts = [f"<h1>IntradayJules report: {html.escape(str(data.get('name', run_dir.name)))}</h1>",
             f"<p>{html.escape(str(data.get('summary', '')))}</p>"]

    parts.append(_section("verdict", "Verdict", verdict_block(a.verdict)))

    n_full, n_part = len(a.sessions), len(a.excluded)
    span = f"{a.sessions[0]} .. {a.sessions[-1]}" if a.sessions else "none"
    note = (f"<p>{n_full} full test sessions ({html.escape(span)}); {n_part} partial session(s) excluded"
            f"{': ' + html.escape(', '.join(a.excluded)) if a.excluded else ''}. Net of every cost, in bps of "
            "starting capital; every session starts from the same capital and ends flat.</p>")
    pnl = {k: v for k, v in a.pnl.items() if len(v)}
    if pnl:
        charts = img_tag(equity_chart(pnl), "cumulative net P&L of every policy") + img_tag(
            drawdown_chart(pnl), "drawdown of every policy")
        dist = img_tag(pnl_distribution_chart(pnl), "distribution of daily net P&L")
    else:
        charts = dist = "<p>no full sessions to plot</p>"
    parts.append(_section("equity", "Equity and drawdown (test sessions, realistic costs)", note + charts))
    parts.append(_section("distribution", "Daily net P&L", dist))

    desc = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(p.get('description') or '')}</li>"
                   for n, p in policies.items())
    ranking = _table(["rank", "policy", "mean (bps/day)", "total (bps)", "sessions"],
                     [[str(i + 1), html.escape(r["policy"]), _fmt(r["mean_bps"]), _fmt(r["total_bps"]),
                       _fmt(r["sessions"])] for i, r in enumerate(a.ranking)], "ranking")
    parts.append(_section("comparison", f"{subject.capitalize()} vs every reference (paired daily net P&L)",
                          f"<ul>{desc}</ul>" + comparison_table(a.comparisons)
                          + "<h3>Ranking by mean daily net P&amp;L (the paired comparison's quantity)</h3>" + ranking
                          + "<h3>Sharpe ratios</h3>" + sharpe_table(a.sharpes)
                          + "<p>Sharpe ratios describe risk-adjusted return; they do not rank policies (two "
                            "negative Sharpe ratios say nothing about which lost less).</p>"
                          + seeds_block(data.get("comparison"))))

    sel = overfitting_block(a.dsr, a.pbo)
    if a.selection_note:
        sel += f"<p>{html.escape(a.selection_note)}</p>"
    if a.dsr is not None or a.pbo is not None:
        sel += (f"<p>From the validation P&amp;L of {a.n_trials} tuning trial(s) on {a.trial_sessions} validation "
                "session(s) (each trial's last evaluation).</p>")
    if a.pbo is not None and len(a.pbo.logits):
        sel += img_tag(pbo_logits_chart(a.pbo), "CSCV logits")
    parts.append(_section("selection", "Selection among tuning trials: deflated Sharpe and PBO", sel))

    names = list(policies)
    rows = [[k] + [_fmt(policies[n]["stats"].get(k)) for n in names] for k in METRIC_ROWS]
    parts.append(_section("metrics", "Backtest statistics (all test sessions)", _table(["metric", *names], rows)))

    trades = {n: _read(run_dir, p.get("records", {}).get("trades")) for n, p in policies.items()}
    have = {n: t for n, t in trades.items() if t is not None}
    cost_body = costs_table(have) if have else "<p>no trades files found</p>"
    tiers = _table(["policy", "liquid (USD)", "mid (USD)", "illiquid (USD)"],
                   [[html.escape(n)] + [f"{policies[n]['stats'].get('traded_notional_by_tier', {}).get(t, 0.0):,.0f}"
                                        for t in ("liquid", "mid", "illiquid")] for n in names])
    parts.append(_section("costs", "Costs by kind and liquidity tier (bps of traded notional)",
                          cost_body + "<h3>Traded notional by tier</h3>" + tiers))
    model_trades = trades.get(subject)
    parts.append(_section("trades", f"Largest fills of the {subject}",
                          largest_trades_table(model_trades) if model_trades is not None else "<p>no trades file</p>"))

    tr = data.get("training", [])
    if tr:
        xs = [e["timesteps"] for e in tr]
        body = _lines(xs, {k: [e.get(k, math.nan) for e in tr] for k in
                           ("risk/composite", "risk/illiquid_share", "risk_norm/drawdown", "risk_norm/impact")},
                      "risk over training (validation)", "timesteps")
        body += _lines(xs, {"objective": [e.get("eval/objective", math.nan) for e in tr]}, "validation objective",
                       "timesteps")
    else:
        body = "<p>no training evaluations recorded</p>"
    parts.append(_section("training", "Risk metrics over training", body))

    tune = data.get("tuning", {})
    trials = tune.get("trials", [])
    if trials:
        counts = {s: sum(1 for t in trials if t.get("state") == s) for s in ("complete", "pruned", "failed")}
        body = (f"<p>{len(trials)} trials: {counts['complete']} complete, {counts['pruned']} pruned, "
                f"{counts['failed']} failed; wall {_fmt(tune.get('wall_s'))} s; best {_fmt(tune.get('best_value'))}</p>")
        body += _tuning_plot(trials)
        imp = {k: v for k, v in (tune.get("importances") or {}).items()
               if isinstance(v, (int, float)) and math.isfinite(v)}
        if tune.get("note"):
            body += f"<p>{html.escape(str(tune['note']))}</p>"
        if imp:
            body += img_tag(importance_chart(imp, title="parameter importances"), "parameter importances")
        best = tune.get("best_params") or {}
        body += _table(["best parameter", "value"], [[html.escape(k), _fmt(v)] for k, v in best.items()])
    else:
        body = "<p>no tuning in this run</p>"
    parts.append(_section("tuning", "Tuning", body))

    lin = data.get("lineage", {})
    body = _table(["item", "value"], [[html.escape(str(k)), f"<code>{html.escape(str(v))}</code>"]
                                       for k, v in lin.items()])
    if data.get("config_yaml"):
        body += (f"<details><summary>resolved configuration</summary><pre>{html.escape(data['config_yaml'])}"
                 "</pre></details>")
    parts.append(_section("lineage", "Lineage", body))

    page = ("<!doctype html><html><head><meta charset='utf-8'><title>IntradayJules report</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
            "text-align:right}td:first-child,th:first-child{text-align:left}img.plot{max-width:100%}"
            "table.comparison td:last-child,table.ranking td:nth-child(2),table.costs td:nth-child(2){text-align:left}"
            "section{margin-bottom:2em}p.verdict{font-size:1.1em;background:#f4f4f4;padding:0.8em;"
            "border-left:4px solid #1f77b4}</style></head><body>" + "\n".join(parts) + "</body></html>")
    out = run_dir / "report.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out
