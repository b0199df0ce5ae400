"""``intradayjules data validate|synth``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from ..errors import DataError, IntradayJulesError
from .common import console, err_console, fail, load_or_exit, set_option

app = typer.Typer(help="Load, validate and synthesise bar data.", no_args_is_help=True)
MAX_LISTED = 5


def _money(x: float) -> str:
    if x != x:  # NaN
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"${x / div:,.1f}{unit}"
    return f"${x:,.0f}"


@app.command()
def validate(
    path: Path = typer.Argument(..., help="CSV/Parquet file, directory of per-symbol files, or a `data synth` folder"),
    config: Path | None = typer.Option(None, "--config", "-c", help="experiment YAML or preset (data section)"),
    set_: list[str] = set_option(),
    timezone: str | None = typer.Option(None, help="time zone of naive timestamps (e.g. UTC)"),
    calendar: str | None = typer.Option(None, help="exchange_calendars code (e.g. XNYS)"),
    bar: str | None = typer.Option(None, "--bar", help="resample to this bar (e.g. 5min): an explicit choice"),
    extended_hours: bool = typer.Option(False, help="keep pre- and post-market bars"),
    sort: bool = typer.Option(False, "--sort", help="repair: sort unsorted rows (reported)"),
    drop_duplicates: bool = typer.Option(False, "--drop-duplicates", help="repair: drop duplicate bars"),
    as_json: bool = typer.Option(False, "--json", help="print the per-symbol table, holes, tier changes and "
                                 "session counts as one JSON object"),
) -> None:
    """Validate bars and print a per-symbol table, holes, tier changes, regime shifts and the sessions a run
    would use (warning when too few); exit 1 with the first errors on invalid data."""
    from ..data import load_bars
    from ..data.quality import regime_shifts, split_counts, summarize, tier_changes

    cfg = load_or_exit(config, set_)
    data_cfg = cfg.data.model_copy(deep=True)
    try:
        for key, value in (("timezone", timezone), ("calendar", calendar), ("bar", bar)):
            if value:
                setattr(data_cfg, key, value)
    except ValidationError as e:
        raise fail("; ".join(f"--{err['loc'][0]}: {err['msg']}" for err in e.errors()), 2) from None
    data_cfg.extended_hours = extended_hours or data_cfg.extended_hours
    data_cfg.repair.sort = sort or data_cfg.repair.sort
    data_cfg.repair.drop_duplicates = drop_duplicates or data_cfg.repair.drop_duplicates
    t0 = time.perf_counter()
    try:
        bars = load_bars(path, data_cfg)
    except DataError as e:
        err_console.print("[bold red]invalid data[/]", highlight=False)
        for line in getattr(e, "problems", [str(e)])[:10]:
            err_console.print(f"  {line}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - t0
    tiers = data_cfg.tiers
    summary = summarize(bars, tiers)
    start, end = bars.frame["session"].min(), bars.frame["session"].max()
    if as_json:
        import json

        counts = split_counts(bars.frame["session"].unique(), data_cfg.splits, tiers.adv_window_days)
        typer.echo(json.dumps({
            "path": str(path), "bars": len(bars.frame), "first": str(start.date()), "last": str(end.date()),
            "symbols": json.loads(summary.to_json(orient="records", date_format="iso")),
            "holes": [str(h) for h in bars.report.holes],
            "tier_changes": json.loads(tier_changes(bars, tiers).to_json(orient="records", date_format="iso")),
            "regime_shifts": [str(s) for s in regime_shifts(bars, data_cfg.regime_window, data_cfg.regime_factor)],
            "sessions": {"total": counts.sessions, "warmup": counts.warmup, "train": counts.train, "val": counts.val,
                         "test": counts.test},
            "warnings": ([counts.problem()] if counts.problem() else []) + counts.warnings()}, default=str))
        return
    table = Table(title=f"{path}: {len(bars.frame):,} bars, {start.date()}..{end.date()} ({elapsed:.2f} s)",
                  caption=f"coverage: input bars / calendar bars from first to last session (filled bars do not "
                          f"count); ADV and tier: one window, each symbol's last {tiers.adv_window_days} sessions "
                          f"up to {end.date()} (data.tiers.adv_window_days)")
    adv_col = f"ADV {tiers.adv_window_days}d"
    for col in ("symbol", "sessions", "holes", "coverage", "stale", adv_col, "tier"):
        table.add_column(col, justify="left" if col in ("symbol", "tier") else "right", no_wrap=True)
    for r in summary.itertuples():
        holes = f"{r.holes} ({r.missing_sessions}d)" if r.holes else "0"
        table.add_row(r.symbol, str(r.sessions), holes, f"{r.coverage:.1%}", f"{r.stale_share:.1%}", _money(r.adv),
                      r.tier)
    console.print(table)
    spans = summary[(summary["first"] != start) | (summary["last"] != end)]
    for (a, b), g in spans.groupby(["first", "last"], sort=True):
        console.print(f"  {', '.join(g['symbol'])}: {pd_date(a)}..{pd_date(b)}", highlight=False, markup=False)
    if bars.report.holes:
        console.print(f"holes (more than data.max_fill_sessions={data_cfg.max_fill_sessions} sessions missing: not "
                      "filled, the symbol's history is split there):", highlight=False)
        for h in bars.report.holes[:20]:
            console.print(f"  {h}", highlight=False, markup=False)
        if len(bars.report.holes) > 20:
            console.print(f"  ... {len(bars.report.holes) - 20} more", highlight=False)
    changes = tier_changes(bars, tiers)
    if len(changes):
        console.print(f"tier changes (tier at each session's open, from the {tiers.adv_window_days} sessions before "
                      "it):", highlight=False)
        for sym, g in changes.groupby("symbol", sort=True):
            shown = ", ".join(f"{pd_date(r.session)} {r.from_tier}->{r.to_tier}" for r in g.head(MAX_LISTED).itertuples())
            more = f" (+{len(g) - MAX_LISTED} more)" if len(g) > MAX_LISTED else ""
            console.print(f"  {sym}: {shown}{more}", highlight=False, markup=False)
    for s in regime_shifts(bars, data_cfg.regime_window, data_cfg.regime_factor):
        console.print(f"[yellow]warning:[/] regime shift: {s}", highlight=False)
    counts = split_counts(bars.frame["session"].unique(), data_cfg.splits, tiers.adv_window_days)
    console.print(f"sessions: {counts.sessions}; ADV warm-up {counts.warmup}, then train {counts.train}, "
                  f"val {counts.val}, test {counts.test} (data.splits)", highlight=False)
    for line in bars.report.lines():
        console.print(f"  {line}", highlight=False, markup=False)
    problem = counts.problem()
    for w in ([problem] if problem else []) + counts.warnings():
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def pd_date(x) -> str:
    import pandas as pd

    return str(pd.Timestamp(x).date())


@app.command()
def synth(
    symbols: int = typer.Option(6, "--symbols", help="number of symbols (split into 3 tiers)"),
    days: int = typer.Option(60, "--days", help="trading sessions"),
    bar: str = typer.Option("5min", "--bar"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="output directory"),
) -> None:
    """Write a synthetic market (bars.parquet, universe.parquet). Same seed -> same files."""
    from ..config import SyntheticConfig
    from ..data.synthetic import generate

    try:
        cfg = SyntheticConfig(n_symbols=symbols, days=days, bar=bar, seed=seed)
    except Exception as e:  # pydantic ValidationError
        raise fail(str(e), 2) from None
    try:
        market = generate(cfg)
    except IntradayJulesError as e:  # e.g. more days than the calendar holds
        raise fail(str(e), 2) from None
    paths = market.write(out)
    console.print(f"wrote {len(market.bars.frame):,} bars of {symbols} symbols, {days} sessions "
                  f"to {paths['bars']}; universe: {paths['universe']}")
    console.print(market.universe.to_string(index=False), highlight=False)
