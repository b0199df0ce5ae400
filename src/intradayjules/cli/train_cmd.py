"""``intradayjules train``, ``evaluate`` and ``experiment illiquid``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from .. import rundir
from ..config import PROFILE_NAMES
from ..errors import IntradayJulesError
from .common import console, fail, load_or_exit, set_option

TRUST_HELP = ("load an SB3 .zip / replay buffer that has no bundle or signature (it is unpickled: only for files "
              "you made; a recorded digest must still match)")
experiment_app = typer.Typer(help="Experiments that test a claim end to end.", no_args_is_help=True)


def train(
    config: Path = typer.Option(..., "--config", "-c", help="experiment YAML or preset name"),
    set_: list[str] = set_option(),
    risk_profile: str | None = typer.Option(None, "--risk-profile", help="off|conservative|balanced|aggressive"),
    data: Path | None = typer.Option(None, "--data", help="your own bars instead of the config's"),
    timesteps: int | None = typer.Option(None, "--timesteps", help="override agent.total_timesteps"),
    name: str | None = typer.Option(None, "--name", help="run name (default: config name)"),
    resume: Path | None = typer.Option(None, "--resume", help="checkpoint .zip (or run dir) to continue"),
    no_track: bool = typer.Option(False, "--no-track", help="do not log to MLflow"),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=TRUST_HELP),
) -> None:
    """Train agent.algo (DQN by default) with the risk callback; writes runs/<name>/ (config, lineage, model,
    metrics, logs)."""
    from ..agents.sb3 import latest_checkpoint
    from ..config import with_risk_profile
    from ..pipeline.prepare import prepare, run_dir
    from ..pipeline.train_run import training_run

    cfg = load_or_exit(config, set_)
    if risk_profile is not None and risk_profile not in PROFILE_NAMES:
        raise fail(f"--risk-profile must be one of {', '.join(PROFILE_NAMES)}", 2)
    cfg = with_risk_profile(cfg, risk_profile)
    if resume is not None and resume.is_dir():
        resume = latest_checkpoint(resume)
        if resume is None:
            raise fail("no checkpoint found in that run directory", 2)
    tracker = _tracker(cfg, no_track)
    try:
        out = run_dir(cfg, name)
        with rundir.lock(out):  # one writer per run directory (rundir.py)
            with console.status("preparing data and features"):
                prepared = prepare(cfg, data)
            console.print(f"training on {', '.join(prepared.env_data.symbols)} "
                          f"(features: {'hit' if prepared.feature_hit else 'built'}), run dir {out}")
            done = training_run(prepared, out, cfg=prepared.cfg, tracker=tracker, name=name or cfg.name,
                                total_timesteps=timesteps, progress_bar=sys.stderr.isatty(), resume_from=resume,
                                trust_pickle=trust_pickle)
        result, paths, run_id = done.result, done.paths, done.run_id
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    last = result.evaluations[-1] if result.evaluations else {}
    console.print(f"[green]done[/]: {result.timesteps:,} steps in {result.wall_s:.1f} s"
                  f"{' (stopped early by the risk callback)' if result.stopped_early else ''}; "
                  f"best validation objective {result.best_objective:.3f}; "
                  f"last composite {last.get('risk/composite', float('nan')):.3f}")
    console.print(f"model: {result.model_path}; test evaluation: {paths['evaluation']}")
    if run_id:
        console.print(f"MLflow run {run_id} ({tracker.uri}); register it with "
                      f"`intradayjules models register {run_id}`")


def _tracker(cfg, no_track: bool):
    """MLflow tracking unless disabled; fails fast on an unreachable server."""
    from ..track import make_tracker

    try:
        return make_tracker(cfg, enabled=not no_track)
    except IntradayJulesError as e:
        raise fail(str(e)) from None


def evaluate(
    model: str = typer.Option(..., "--model", "-m", help="model .zip, run dir, or models:/NAME@ALIAS"),
    config: Path = typer.Option(..., "--config", "-c", help="experiment YAML or preset name"),
    set_: list[str] = set_option(),
    split: str = typer.Option("test", "--split", help="train|val|test"),
    data: Path | None = typer.Option(None, "--data", help="your own bars (CSV/Parquet file or directory)"),
    baselines: str = typer.Option("all", "--baselines",
                                  help="reference policies to run next to the model, comma-separated: flat, "
                                       "buy_hold, buy_hold_liquid, random, momentum, reversal (default: all; "
                                       "'none' for the model alone)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (every policy)"),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=TRUST_HELP),
) -> None:
    """Backtest a model and the reference policies on the same sessions under the realistic market model;
    compare the model with each on paired daily net P&L (mean difference, 95 % CI, p-value)."""
    from ..agents.policy import policy_from_model
    from ..agents.references import parse_names
    from ..evaluate.metrics import json_safe
    from ..evaluate.suite import evaluate_suite
    from ..pipeline.models import load_policy_model
    from ..pipeline.prepare import prepare
    from .tables import suite_table

    cfg = load_or_exit(config, set_)
    try:
        refs = [] if baselines.strip() == "none" else parse_names(baselines)
    except ValueError as e:
        raise fail(f"--baselines: {e}", 2) from None
    try:
        policy_model = load_policy_model(model, cfg=cfg, trust_pickle=trust_pickle)
        prepared = prepare(cfg, data)
        suite = evaluate_suite({"model": policy_from_model(policy_model)}, prepared.env_data, cfg, split,
                               references=refs)
    except (IntradayJulesError, FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    stats = dict(suite.stats["model"])
    stats["model"] = model
    if as_json:  # the model's statistics at the top level, every policy and the comparisons below
        typer.echo(json.dumps(json_safe({**stats, **suite.to_json()}), sort_keys=True))
        return
    console.print(suite_table(suite, f"{model} on {split}, {cfg.market.model} costs"))
    console.print(f"[bold]Verdict:[/] {suite.verdict}", highlight=False, soft_wrap=True)


@experiment_app.command("illiquid")
def illiquid(
    config: Path = typer.Option(..., "--config", "-c", help="experiment YAML or preset name"),
    set_: list[str] = set_option(),
    seeds: int = typer.Option(3, "--seeds"),
    timesteps: int | None = typer.Option(None, "--timesteps"),
    data: Path | None = typer.Option(None, "--data", help="your own bars (CSV/Parquet file or directory)"),
    out: Path | None = typer.Option(None, "--out"),
) -> None:
    """Original set-up (flat costs, no risk) vs risk-aware training: illiquid trade share and net Sharpe."""
    from ..pipeline import illiquid as exp

    cfg = load_or_exit(config, set_)
    steps = timesteps or cfg.agent.total_timesteps
    if steps <= cfg.agent.learning_starts:
        raise fail(f"--timesteps {steps:,} <= agent.learning_starts ({cfg.agent.learning_starts:,}): both arms would "
                   "only explore at random and be identical; raise --timesteps or --set agent.learning_starts=N", 2)

    def show(r):
        console.print(f"  {r.arm:<11} seed {r.seed}: illiquid share {r.illiquid_trade_share:.3f} "
                      f"(of orders {r.illiquid_order_share:.3f}), "
                      f"net Sharpe {r.sharpe:.2f}, trades {r.n_trades}", highlight=False)

    try:
        summary = exp.run(cfg, seeds, out, data, timesteps, progress=show)
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    table = Table(title="illiquid experiment: means over seeds (test sessions, realistic costs)")
    for c in ("arm", "illiquid_trade_share", "illiquid_order_share", "net sharpe", "total_return", "trades"):
        table.add_column(c)
    for arm, m in summary["means"].items():
        table.add_row(arm, f"{m['illiquid_trade_share']:.3f}", f"{m['illiquid_order_share']:.3f}",
                      f"{m['sharpe']:.2f}", f"{m['total_return']:.4f}",
                      f"{m['n_trades']:.0f}")
    console.print(table)
    console.print(f"target: {summary['target']}")


@experiment_app.command("agents")
def agents(
    config: Path = typer.Option(..., "--config", "-c", help="experiment YAML or preset name"),
    set_: list[str] = set_option(),
    algos: str = typer.Option("dqn,qrdqn,ppo,a2c", "--algos", help="comma-separated agent.algo values"),
    seeds: int = typer.Option(3, "--seeds"),
    timesteps: int | None = typer.Option(None, "--timesteps", help="override agent.total_timesteps"),
    data: Path | None = typer.Option(None, "--data", help="your own bars (CSV/Parquet file or directory)"),
    out: Path | None = typer.Option(None, "--out"),
) -> None:
    """Each algorithm x N seeds on the same sessions, against the flat policy (paired daily net P&L)."""
    from ..pipeline import agents_experiment as exp

    cfg = load_or_exit(config, set_)

    def show(r):
        console.print(f"  {r.algo:<6} seed {r.seed} ({r.fold}): {r.daily_bps.mean():+.2f} bps/day on "
                      f"{len(r.daily_bps)} test sessions, {r.timesteps:,} steps in {r.wall_s:.0f} s", highlight=False)

    try:
        summary = exp.run(cfg, [a.strip() for a in algos.split(",") if a.strip()], seeds, timesteps=timesteps,
                          data_path=data, out_dir=out, progress=show)
    except (IntradayJulesError, ValueError) as e:
        raise fail(str(e)) from None
    for line in exp.describe(summary):
        console.print(line, highlight=False)
    console.print(f"written: {summary['path']}")
