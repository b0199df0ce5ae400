"""The run report: one self-contained HTML page (plots embedded as PNG data URIs), readable offline.

``write_report_data(run_dir, data)`` stores everything the page shows in ``report_data.json``;
``render_report(run_dir)`` turns it into ``report.html`` (``intradayjules report RUN_DIR`` regenerates
it). Sections, each an ``<section id=...>``: ``equity`` (equity curves and drawdowns, model vs baseline),
``metrics`` (statistics table), ``costs`` (by kind, bps of traded notional), ``tiers`` (traded notional by
liquidity tier), ``training`` (risk metrics over training), ``tuning`` (objective per trial, pruned trials
marked, parameter importances) and ``lineage`` (config, fingerprints, versions).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from ..redact import redact_obj
from .metrics import json_safe

SECTIONS = ("equity", "metrics", "costs", "tiers", "training", "tuning", "lineage")
METRIC_ROWS = ("total_return", "sharpe", "sortino", "calmar", "max_drawdown", "ulcer_index", "turnover", "n_trades",
               "win_rate", "profit_factor", "avg_holding_bars", "illiquid_trade_share", "illiquid_order_share",
               "avg_participation", "mean_daily_return_bps")
COLORS = {"model": "#1f77b4", "baseline": "#d62728"}


def write_report_data(run_dir: str | Path, data: dict[str, Any]) -> Path:
    p = Path(run_dir) / "report_data.json"
    p.write_text(json.dumps(redact_obj(json_safe(data)), indent=1, default=str))  # no passwords (redact.py)
    return p


def equity_from_daily(closes: list[float], initial: float) -> list[float]:
    """Chain per-session returns (each session restarts from ``initial``) into one compounded curve."""
    curve, level = [1.0], 1.0
    for c in closes:
        level *= c / initial
        curve.append(level)
    return curve


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _img(uri: str, alt: str) -> str:
    return f'<img class="plot" alt="{html.escape(alt)}" src="{uri}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    if v is None:
        return "n/a"
    return html.escape(str(v))


def _plots_equity(data) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=[2, 1])
    for arm in ("model", "baseline"):
        ev = data.get("evaluation", {}).get(arm)
        if not ev:
            continue
        curve = ev["equity_curve"]
        peak, dd = -math.inf, []
        for x in curve:
            peak = max(peak, x)
            dd.append(x / peak - 1)
        ax1.plot(curve, label=arm, color=COLORS[arm])
        ax2.plot(dd, label=arm, color=COLORS[arm])
    ax1.set_ylabel("equity (start = 1)")
    ax1.legend()
    ax2.set_ylabel("drawdown")
    ax2.set_xlabel("test session")
    return _img(_png(fig), "equity curves and drawdowns")


def _bars(groups: dict[str, dict[str, float]], title: str, ylabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for g in groups.values() for k in g})
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / max(len(groups), 1)
    for i, (name, g) in enumerate(groups.items()):
        ax.bar([j + i * width for j in range(len(keys))], [g.get(k, 0.0) for k in keys], width, label=name,
               color=COLORS.get(name))
    ax.set_xticks([j + width * (len(groups) - 1) / 2 for j in range(len(keys))], keys)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return _img(_png(fig), title)


def _lines(xs, series: dict[str, list[float]], title: str, xlabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend()
    return _img(_png(fig), title)


def _tuning_plot(trials: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    for state, marker, color in (("complete", "o", "#1f77b4"), ("pruned", "x", "#7f7f7f"), ("failed", "s", "#d62728")):
        pts = [(t["number"], t["value"]) for t in trials if t.get("state") == state and t.get("value") is not None
               and math.isfinite(t["value"])]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, color=color, label=f"{state} ({len(pts)})")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (last reported)")
    ax.set_title("tuning history")
    ax.legend()
    return _img(_png(fig), "tuning history")


def render_report(run_dir: str | Path) -> Path:
    """Render ``report.html`` from ``report_data.json`` in ``run_dir``."""
    run_dir = Path(run_dir)
    src = run_dir / "report_data.json"
    if not src.exists():
        raise FileNotFoundError(f"{src} not found: run `intradayjules run` first")
    data = json.loads(src.read_text())
    ev = data.get("evaluation", {})
    parts = [f"<h1>IntradayJules report: {html.escape(str(data.get('name', run_dir.name)))}</h1>",
             f"<p>{html.escape(str(data.get('summary', '')))}</p>"]

    parts.append('<section id="equity"><h2>Equity and drawdown (test sessions, realistic costs)</h2>')
    parts.append(_plots_equity(data) + "</section>")

    arms = [a for a in ("model", "baseline") if a in ev]
    rows = "".join(f"<tr><td>{k}</td>" + "".join(f"<td>{_fmt(ev[a]['stats'].get(k))}</td>" for a in arms) + "</tr>"
                   for k in METRIC_ROWS)
    head = "".join(f"<th>{a}</th>" for a in arms)
    parts.append(f'<section id="metrics"><h2>Metrics</h2><table><tr><th>metric</th>{head}</tr>{rows}</table></section>')

    costs = {a: {k: v for k, v in ev[a]["stats"]["costs"].items() if k != "total"} for a in arms}
    parts.append('<section id="costs"><h2>Costs by kind</h2>' + _bars(costs, "costs", "bps of traded notional")
                 + "</section>")
    tiers = {a: {k: v / 1e6 for k, v in ev[a]["stats"]["traded_notional_by_tier"].items()} for a in arms}
    parts.append('<section id="tiers"><h2>Traded notional by liquidity tier</h2>'
                 + _bars(tiers, "traded notional by tier", "USD millions") + "</section>")

    tr = data.get("training", [])
    parts.append('<section id="training"><h2>Risk metrics over training</h2>')
    if tr:
        xs = [e["timesteps"] for e in tr]
        parts.append(_lines(xs, {k: [e.get(k, math.nan) for e in tr] for k in
                                 ("risk/composite", "risk/illiquid_share", "risk_norm/drawdown", "risk_norm/impact")},
                            "risk over training (validation)", "timesteps"))
        parts.append(_lines(xs, {"objective": [e.get("eval/objective", math.nan) for e in tr]},
                            "validation objective", "timesteps"))
    else:
        parts.append("<p>no training evaluations recorded</p>")
    parts.append("</section>")

    tune = data.get("tuning", {})
    trials = tune.get("trials", [])
    parts.append('<section id="tuning"><h2>Tuning</h2>')
    if trials:
        counts = {s: sum(1 for t in trials if t.get("state") == s) for s in ("complete", "pruned", "failed")}
        parts.append(f"<p>{len(trials)} trials: {counts['complete']} complete, {counts['pruned']} pruned, "
                     f"{counts['failed']} failed; wall {_fmt(tune.get('wall_s'))} s; best "
                     f"{_fmt(tune.get('best_value'))}</p>")
        parts.append(_tuning_plot(trials))
        imp = {k: v for k, v in (tune.get("importances") or {}).items()
               if isinstance(v, (int, float)) and math.isfinite(v)}
        if tune.get("note"):
            parts.append(f"<p>{html.escape(str(tune['note']))}</p>")
        if imp:
            parts.append(_bars({"importance": imp}, "parameter importances (fANOVA)", "importance"))
        best = tune.get("best_params") or {}
        parts.append("<table><tr><th>best parameter</th><th>value</th></tr>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in best.items()) + "</table>")
    else:
        parts.append("<p>no tuning in this run</p>")
    parts.append("</section>")

    lin = data.get("lineage", {})
    parts.append('<section id="lineage"><h2>Lineage</h2><table>' + "".join(
        f"<tr><td>{html.escape(str(k))}</td><td><code>{html.escape(str(v))}</code></td></tr>" for k, v in lin.items())
        + "</table>")
    if data.get("config_yaml"):
        parts.append(f"<details><summary>resolved configuration</summary><pre>{html.escape(data['config_yaml'])}"
                     "</pre></details>")
    parts.append("</section>")

    page = ("<!doctype html><html><head><meta charset='utf-8'><title>IntradayJules report</title><style>"
            "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}img.plot{max-width:100%}section{margin-bottom:2em}"
            "</style></head><body>" + "\n".join(parts) + "</body></html>")
    out = run_dir / "report.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out
