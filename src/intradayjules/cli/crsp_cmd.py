"""``intradayjules crsp synth``: synthetic CRSP-layout files with a known survivorship bias."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, fail

app = typer.Typer(help="CRSP data: synthetic files in the public CRSP layout.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """CRSP data tools."""


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="output directory"),
    firms: int = typer.Option(160, "--firms", help="common-stock firms (plus --ineligible others)"),
    ineligible: int = typer.Option(10, "--ineligible", help="ETF/Arca names the default filters remove"),
    days: int = typer.Option(756, "--days", help="weekdays of data"),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet"),
) -> None:
    """Write dsf, dsedelist and truth.json. Same seed -> same files."""
    import json

    from ..data.crsp_synth import CrspSynthParams, write_crsp

    if fmt not in ("csv", "parquet"):
        raise fail("--format must be csv or parquet", 2)
    if firms < 10 or days < 120 or ineligible < 0:
        raise fail("need --firms >= 10, --days >= 120 and --ineligible >= 0", 2)
    paths = write_crsp(out, CrspSynthParams(n_firms=firms, n_ineligible=ineligible, days=days, seed=seed), fmt)
    truth = json.loads(paths["truth"].read_text())
    console.print(f"wrote {paths['dsf']}, {paths['delist']}, {paths['truth']}", highlight=False)
    console.print(f"{truth['n_delisted']} delistings, {truth['n_survivors']} survivors; built-in bias "
                  f"{truth['expected']['bias_ann']:+.2%}/yr (+- {truth['expected']['bias_ann_sd']:.2%})",
                  highlight=False)
