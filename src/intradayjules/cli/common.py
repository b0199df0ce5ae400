"""Shared helpers for CLI commands: one console, config loading (file or preset, ``--set`` overrides)
with readable errors."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from ..config import ExperimentConfig, apply_overrides, load_config, parse_set_options, resolve_config_ref
from ..errors import IntradayJulesError
from ..redact import redact_text

# Piped output gets a wide console, so tables are not cut into "…" cells at 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=240)
err_console = Console(stderr=True, soft_wrap=True)

SET_HELP = "override a config key, e.g. --set agent.seed=3 (repeatable; values are YAML)"


class StepStatus:
    """A one-line status under the printed lines, redrawn only when ``update`` is called: rich's
    ``Console.status`` redraws from a thread of its own, and a process that runs another thread does not
    fork its tuning and seed workers (``procs.fork_is_safe``): the main job would start fresh interpreters
    instead (2-3 s each) and train the seeds one by one."""

    def __init__(self, out: Console, text: str):
        from rich.live import Live
        from rich.spinner import Spinner

        self._spinner = Spinner("dots", text)
        self._live = Live(self._spinner, console=out, auto_refresh=False, transient=True)

    def __enter__(self) -> "StepStatus":
        self._live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def update(self, text: str) -> None:
        self._spinner.update(text=text)
        self._live.refresh()


def set_option() -> list[str]:
    """The ``--set KEY=VALUE`` option every command that takes a config has."""
    return typer.Option([], "--set", help=SET_HELP)


def fail(message: str, code: int = 1) -> "typer.Exit":
    err_console.print(f"[bold red]error:[/] {redact_text(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def load_or_exit(path: Path | str | None, sets: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """The config of ``--config`` (a file, or a preset name such as ``quickstart``; none: the defaults)
    with ``--set`` overrides applied; a bad file or value exits with code 2 and the field path."""
    try:
        overrides = parse_set_options(sets)
        if path is None:
            return apply_overrides(None, overrides, "--set options")
        return load_config(resolve_config_ref(path), overrides)
    except IntradayJulesError as e:
        raise fail(str(e), 2) from None
