"""``intradayjules models list|show|promote|register|rerun``: the MLflow model registry.

Every command takes ``--config`` (tracking section and work dir), ``--workdir`` and ``--tracking-uri``
(overrides, in that order of strength: flag > config > $MLFLOW_TRACKING_URI > sqlite in the work dir).
An unreachable tracking server is reported before anything else is done (exit 2).

``rerun`` retrains through a hook: :data:`RETRAIN_HOOK` (``fn(cfg, lineage)``) and
:data:`FINGERPRINT_HOOK` (``fn(cfg, data_path) -> str``); None uses ``intradayjules.pipeline.rerun.retrain``
(prepare + one training run) and ``intradayjules.data.fingerprint.experiment_fingerprint``. Plug others
in with :func:`set_rerun_hooks`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import typer
from rich.table import Table

from ..errors import IntradayJulesError
from .common import console, fail, load_or_exit

app = typer.Typer(help="Registered models: list, show, promote (aliases), register a run, rerun.",
                  no_args_is_help=True)

RETRAIN_HOOK: Callable[[Any, Any], Any] | None = None
FINGERPRINT_HOOK: Callable[[Any, Any], str] | None = None


def set_rerun_hooks(retrain: Callable[[Any, Any], Any] | None = None,
                    fingerprint: Callable[[Any, Any], str] | None = None) -> None:
    """Install the retrain (``fn(cfg, lineage)``) and/or data fingerprint (``fn(cfg, data_path) -> str``)
    hooks."""
    global RETRAIN_HOOK, FINGERPRINT_HOOK
    if retrain is not None:
        RETRAIN_HOOK = retrain
    if fingerprint is not None:
        FINGERPRINT_HOOK = fingerprint


_CONFIG = typer.Option(None, "--config", "-c", help="experiment YAML (tracking section, workdir)")
_WORKDIR = typer.Option(None, "--workdir", help="work dir holding mlflow.db (default: config's workdir)")
_URI = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (overrides config and env)")


def _tracker(config: Path | None, workdir: Path | None, uri: str | None):
    from ..track import make_tracker, resolve_tracking

    cfg = load_or_exit(config, ())
    if uri:
        cfg.tracking.uri = uri
    try:
        target = resolve_tracking(cfg, workdir, enabled=True)
        return make_tracker(target)
    except IntradayJulesError as e:
        raise fail(str(e), 2) from None


def _run(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    except Exception as e:  # MlflowException and friends: one line, no traceback
        if type(e).__name__ == "MlflowException":
            raise fail(getattr(e, "message", str(e))) from None
        raise


@app.command("list")
def list_(
    name: str | None = typer.Argument(None, help="a registered model: list its versions"),
    config: Path | None = _CONFIG, workdir: Path | None = _WORKDIR, tracking_uri: str | None = _URI,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List registered models, or the versions of NAME."""
    from ..track import list_models, list_versions

    tracker = _tracker(config, workdir, tracking_uri)
    if name is None:
        rows = _run(lambda: list_models(tracker))
        if as_json:
            typer.echo(json.dumps(rows, indent=1, sort_keys=True, default=str))
            return
        table = Table(title=f"registered models at {tracker.uri}")
        for col in ("name", "versions", "latest", "aliases"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], str(r["versions"]), str(r["latest"]),
                          ", ".join(f"{a}->v{v}" for a, v in sorted(r["aliases"].items())))
        console.print(table)
        if not rows:
            console.print("no registered models")
        return
    versions = _run(lambda: list_versions(tracker, name))
    if as_json:
        typer.echo(json.dumps([{"version": v.version, "aliases": list(v.aliases), "run_id": v.run_id,
                                "data_fingerprint": v.lineage().data_fingerprint,
                                "git_commit": v.lineage().git_commit} for v in versions], indent=1, default=str))
        return
    table = Table(title=f"{name} at {tracker.uri}")
    for col in ("version", "aliases", "run", "data fingerprint", "git commit"):
        table.add_column(col)
    for v in versions:
        lin = v.lineage()
        table.add_row(v.version, ", ".join(v.aliases), v.run_id or "", (lin.data_fingerprint or "")[:16],
                      (lin.git_commit or "")[:12] + (" (dirty)" if lin.git_dirty else ""))
    console.print(table)
    if not versions:
        console.print(f"no versions of {name!r}")


@app.command()
def show(
    name: str = typer.Argument(..., help="registered model name"),
    ref: str = typer.Argument("@champion", help="version number or @alias"),
    config: Path | None = _CONFIG, workdir: Path | None = _WORKDIR, tracking_uri: str | None = _URI,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show one version: aliases, run, source, lineage tags (model sha256, data fingerprint, code)."""
    from ..track import get_version

    tracker = _tracker(config, workdir, tracking_uri)
    v = _run(lambda: get_version(tracker, name, ref))
    data = {"name": v.name, "version": v.version, "aliases": v.aliases, "run_id": v.run_id,
            "source": v.source, "status": v.status, "tags": v.tags}
    if as_json:
        typer.echo(json.dumps(data, indent=1, sort_keys=True))
        return
    console.print(f"[bold]{v.name}[/] v{v.version}  aliases: {', '.join(v.aliases) or '-'}  run: {v.run_id}")
    console.print(f"source: {v.source}", highlight=False)
    for k, val in sorted(v.tags.items()):
        console.print(f"  {k} = {val}", highlight=False, markup=False)


@app.command()
def promote(
    name: str = typer.Argument(..., help="registered model name"),
    version: int = typer.Argument(..., help="version to point the alias at"),
    alias: str = typer.Option("champion", "--alias", "-a"),
    config: Path | None = _CONFIG, workdir: Path | None = _WORKDIR, tracking_uri: str | None = _URI,
) -> None:
    """Point ALIAS (default champion) of NAME at VERSION."""
    from ..track import promote as do_promote

    tracker = _tracker(config, workdir, tracking_uri)
    v = _run(lambda: do_promote(tracker, name, version, alias))
    console.print(f"{name}@{alias} -> v{v.version} (run {v.run_id})", highlight=False)


@app.command()
def register(
    run_id: str = typer.Argument(..., help="MLflow run id holding the model"),
    name: str | None = typer.Option(None, "--name", help="registered model (default tracking.registered_model)"),
    alias: str | None = typer.Option(None, "--alias", "-a",
                                     help="alias for the new version (default tracking.alias: champion; '-' for none)"),
    model: Path | None = typer.Option(None, "--model", help="SB3 zip to log into the run first"),
    algo: str | None = typer.Option(None, "--algo", help="SB3 class of --model (default: read from the zip)"),
    trust_pickle: bool = typer.Option(False, "--trust-pickle",
                                      help="--model has no model.bundle/ and no signature: export the bundle by "
                                           "unpickling the zip (only for a file you made)"),
    config: Path | None = _CONFIG, workdir: Path | None = _WORKDIR, tracking_uri: str | None = _URI,
) -> None:
    """Register the model of RUN_ID as a new version (pyfunc flavour, with its policy bundle) and set its alias."""
    from ..track import register_model

    tracker = _tracker(config, workdir, tracking_uri)
    use_alias = None if alias == "-" else (alias or "")
    v = _run(lambda: register_model(tracker, run_id, model, name=name, alias=use_alias, algo=algo,
                                    trust_pickle=trust_pickle))
    console.print(f"registered {v.name} v{v.version} from run {run_id}"
                  + (f"; aliases: {', '.join(v.aliases)}" if v.aliases else ""), highlight=False)


@app.command()
def rerun(
    ref: str = typer.Argument(..., help="NAME@ALIAS or NAME/VERSION (models:/ prefix optional)"),
    config: Path | None = _CONFIG, workdir: Path | None = _WORKDIR, tracking_uri: str | None = _URI,
    check_only: bool = typer.Option(False, "--check-only", help="verify config and data; do not retrain"),
) -> None:
    """Retrain a version from its lineage; refuses when the data no longer matches its fingerprint."""
    from ..pipeline.rerun import retrain
    from ..track import plan_rerun

    tracker = _tracker(config, workdir, tracking_uri)
    plan = _run(lambda: plan_rerun(tracker, ref, FINGERPRINT_HOOK))
    console.print(f"{plan.name} v{plan.version}: config verified, data fingerprint matches "
                  f"({plan.current_fingerprint[:16]})", highlight=False)
    if plan.code_changed:
        console.print(f"[yellow]note[/]: code changed since training (recorded commit "
                      f"{plan.lineage.git_commit[:12]})", highlight=False)
    if check_only:
        return
    result = _run(lambda: (RETRAIN_HOOK or (lambda c, lin: retrain(c, lin, tracker)))(plan.config, plan.lineage))
    console.print(f"[green]rerun done[/]: {result}", highlight=False)
