"""``intradayjules run``: the main job (see ``intradayjules.pipeline.main_job``), with live progress per stage."""

from __future__ import annotations

import math
import time
from pathlib import Path

import typer
from rich.table import Table

from ..errors import IntradayJulesError
from ..config import DEFAULT_PRESET
from .common import StepStatus, console, err_console, fail, load_or_exit, set_option
from .tables import suite_table


def run(
    config: str = typer.Option(DEFAULT_PRESET, "--config", "-c",
                               help="experiment YAML or preset name (default: the quickstart preset)"),
    set_: list[str] = set_option(),
    data: Path | None = typer.Option(None, "--data", help="your own bars (CSV/Parquet file or directory)"),
    trials: int | None = typer.Option(None, "--trials", "-n", min=1, help="tuning trials (tune.n_trials)"),
    workers: int | None = typer.Option(None, "--workers", "-w", min=0,
                                       help="tuning worker processes, 0 = all cores (tune.workers)"),
    timesteps: int | None = typer.Option(None, "--timesteps", min=1,
                                         help="steps of the retrain and baseline (agent.total_timesteps)"),
    seed: int | None = typer.Option(None, "--seed", help="agent seed (agent.seed)"),
    backend: str | None = typer.Option(None, "--backend", help="tuning backend: optuna | ray"),
    address: str | None = typer.Option(None, "--address", help="ray: auto | HOST:PORT of a cluster"),
    no_track: bool = typer.Option(False, "--no-track", help="no MLflow tracking or registry"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object at the end"),
) -> None:
    """Features -> tuning -> retrain the best trial -> baseline -> evaluation -> champion -> report."""
    from ..pipeline.main_job import run_main

    flags = {"tune.n_trials": trials, "tune.workers": workers, "agent.total_timesteps": timesteps,
             "agent.seed": seed}
    cfg = load_or_exit(config, [*set_, *(f"{k}={v}" for k, v in flags.items() if v is not None)])
    if backend is not None and backend not in ("optuna", "ray"):
        raise fail("--backend must be optuna or ray", 2)
    t_start = time.perf_counter()
    stage_start = {"t": time.perf_counter(), "stage": None}

    out = err_console if as_json else console  # --json: stdout carries the JSON only
    with StepStatus(out, "[bold]starting[/]") as status:  # no redraw thread: the workers can be forked
        def progress(stage: str, message: str, fraction: float | None = None) -> None:
            """A stage line; step progress (``fraction``) is a bar on a terminal and a plain line at every
            tenth otherwise."""
            if stage != stage_start["stage"]:
                stage_start.update(t=time.perf_counter(), stage=stage)
            elapsed = time.perf_counter() - t_start
            if fraction is not None and out.is_terminal:
                done = int(round(20 * fraction))
                status.update(f"[bold]{stage}[/]: [{'#' * done}{'.' * (20 - done)}] {message}")
                return
            out.print(f"[dim]{elapsed:6.1f}s[/] [bold cyan]{stage:<9}[/] {message}", highlight=False)
            status.update(f"[bold]{stage}[/]: {message}")

        try:
            res = run_main(cfg, data_path=data, backend=backend, address=address,
                           track=False if no_track else None, progress=progress)
        except KeyboardInterrupt:
            raise fail("interrupted: finished tuning trials are stored; rerun to continue", 130) from None
        except (IntradayJulesError, FileNotFoundError, ValueError) as e:
            raise fail(f"{stage_start['stage'] or 'run'} failed: {e}") from None
        except Exception as e:  # an unexpected error: a readable line here, the traceback in a file
            import tempfile
            import traceback

            log = Path(tempfile.gettempdir()) / f"intradayjules-{cfg.name}-error.log"
            log.write_text(traceback.format_exc())
            raise fail(f"{stage_start['stage'] or 'run'} failed: {type(e).__name__}: {e} (traceback: {log})") from None

    if as_json:
        import json

        summary = res.walk_forward.paths["json"] if res.walk_forward is not None else res.run_dir / "summary.json"
        typer.echo(json.dumps(json.loads(summary.read_text()), sort_keys=True))
        return
    if res.walk_forward is not None:
        _print_walk_forward(res.walk_forward)
        console.print(f"[green]done[/] in {time.perf_counter() - t_start:.0f} s; written: "
                      f"{', '.join(str(p) for p in res.walk_forward.paths.values())}", highlight=False, soft_wrap=True)
        return
    console.print(suite_table(res.suite, "held-out test sessions, realistic costs"))
    if res.comparison:
        _print_comparison(res.comparison)
    console.print(f"[bold]Verdict:[/] {res.verdict}", highlight=False, soft_wrap=True)
    console.print(f"[green]done[/] in {time.perf_counter() - t_start:.0f} s "
                  f"(features {'reused' if res.feature_hit else 'built'})")
    console.print(f"  report:     {res.report}", highlight=False, soft_wrap=True)
    console.print(f"  run dir:    {res.run_dir}", highlight=False, soft_wrap=True)
    if res.registered:
        r = res.registered
        console.print(f"  MLflow run: {r['run_id']} ({res.tracking_uri})", highlight=False, soft_wrap=True)
        console.print(f"  registered: models:/{r['name']}@{r['alias']} (version {r['version']})", highlight=False,
                      soft_wrap=True)
    else:
        console.print("  tracking off: nothing registered", highlight=False)


def _print_comparison(table: dict, title: str = "paired daily net P&L, bps/day") -> None:
    """Per arm: mean +- sd over seeds and the per-seed values; each comparison with its 95 % interval."""
    t = Table(title=title)
    for c in ("arm", "mean +- sd over seeds", "per seed"):
        t.add_column(c)
    for name, a in table["arms"].items():
        sd = "" if a["sd"] != a["sd"] else f" +- {a['sd']:.2f}"
        t.add_row(name, f"{a['mean']:+.2f}{sd}", ", ".join(f"{v:+.2f}" for v in a["per_seed"]))
    for name, r in table.get("references", {}).items():
        t.add_row(name, f"{r['mean_daily_pnl_bps']:+.2f}", "(reference policy)")
    console.print(t)
    for c in table["contrasts"]:
        console.print(f"  {c['a']} - {c['b']}: {c['mean_diff_bps']:+.2f} bps/day, 95% CI "
                      f"[{c['ci_low']:+.2f}, {c['ci_high']:+.2f}], p {c['p_value']:.3f}: {c['verdict']}",
                      highlight=False)


def _print_walk_forward(wf) -> None:
    folds = Table(title="walk-forward folds (tuned on validation blocks only)")
    for c in ("fold", "train", "val", "test", "trials", "best objective", "DSR p", "PBO"):
        folds.add_column(c)
    for f in wf.folds:
        s, sel = f.sessions, f.selection
        dsr, pbo = sel.get("dsr", {}), sel.get("pbo", {})
        folds.add_row(str(f.fold), *[f"{s[k][0]}..{s[k][1]} ({s[k][2]})" for k in ("train", "val", "test")],
                      str(sum(f.n_trials.values())) if f.n_trials else "-",
                      _fmt(f.best_value) if f.best_value is not None else "-",
                      _fmt(dsr.get("p_value")) if dsr else "n/a", _fmt(pbo.get("pbo")) if "pbo" in pbo else "n/a")
    console.print(folds)
    sh = wf.oos["sharpe"]
    _print_comparison(wf.oos["table"], "out-of-sample (concatenated test blocks) daily net P&L, bps/day")
    console.print(f"  OOS Sharpe of the seed mean {_fmt(sh['sharpe'])} [95% CI {_fmt(sh['ci_low'])}, "
                  f"{_fmt(sh['ci_high'])}] over {wf.oos['n_sessions']} sessions; PSR vs 0 {_fmt(wf.oos['psr_vs_0'])}",
                  highlight=False)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def report(run_dir: Path = typer.Argument(..., help="a run directory written by `intradayjules run`")) -> None:
    """Regenerate RUN_DIR/report.html from RUN_DIR/report_data.json."""
    from ..evaluate.report import render_report

    try:
        out = render_report(run_dir)
    except FileNotFoundError as e:
        raise fail(str(e)) from None
    console.print(f"wrote {out}", highlight=False, soft_wrap=True)
