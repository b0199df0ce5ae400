"""``intradayjules train``, ``evaluate`` (``--cost-grid``) and ``experiment illiquid`` / ``controls``."""

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
    cost_grid: str | None = typer.Option(None, "--cost-grid", help="cost multipliers, e.g. 0.5,1,2,4: re-evaluate "
                                         "with spread, impact and commission scaled, at caps 5/10/20 %"),
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
        grid = None
        if cost_grid is not None:
            from ..evaluate.cost_grid import cost_grid as run_grid, parse_grid

            grid = run_grid(policy_from_model(policy_model), prepared.env_data, cfg, split, parse_grid(cost_grid))
    except (IntradayJulesError, FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    stats = dict(suite.stats["model"])
    stats["model"] = model
    if grid is not None:
        stats["cost_grid"] = grid
    if as_json:  # the model's statistics at the top level, every policy and the comparisons below
        typer.echo(json.dumps(json_safe({**stats, **suite.to_json()}), sort_keys=True))
        return
    console.print(suite_table(suite, f"{model} on {split}, {cfg.market.model} costs"))
    console.print(f"[bold]Verdict:[/] {suite.verdict}", highlight=False, soft_wrap=True)
    if "cost_grid" in stats:
        _print_cost_grid(stats["cost_grid"])


def _print_cost_grid(grid: dict) -> None:
    table = Table(title="net P&L against the cost multiplier (spread, impact, commission x m)")
    for c in ("cap", "m", "mean P&L bps/day", "95% CI", "costs bps/day", "gross bps/day", "fills"):
        table.add_column(c, justify="right")
    for p in grid["points"]:
        table.add_row(f"{p['cap']:.0%}", f"{p['multiplier']:g}", f"{p['mean_pnl_bps']:+.2f}",
                      f"[{p['ci_low']:+.2f}, {p['ci_high']:+.2f}]", f"{p['costs_bps']:.2f}",
                      f"{p['gross_bps']:+.2f}", str(p["trades"]))
    console.print(table)
    for cap, be in grid["break_even"].items():
        at = (f"{be['interpolated']:.2f}x" if be["interpolated"] is not None else
              f"{be['where']} the grid" if be["where"] else "n/a")
        lin = f"{be['linear_from_1x']:.2f}x" if be["linear_from_1x"] is not None else "n/a"
        console.print(f"break-even cost multiplier at cap {float(cap):.0%}: {at} (gross / costs at 1x: {lin})",
                      highlight=False)


@experiment_app.command("illiquid")
def illiquid(
    config: Path = typer.Option(..., "--config", "-c", help="experiment YAML or preset name"),
    set_: list[str] = set_option(),
    seeds: int | None = typer.Option(None, "--seeds", help="seeds per cell (default agent.n_seeds)"),
    timesteps: int | None = typer.Option(None, "--timesteps"),
    data: Path | None = typer.Option(None, "--data", help="your own bars (CSV/Parquet file or directory)"),
    out: Path | None = typer.Option(None, "--out"),
) -> None:
    """Ablation: training costs x reward shaping x early stopping, seeds per cell, realistic test costs."""
    from ..pipeline import illiquid as exp

    cfg = load_or_exit(config, set_)
    steps = timesteps or cfg.agent.total_timesteps
    if steps <= cfg.agent.learning_starts:
        raise fail(f"--timesteps {steps:,} <= agent.learning_starts ({cfg.agent.learning_starts:,}): both arms would "
                   "only explore at random and be identical; raise --timesteps or --set agent.learning_starts=N", 2)

    def show(r):
        s = r.summary()
        console.print(f"  {r.arm:<11} seed {r.seed}: illiquid share {s['illiquid_trade_share']:.3f} "
                      f"(of orders {s['illiquid_order_share']:.3f}), net {s['mean_daily_pnl_bps']:+.2f} bps/day, "
                      f"fills {s['trades']:.0f}{' (stopped early)' if r.stopped_early else ''}", highlight=False)

    try:
        summary = exp.run(cfg, seeds, out, data, timesteps, progress=show)
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    table = Table(title="illiquid ablation: per cell, mean +- sd over seeds (test sessions, realistic costs)")
    for c in ("cell (costs/shaping/stop)", "illiquid share (filled)", "illiquid share (ordered)",
              "net bps/day", "fills", "stopped early"):
        table.add_column(c)
    for cell, m in summary["cells"].items():
        table.add_row(cell, *[_msd(m[k], f) for k, f in (("illiquid_trade_share", ".3f"),
                                                        ("illiquid_order_share", ".3f"),
                                                        ("mean_daily_pnl_bps", "+.2f"), ("trades", ".0f"))],
                      f"{m['stopped_early']}/{m['n_runs']}")
    console.print(table)
    if "main_effects" in summary:
        eff = Table(title="main effects (on minus off; 95% two-level bootstrap CI)")
        for c in ("factor", "net bps/day", "illiquid share (filled)", "illiquid share (ordered)", "fills/day"):
            eff.add_column(c)
        for factor, e in summary["main_effects"].items():
            eff.add_row(e["daily_pnl_bps"]["a"], *[_ci(e[k]) for k in ("daily_pnl_bps", "illiquid_trade_share",
                                                                       "illiquid_order_share", "trades_per_day")])
        console.print(eff)
    console.print(f"written: {summary['path']}", highlight=False, soft_wrap=True)


def _msd(m: dict, fmt: str) -> str:
    sd = m["sd"]
    return f"{m['mean']:{fmt}}" + ("" if sd != sd else f" +- {sd:{fmt.lstrip('+')}}")


def _ci(c: dict) -> str:
    return f"{c['mean_diff_bps']:+.3g} [{c['ci_low']:+.3g}, {c['ci_high']:+.3g}]"


@experiment_app.command("controls")
def controls(
    config: Path = typer.Option(..., "--config", "-c", help="experiment YAML or preset name (synthetic data, "
                                "walk-forward splits; e.g. the 'controls' preset)"),
    set_: list[str] = set_option(),
    edge: float | None = typer.Option(None, "--edge", help="planted edge, bps per bar (default: the config's, "
                                      "else 6)"),
    only: str | None = typer.Option(None, "--only", help="positive | negative (default: both)"),
    timesteps: int | None = typer.Option(None, "--timesteps", help="override agent.total_timesteps"),
    data: Path | None = typer.Option(None, "--data", help="your own bars (single-asset env): the edge is planted "
                                     "in env.symbols[0] for the positive control"),
    out: Path | None = typer.Option(None, "--out"),
) -> None:
    """Positive control (a planted edge must be found) and negative control (nothing in a null market)."""
    from ..pipeline.controls import run_controls

    cfg = load_or_exit(config, set_)
    if only not in (None, "positive", "negative"):
        raise fail("--only must be positive or negative", 2)

    def say(stage: str, msg: str) -> None:
        console.print(f"[bold cyan]{stage:<9}[/] {msg}", highlight=False)

    try:
        res = run_controls(cfg, edge_bps=edge, which=(only,) if only else ("positive", "negative"), out=out,
                           progress=say, timesteps=timesteps, data_path=data)
    except (IntradayJulesError, ValueError) as e:
        raise fail(str(e)) from None
    table = Table(title="controls: walk-forward out-of-sample (concatenated test blocks, realistic costs)")
    for c in ("control", "edge bps/bar", "expected net bps/day", "oracle bps/day", "model bps/day (seeds)",
              "vs flat [95% CI]", "vs buy_hold [95% CI]", "DSR p by fold", "PBO by fold", "passed"):
        table.add_column(c)
    for kind, r in res["rows"].items():
        vs = r["vs"]
        table.add_row(kind, f"{r['edge_bps_per_bar']:g}",
                      f"{r['expected']['net_bps_per_day']:+.1f}" if "expected" in r else "n/a",
                      f"{r['oracle_mean_bps']:+.1f}" if "oracle_mean_bps" in r else "n/a",
                      f"{r['model_mean_bps']:+.1f} +- {r['model_sd_bps']:.1f}",
                      *[_ci(vs[n]) if n in vs else "n/a" for n in ("flat", "buy_hold")],
                      ", ".join(f"{p:.2f}" for p in r["dsr_p_by_fold"]),
                      ", ".join(f"{p:.2f}" for p in r["pbo_by_fold"]), "yes" if r["passed"] else "NO")
    console.print(table)
    for kind, r in res["rows"].items():
        console.print(f"{kind}: {r['verdict']}", highlight=False)
    console.print(f"written: {res['path']}", highlight=False, soft_wrap=True)


@experiment_app.command("agents")
def agents(
    config: Path = typer.Option(..., "--config", "-c", help="experiment YAML or preset name"),
    set_: list[str] = set_option(),
    algos: str = typer.Option("dqn,qrdqn,ppo,a2c", "--algos", help="comma-separated agent.algo values"),
    seeds: int = typer.Option(5, "--seeds", min=1, help="seeds per algorithm (experiments default to 5)"),
    timesteps: int | None = typer.Option(None, "--timesteps", help="override agent.total_timesteps"),
    data: Path | None = typer.Option(None, "--data", help="your own bars (CSV/Parquet file or directory)"),
    out: Path | None = typer.Option(None, "--out"),
) -> None:
    """Each algorithm x N seeds on the same sessions (every walk-forward fold with data.splits.mode
    walk_forward), against the reference policies (paired daily net P&L, seeds and sessions resampled)."""
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
