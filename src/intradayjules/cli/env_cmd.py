"""``intradayjules env rollout``: run a reference policy through the environment and print what each
episode earned and paid (a thin layer over ``env.rollout``)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, fail, load_or_exit, set_option

app = typer.Typer(help="The trading environment: roll reference policies, inspect costs.",
                  no_args_is_help=True)


@app.command()
def rollout(
    config: Path | None = typer.Option(None, "--config", "-c", help="experiment YAML or preset name"),
    set_: list[str] = set_option(),
    data: Path | None = typer.Option(None, "--data", help="bars path (default: config's data section)"),
    split: str = typer.Option("test", help="train, val or test sessions"),
    policy: str = typer.Option("random", help="random, flat or long"),
    episodes: int = typer.Option(3, min=1),
    mode: str | None = typer.Option(None, help="override env.mode: single or multi"),
    cost_model: str | None = typer.Option(None, "--cost-model", help="override market.model: realistic or flat"),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json", help="print one JSON record per episode instead of a table"),
) -> None:
    """Print one row per episode: P&L, costs by kind, traded notional by tier, participation."""
    import warnings

    from rich.table import Table

    from ..data import load_data
    from ..errors import IntradayJulesError
    from ..env import make_env
    from ..env.rollout import rollout as run

    cfg = load_or_exit(config, [*set_, *([f"env.mode={mode}"] if mode else []),
                                *([f"market.model={cost_model}"] if cost_model else [])])
    try:
        bars, universe = load_data(cfg, data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = make_env(cfg, bars, universe, split)
        df = run(env, policy, episodes, seed)
    except (IntradayJulesError, ValueError) as e:
        raise fail(str(e)) from None
    if as_json:
        typer.echo(df.to_json(orient="records"))
        return
    table = Table(title=f"{policy} policy, {split} split, {', '.join(env.symbols)} ({cfg.market.model} costs)")
    cols = ["session", "steps", "end", "P&L $", "bps", "spread $", "impact $", "comm. $", "traded $",
            "liquid $", "mid $", "illiquid $", "max part.", "max DD"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("session", "end") else "right")
    for r in df.itertuples():
        table.add_row(r.session, str(r.steps), str(r.end_reason), f"{r.pnl:,.2f}", f"{r.return_bps:.1f}",
                      f"{r.spread:,.2f}", f"{r.impact:,.2f}", f"{r.commission:,.2f}", f"{r.traded_notional:,.0f}",
                      f"{r.notional_liquid:,.0f}", f"{r.notional_mid:,.0f}", f"{r.notional_illiquid:,.0f}",
                      f"{r.max_participation:.1%}", f"{r.max_drawdown:.2%}")
    console.print(table)
