"""``intradayjules run``: the main job, stage by stage, on the embedded synthetic market or --data."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from ..errors import IntradayJulesError
from .common import console, fail, load_or_exit


def run(
    config: Path = typer.Option(Path("examples/configs/quickstart.yaml"), "--config", "-c"),
    data: Path | None = typer.Option(None, "--data", help="your own bars (CSV/Parquet file or directory)"),
) -> None:
    """Run the main job: load/synthesise and validate bars, then each stage that follows."""
    from ..data import load_data, summarize

    cfg = load_or_exit(config)
    t0 = time.perf_counter()
    try:
        with console.status("[bold]data[/]: loading and validating bars"):
            bars, _universe = load_data(cfg, data)
    except IntradayJulesError as e:
        raise fail(f"data validation failed: {e}") from None
    summary = summarize(bars, cfg.data.tiers)
    table = Table(title=f"data: {len(bars.frame):,} bars, {bars.frame['session'].nunique()} sessions")
    for col in ("symbol", "tier", "stale", "median $vol/day"):
        table.add_column(col)
    for r in summary.itertuples():
        table.add_row(r.symbol, r.tier, f"{r.stale_share:.1%}", f"${r.median_daily_dollar_volume:,.0f}")
    console.print(table)
    console.print(f"[green]done[/] in {time.perf_counter() - t0:.1f} s")
