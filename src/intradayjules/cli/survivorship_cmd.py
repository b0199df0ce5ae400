"""``intradayjules survivorship report``: equal-weighted PIT universe vs survivors only, on CRSP data."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import DataError
from .common import console, fail, load_or_exit, set_option

app = typer.Typer(help="Survivorship bias on CRSP data: point-in-time universe vs survivors.",
                  no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Survivorship bias on CRSP data."""


@app.command()
def report(
    crsp: Path = typer.Option(..., "--crsp", "--prices",
                              help="CRSP stock file or directory (stock files + *delist* file)"),
    members: Path | None = typer.Option(None, "--members", help="membership spells (CSV/Parquet: permno or ticker, "
                                        "start, end): the point-in-time universe; survivors = the end date's members"),
    start: str | None = typer.Option(None, "--start", help="first date, YYYY-MM-DD (default: data start)"),
    end: str | None = typer.Option(None, "--end", help="last date, YYYY-MM-DD (default: data end)"),
    config: Path | None = typer.Option(None, "--config", "-c", help="experiment YAML or preset (crsp, data.tiers)"),
    set_: list[str] = set_option(),
    top_n: int | None = typer.Option(None, "--top-n", help="universe = N largest by market cap"),
    as_json: bool = typer.Option(False, "--json", help="print the statistics as one JSON object (no table)"),
    out: Path | None = typer.Option(None, "--out", help="also write the statistics as JSON to this file"),
) -> None:
    """Annualised return and max drawdown of both portfolios and the bias between them."""
    import pandas as pd

    from ..data.crsp import read_crsp
    from ..data.universe import read_membership
    from ..evaluate.survivorship import survivorship_report

    cfg = load_or_exit(config, set_)
    try:
        s = pd.Timestamp(start) if start else None
        e = pd.Timestamp(end) if end else None
    except ValueError as err:
        raise fail(f"bad date: {err}", 2) from None
    try:
        data = read_crsp(crsp, cfg.crsp)
        rep = survivorship_report(data, cfg.crsp, cfg.data.tiers, start=s, end=e, top_n=top_n,
                                  members=read_membership(members) if members is not None else None)
    except DataError as err:
        raise fail(escape(str(err)), 1) from None
    st = rep.stats
    if as_json:
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(st, indent=2))
        typer.echo(json.dumps({**st, "notes": list(rep.notes)}, indent=1, default=str))
        return
    table = Table(title=f"survivorship: {crsp} ({st['start']} to {st['end']}, {st['periods']} {st['freq']} periods; "
                        f"universe: {st['universe']})")
    for col in ("portfolio", "ann. return", "max drawdown", "names"):
        table.add_column(col, justify="left" if col == "portfolio" else "right")
    table.add_row("point-in-time + delisting returns", f"{st['pit_ann']:+.2%}", f"{st['pit_mdd']:.2%}",
                  f"{st['pit_mean_members']:.1f} avg")
    table.add_row("survivors only" if members is None else "end-date members, backfilled", f"{st['survivors_ann']:+.2%}",
                  f"{st['survivors_mdd']:.2%}", str(st["n_survivors"]))
    table.add_row("bias (survivors - PIT; PIT - survivors for drawdown)", f"{st['bias_ann']:+.2%}",
                  f"{st['bias_mdd']:+.2%}", "")
    console.print(table)
    console.print(f"delistings in window: {st['n_delistings']} ({st['n_performance']} performance, "
                  f"{st['n_filled']} DLRET filled by the Shumway defaults, {st['n_delisting_return_in_ret']} with "
                  "the delisting return inside RET (CIZ))", highlight=False)
    for line in rep.notes:
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    for line in data.report:
        console.print(f"  {line}", highlight=False, markup=False)
    truth = (crsp if crsp.is_dir() else crsp.parent) / "truth.json"
    if truth.exists() and start is None and end is None and not top_n:
        t = json.loads(truth.read_text())
        ex = t["expected"]
        console.print(f"generator's built-in bias (from its parameters): {ex['bias_ann']:+.2%}/yr "
                      f"+- {ex['bias_ann_sd']:.2%} (1 sd); realised in its own books: "
                      f"{t['realised']['bias_ann']:+.2%}/yr", highlight=False)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(st, indent=2))
