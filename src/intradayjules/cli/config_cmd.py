"""``intradayjules config validate|show FILE``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import dump_config, load_config
from ..errors import ConfigError
from .common import console, fail

app = typer.Typer(help="Check and print experiment configuration files.", no_args_is_help=True)


@app.command()
def validate(file: Path = typer.Argument(..., help="YAML experiment file")) -> None:
    """Exit 0 if FILE is a valid configuration, else print each problem as field.path: message."""
    try:
        cfg = load_config(file)
    except ConfigError as e:
        raise fail(str(e), 2) from None
    console.print(f"[green]ok[/] {file}: experiment {cfg.name!r}")


@app.command()
def show(file: Path = typer.Argument(..., help="YAML experiment file")) -> None:
    """Print the resolved configuration (every default filled in) as YAML."""
    try:
        cfg = load_config(file)
    except ConfigError as e:
        raise fail(str(e), 2) from None
    typer.echo(dump_config(cfg), nl=False)
