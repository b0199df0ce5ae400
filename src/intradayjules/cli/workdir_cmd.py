"""``intradayjules workdir move SRC DST``: move a work dir and rewrite the paths stored in it."""

from __future__ import annotations

from pathlib import Path

import typer

from ..track.target import TrackingError
from ..track.workdir import move_workdir
from .common import console, fail

app = typer.Typer(help="Manage work directories (runs/: run folders, mlflow.db, artifacts).", no_args_is_help=True)


@app.command()
def move(
    src: Path = typer.Argument(..., help="the work dir to move (holds mlflow.db)"),
    dst: Path = typer.Argument(..., help="its new path (must not exist)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="change nothing; print what would be rewritten"),
    force: bool = typer.Option(False, "--force", help="move a folder without mlflow.db too"),
) -> None:
    """Move SRC to DST and rewrite the absolute paths MLflow stored in mlflow.db (artifact locations,
    model version sources) and those in the work dir's JSON/YAML files, so models:/NAME@ALIAS still
    loads. Stop runs and any `mlflow ui` on SRC first."""
    try:
        rep = move_workdir(src, dst, dry_run=dry_run, force=force)
    except TrackingError as e:
        raise fail(str(e)) from None
    verb = "would rewrite" if dry_run else "rewrote"
    console.print(f"{'[dry run] ' if dry_run else ''}{rep.src} -> {rep.dst}", highlight=False)
    for col, n in sorted(rep.db_rows.items()):
        console.print(f"  mlflow.db {col}: {verb} {n} row(s)", highlight=False)
    console.print(f"  files: {verb} {len(rep.files)}", highlight=False)
    for col, n in sorted(rep.remaining.items()):
        console.print(f"  kept as recorded (history): {col}: {n} row(s) still name the old path", highlight=False)
    if not dry_run:
        console.print(f"tracking URI now: sqlite:///{rep.dst / 'mlflow.db'}", highlight=False)
