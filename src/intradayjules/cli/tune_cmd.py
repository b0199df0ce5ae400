"""``intradayjules tune``: hyperparameter search with the Optuna (processes) or Ray Tune backend.

Also runnable as ``python -m intradayjules.cli.tune_cmd`` (same options).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..errors import IntradayJulesError
from .common import console, fail, load_or_exit, set_option


def tune(
    config: Path | None = typer.Option(None, "--config", "-c", help="experiment YAML or preset (default: built-in)"),
    set_: list[str] = set_option(),
    backend: str | None = typer.Option(None, "--backend", help="optuna | ray (default tune.backend)"),
    trials: int | None = typer.Option(None, "--trials", "-n", min=1, help="trial budget T"),
    workers: int | None = typer.Option(None, "--workers", "-w", min=0,
                                       help="optuna: worker processes; ray (local): CPUs for Ray. 0 = all cores"),
    study: str | None = typer.Option(None, "--study", help="study / experiment name (default: config name)"),
    resume: bool = typer.Option(False, "--resume", help="continue an existing study until T trials finished"),
    storage: str | None = typer.Option(None, "--storage", help="optuna: RDB URL or journal file path"),
    pruner: str | None = typer.Option(None, "--pruner", help="optuna: median | hyperband | none"),
    sampler: str | None = typer.Option(None, "--sampler", help="tpe | random | cmaes | qmc (tune.sampler)"),
    pruner_warmup: int | None = typer.Option(None, "--pruner-warmup", min=0,
                                             help="median pruner: reports before a trial can be pruned"),
    address: str | None = typer.Option(None, "--address", help="ray: auto | HOST:PORT (default: local Ray)"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="ray: asha | pbt | fifo"),
    cpus_per_trial: float | None = typer.Option(None, "--cpus-per-trial", min=0.01),
    gpus_per_trial: float | None = typer.Option(None, "--gpus-per-trial", min=0.0, help="fractions allowed"),
    max_failures: int | None = typer.Option(None, "--max-failures", min=-1, help="ray: retries per trial"),
    trial_fn: str | None = typer.Option(None, "--trial-fn", help="'module:function' or '/path/file.py:function'"),
    token_file: Path | None = typer.Option(None, "--token-file", help="ray: cluster auth token file"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="live progress display"),
    no_track: bool = typer.Option(False, "--no-track", help="no MLflow runs for this search"),
    as_json: bool = typer.Option(False, "--json", help="print the study summary as one JSON object"),
) -> None:
    """Search hyperparameters: every trial trains and reports a risk-adjusted validation objective."""
    flags = {"tune.backend": backend, "tune.trial_fn": trial_fn, "tune.pruner": pruner,
             "tune.scheduler": scheduler, "tune.cpus_per_trial": cpus_per_trial,
             "tune.gpus_per_trial": gpus_per_trial, "tune.max_failures": max_failures,
             "tune.n_trials": trials, "tune.workers": workers, "tune.storage": storage,
             "tune.study_name": study, "tune.address": address,
             "tune.sampler": sampler, "tune.pruner_warmup_steps": pruner_warmup}
    cfg = load_or_exit(config, [*set_, *(f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None)])
    try:
        from ..tune.search import run_search

        if not no_track:
            from ..track import check_reachable, resolve_tracking

            target = resolve_tracking(cfg)
            if target.enabled:
                check_reachable(target.uri, target.connect_timeout_s)  # fail before any trial, not after
        result, _ = run_search(cfg, track=cfg.tracking.enabled and not no_track, resume=resume, progress=progress and not as_json,
                               token_file=str(token_file) if token_file else None)
    except KeyboardInterrupt:
        raise fail("interrupted: completed trials are stored; continue with --resume", 130) from None
    except IntradayJulesError as e:
        raise fail(str(e), 2) from None

    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps(asdict(result), default=str, sort_keys=True))
        return
    table = Table(title=f"{result.backend} study {result.study}: {result.n_finished} trials in {result.wall_s:,.1f} s")
    for col in ("complete", "pruned", "failed", "interrupted", "trials/h", "best"):
        table.add_column(col, justify="right")
    rate = result.n_finished / result.wall_s * 3600 if result.wall_s > 0 else 0.0
    best = "-" if result.best_value is None else f"{result.best_value:.6g}"
    table.add_row(str(result.n_complete), str(result.n_pruned), str(result.n_failed),
                  str(result.n_interrupted), f"{rate:,.0f}", best)
    console.print(table)
    if result.best_params:
        for k, v in result.best_params.items():
            console.print(f"  {k} = {v}", highlight=False, soft_wrap=True)
    console.print(f"results: {result.run_dir}/summary.json", highlight=False, soft_wrap=True)


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(tune)
    app()


if __name__ == "__main__":
    main()
