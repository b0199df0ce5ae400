"""``intradayjules data validate|synth``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from ..errors import DataError, IntradayJulesError
from .common import console, err_console, fail, load_or_exit

app = typer.Typer(help="Load, validate and synthesise bar data.", no_args_is_help=True)


@app.command()
def validate(
    path: Path = typer.Argument(..., help="CSV/Parquet file or directory of per-symbol files"),
    config: Path | None = typer.Option(None, "--config", "-c", help="experiment YAML (data section)"),
    timezone: str | None = typer.Option(None, help="time zone of naive timestamps"),
    extended_hours: bool = typer.Option(False, help="keep pre- and post-market bars"),
    sort: bool = typer.Option(False, "--sort", help="repair: sort unsorted rows (reported)"),
    drop_duplicates: bool = typer.Option(False, "--drop-duplicates", help="repair: drop duplicate bars"),
) -> None:
    """Validate bars and print a per-symbol table; exit 1 with the first errors on invalid data."""
    from ..data import load_bars, summarize

    cfg = load_or_exit(config)
    data_cfg = cfg.data.model_copy(deep=True)
    if timezone:
        data_cfg.timezone = timezone
    data_cfg.extended_hours = extended_hours or data_cfg.extended_hours
    data_cfg.repair.sort = sort or data_cfg.repair.sort
    data_cfg.repair.drop_duplicates = drop_duplicates or data_cfg.repair.drop_duplicates
    t0 = time.perf_counter()
    try:
        bars = load_bars(path, data_cfg)
    except DataError as e:
        err_console.print(f"[bold red]invalid data[/]", highlight=False)
        for line in getattr(e, "problems", [str(e)])[:10]:
            err_console.print(f"  {line}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - t0
    summary = summarize(bars, data_cfg.tiers)
    table = Table(title=f"{path} ({len(bars.frame):,} bars, {elapsed:.2f} s)")
    for col in ("symbol", "bars", "days", "coverage", "stale", "median $vol/day", "tier"):
        table.add_column(col, justify="left" if col in ("symbol", "tier") else "right")
    for r in summary.itertuples():
        table.add_row(r.symbol, f"{r.bars:,}", str(r.days), f"{r.coverage:.1%}", f"{r.stale_share:.1%}",
                      f"${r.median_daily_dollar_volume:,.0f}", r.tier)
    console.print(table)
    for line in bars.report.lines():
        console.print(f"  {line}", highlight=False)


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
