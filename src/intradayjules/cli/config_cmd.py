"""``intradayjules config validate|show FILE``."""

from __future__ import annotations

import typer

from ..config import dump_config
from .common import console, load_or_exit, set_option

app = typer.Typer(help="Check and print experiment configuration files.", no_args_is_help=True)


@app.command()
def validate(file: str = typer.Argument(..., help="YAML experiment file or preset name"),
             set_: list[str] = set_option()) -> None:
    """Exit 0 if FILE is a valid configuration, else print each problem as field.path: message."""
    cfg = load_or_exit(file, set_)
    console.print(f"[green]ok[/] {file}: experiment {cfg.name!r}")


@app.command()
def show(file: str = typer.Argument(..., help="YAML experiment file or preset name"),
         set_: list[str] = set_option()) -> None:
    """Print the resolved configuration (every default filled in) as YAML."""
    typer.echo(dump_config(load_or_exit(file, set_)), nl=False)
