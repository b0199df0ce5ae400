"""``intradayjules config validate|show FILE`` and ``intradayjules init DIR``."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from ..config import DEFAULT_PRESET, dump_config, preset_names, preset_path
from ..errors import ConfigError
from .common import console, fail, load_or_exit, set_option

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


def init(directory: Path = typer.Argument(Path("."), help="where to write the config (created if missing)"),
         preset: str = typer.Option(DEFAULT_PRESET, "--preset", help=f"one of: {', '.join(preset_names())}"),
         force: bool = typer.Option(False, "--force", help="overwrite an existing file")) -> None:
    """Write an editable copy of a preset config (default: the quickstart) into DIRECTORY."""
    try:
        src = preset_path(preset)
    except ConfigError as e:
        raise fail(str(e), 2) from None
    directory.mkdir(parents=True, exist_ok=True)
    dst = directory / src.name
    if dst.exists() and not force:
        raise fail(f"{dst} exists (use --force to overwrite)", 2)
    shutil.copyfile(src, dst)
    console.print(f"wrote {dst}; run it with: intradayjules run --config {dst}", highlight=False, soft_wrap=True)
