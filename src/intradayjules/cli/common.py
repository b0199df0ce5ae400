"""Shared helpers for CLI commands: one console, config loading with readable errors."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..config import ExperimentConfig, load_config
from ..errors import IntradayJulesError
from ..redact import redact_text

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> "typer.Exit":
    err_console.print(f"[bold red]error:[/] {redact_text(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def load_or_exit(path: Path | None) -> ExperimentConfig:
    if path is None:
        return ExperimentConfig()
    try:
        return load_config(path)
    except IntradayJulesError as e:
        raise fail(str(e), 2) from None
