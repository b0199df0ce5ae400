"""The main job: bars -> features -> tuning -> retrain the best trial -> baseline -> evaluation ->
registry -> report. ``intradayjules run`` is a thin layer over :func:`run_main`.

Stages (each reported through ``progress(stage, message)``):

1. ``data``: load (or synthesise) and validate the bars; bad data stops here with file, line and rule.
2. ``features``: from the shared feature store (a rerun with the same config is a hit).
3. ``tune``: the configured backend (default Optuna, all local cores, median pruning) over
   ``tune.n_trials`` trials of ``tune.trial_timesteps`` steps; the study is named after the config's
   content, so a rerun with the same config resumes it (finished trials are not run again).
4. ``train``: the best trial's parameters, ``agent.algo``, ``agent.total_timesteps`` steps, with the
   RiskCallback (tuning searched ``agent.algo``'s default space unless ``tune.search_space`` is set).
5. ``baseline``: the original set-up (DQN, flat 5 bps costs in training, risk profile ``off``), same budget.
   On a fresh run with two cores (``agent.seed_workers``) the baseline trains beside the retraining, each
   in a forked worker (the same models as one after the other); each is then recorded as its own tracked
   run from its result (metrics by step, outputs), as when it trains here.
6. ``evaluate``: the model, the baseline and every reference policy (``agents.references``: flat,
   buy_hold, buy_hold_liquid, random, momentum, reversal) on the held-out test sessions under the realistic
   market model (``evaluate.suite``); ``runs/<name>/eval/<policy>/{daily,trades}.parquet``; the model
   against each on paired daily net P&L, and the tuning's selection (DSR, PBO) from the trials' validation
   P&L matrix (``pipeline.trial.load_pnl_matrix``, complete and pruned trials, partial sessions dropped);
   the verdict sentence. With ``agent.n_seeds`` > 1 the model and the baseline are trained for that many
   seeds and compared with each other and the reference policies by paired daily P&L with two-level
   (sessions x seeds) bootstrap intervals (``walk_forward.seed_comparison``).
7. ``register``: the model becomes a version of ``tracking.registered_model``; it takes alias ``champion``
   only when it beats the current champion on paired daily net P&L on these test sessions
   (``track.promotion``), else alias ``challenger``, with the reason in the report and summary.
8. ``report``: ``runs/<name>/report.html`` (and ``report_data.json``, ``summary.json``); with tracking on,
   the records, the report and the statistics (``compare/*``, ``sharpe/*``, ``dsr/*``, ``pbo/*``) are
   logged to the model's run.

Before the stages: a new local MLflow store gets its schema in a forked child while the data is prepared
(``Tracker.start_store``), and, once the data is there, the run's orphaned MLflow runs are reaped. Before
the first workers fork, this process loads what every training loads lazily (``agents.sb3.warm_training``),
so the tuning workers, the side-by-side runs and the seeds start with it (issue 16: ~2 s a worker).

With ``data.splits.mode: walk_forward`` the job is the walk-forward protocol instead
(``pipeline.walk_forward``): tuning per fold on validation blocks, retraining per fold and seed, and the
concatenated out-of-sample test P&L with its statistics; nothing is registered.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import rundir
from ..agents.policy import policy_from_model
from ..agents.references import REFERENCE_NAMES
from ..agents.sb3 import configure_torch, load_model, warm_training
from ..config import ExperimentConfig, apply_overrides, dump_config, with_risk_profile
from ..errors import IntradayJulesError
from ..evaluate.metrics import json_safe
from ..evaluate.report import render_report, suite_data, write_report_data
from ..evaluate.stats import summary_metrics
from ..evaluate.suite import Suite, evaluate_suite
from ..track import log_report_outputs, log_training_outputs, make_tracker
from ..track.orphans import reap_orphaned_runs
from ..track.promotion import register_gated
from ..tune.backend import get_backend
from ..tune.search import run_search
from ..tune.space import SearchSpace
from .illiquid import arm_config
from .prepare import prepare, run_dir, with_data_path
from .stages import StageLog, load_train_result, load_training_run
from .parallel import can_fork, map_forked, worker_count
from .train_run import StepProgress, TrainResult, log_evaluations, train, training_run
from .trial import trial_pnl_matrix
from .walk_forward import WalkForwardResult, run_walk_forward, seed_comparison

Progress = Callable[[str, str], None]


@dataclass
class MainResult:
    run_dir: Path
    report: Path
    model_path: Path
    evaluation: dict
    baseline_evaluation: dict
    tune_summary: dict
    registered: dict | None = None
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    feature_hit: bool | None = None
    verdict: str = ""
    suite: Suite | None = None
    comparison: dict | None = None  # agent.n_seeds seeds per arm, paired CIs (pipeline.compare)
    walk_forward: Any = None  # data.splits.mode walk_forward: the WalkForwardResult


def study_name(cfg: ExperimentConfig) -> str:
    """Named by what decides the trials (data, features, env, market, risk, agent, tune), so a rerun
    of the same config resumes its study and a changed config gets a new one."""
    parts = cfg.model_dump(mode="json", include={"data", "features", "env", "market", "risk", "agent", "tune"})
    digest = hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=5).hexdigest()
    return f"{cfg.name}-{digest}"


DESCRIPTIONS = {"model": "the tuned, risk-aware DQN (best trial retrained)",
                "baseline": "the original set-up: DQN trained with flat 5 bps costs, no risk shaping"}


def _steps(stage: str, say: Progress, total: int) -> StepProgress:
    """Step progress of a long stage through ``say(stage, message, fraction)`` (a two-argument ``say``
    gets plain messages)."""
    takes_fraction = len(inspect.signature(say).parameters) >= 3
    return StepProgress(lambda msg, frac: say(stage, msg, frac) if takes_fraction else say(stage, msg), total)


def _side_by_side(prepared, stages: StageLog, jobs: dict[str, tuple[ExperimentConfig, Path]], workers: int,
                  say: Callable[[str], None]) -> dict[str, TrainResult]:
    """The retraining and the baseline's training at once, in forked workers (``parallel.map_forked``:
    seeded runs give the same models as in this process), when a fresh run has both still to do and two
    workers are possible; ``{}`` otherwise, and each stage trains in this process as before. Only the
    training runs there (``train``: checkpoints, validation, the run directory); this process then
    records each run from its result (``training_run(trained=...)``, ``log_evaluations``)."""
    if stages.resumed or any(stages.done(k) for k in jobs) or worker_count(workers, len(jobs)) < 2 \
            or not can_fork():
        return {}
    names = list(jobs)
    say(f"retraining the best trial for {jobs['train'][0].agent.total_timesteps:,} steps and the baseline "
        f"beside it ({len(names)} processes)")
    results = map_forked(lambda k: train(prepared, jobs[k][1], cfg=jobs[k][0]), names, workers,
                         before_fork=lambda: warm_training(jobs["train"][0], prepared.env_data))
    return dict(zip(names, results))


def _walk_forward_result(wf: WalkForwardResult, feature_hit: bool | None) -> MainResult:
    """The main job's result for a walk-forward run (``walk_forward`` holds everything)."""
    model = wf.oos["table"]["arms"]["model"]
    last = wf.folds[-1].models[0].model_path
    return MainResult(wf.run_dir, wf.paths["json"], Path(last) if last else wf.run_dir,
                      {"mean_daily_pnl_bps": model["mean"], "sd_over_seeds": model["sd"],
                       "sharpe": wf.oos["sharpe"]["sharpe"], "sessions": wf.oos["n_sessions"]},
                      {}, {"studies": [f.study for f in wf.folds]}, timings=wf.timings, feature_hit=feature_hit,
                      comparison=wf.oos["table"], walk_forward=wf)


def run_main(cfg: ExperimentConfig, *, data_path=None, backend: str | None = None, address: str | None = None,
             track: bool | None = None, progress: Progress | None = None) -> MainResult:
    """The main job (module docstring). The run directory is locked for its whole duration: a second
    run of the same config refuses with the holder's pid instead of writing into the same directory."""
    with rundir.lock(run_dir(cfg)):
        return _run_main(cfg, data_path=data_path, backend=backend, address=address, track=track,
                         progress=progress)


def _run_main(cfg: ExperimentConfig, *, data_path=None, backend: str | None = None, address: str | None = None,
              track: bool | None = None, progress: Progress | None = None) -> MainResult:
    say = progress or (lambda stage, msg: None)
    cfg = with_data_path(cfg, data_path)  # the recorded config names the data really used
    track = cfg.tracking.enabled if track is None else track
    timings: dict[str, float] = {}
    cfg = apply_overrides(cfg, {k: v for k, v in (("tune.backend", backend), ("tune.address", address),
                                                  ("tune.data_path", str(Path(data_path).resolve())
                                                   if data_path is not None else None)) if v is not None})
    tracker = make_tracker(cfg, enabled=track)  # an unreachable server fails here, before hours of work
    tracker.start_store()  # a new local store's schema is created in a child while the data is prepared
    stages = StageLog.open(run_dir(cfg), cfg)  # per-stage resume of a killed run (pipeline/stages.py)
    if stages.resumed:
        say("resume", f"{run_dir(cfg)} stopped after {', '.join(stages.stages)}: resuming")

    # this process's torch threads as the trainings' (they set them when they train here): with torch's
    # default thread pool used here first, the forked seeds below ran many times slower
    configure_torch(cfg.agent.torch_threads, cfg.agent.device)
    t0 = time.perf_counter()
    say("data", "loading and validating bars, building or reusing features")
    prepared = prepare(cfg, data_path)  # validation errors stop the run here
    timings["data_s"] = prepared.timings.get("data_s", 0.0)
    timings["features_s"] = time.perf_counter() - t0 - timings["data_s"]
    frame = prepared.bars.frame
    say("data", f"{len(frame):,} bars, {frame['symbol'].nunique()} symbols, {frame['session'].nunique()} sessions")
    traded = prepared.env_data.symbols
    if cfg.env.mode == "multi" and not cfg.env.symbols and len(traded) < cfg.env.n_assets:
        say("data", f"env.n_assets is {cfg.env.n_assets} but the data has {len(traded)} symbol(s): trading "
                    f"{len(traded)} (set env.n_assets or env.symbols to silence this)")
    say("features", f"feature store {'hit' if prepared.feature_hit else 'miss (built)'} "
                    f"key {prepared.feature_key[:12] if prepared.feature_key else '-'}; "
                    f"symbols {', '.join(prepared.env_data.symbols)}")
    if cfg.data.splits.mode != "walk_forward" and can_fork() and worker_count(0, 2) > 1:
        warm_training(cfg, prepared.env_data)  # what every training loads lazily, once, before workers fork
    for line in reap_orphaned_runs(tracker, rundir.stale_holder(run_dir(cfg))):  # a killed run's MLflow runs
        say("tracking", line)
    out = run_dir(cfg)
    (out / "config.yaml").write_text(dump_config(cfg))
    if cfg.data.splits.mode == "walk_forward":  # tune per fold, retrain per fold x seed, OOS statistics
        wf = run_walk_forward(cfg, study=study_name(cfg), prepared=prepared, out=out, track=track, progress=say)
        stages.finish()  # the fold studies resume through their storage; no per-stage record here
        return _walk_forward_result(wf, prepared.feature_hit)

    t0 = time.perf_counter()
    name = study_name(cfg)
    tcfg = apply_overrides(cfg, {"tune.study_name": name})
    search = get_backend(cfg.tune.backend)
    say("tune", f"{cfg.tune.backend}: study {name}, {cfg.tune.n_trials} trials x {cfg.tune.trial_timesteps:,} steps")
    result, _ = run_search(tcfg, track=track, resume=search.exists(tcfg, name), progress=False)
    timings["tune_s"] = time.perf_counter() - t0
    stages.record("study", study=name, trials={t["id"]: t.get("params") for t in result.trials})
    if not result.best_params:
        raise IntradayJulesError(f"tuning finished without a complete trial ({result.n_failed} failed, "
                                 f"{result.n_pruned} pruned): see {result.run_dir}")
    say("tune", f"{result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed in "
                f"{result.wall_s:.0f} s; best objective {result.best_value:.3f}")

    t0 = time.perf_counter()
    best_cfg = SearchSpace.from_config(cfg.tune, cfg.agent.algo).apply(cfg, result.best_params)
    # the original system's DQN whatever agent.algo the tuned model uses
    base_cfg = apply_overrides(arm_config(with_risk_profile(cfg, "off"), "original", cfg.agent.seed),
                               {"agent.algo": "dqn"})
    pre = _side_by_side(prepared, stages, {"train": (best_cfg, out / "model"), "baseline": (base_cfg, out / "baseline")},
                        cfg.agent.seed_workers, lambda msg: say("train", msg))
    if not pre:
        say("train", f"retraining the best trial for {best_cfg.agent.total_timesteps:,} steps")
    model = stages.training("train", out / "model", lambda ckpt: training_run(
        prepared, out / "model", cfg=best_cfg, tracker=tracker, name=cfg.name, resume_from=ckpt,
        trained=pre.get("train"), extra_callbacks=[_steps("train", say, best_cfg.agent.total_timesteps)]),
        load_training_run, lambda m: (m.result.model_path, m.run_id), lambda msg: say("train", msg))
    timings["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("baseline", "the original set-up (flat 5 bps costs, no risk shaping): "
                    + ("trained beside the retraining, recording its run" if pre else "training"))
    # the baseline is a tracked run too (params, lineage, dataset, metrics by step, model)
    def _baseline(ckpt):
        with tracker.run(f"{cfg.name}-baseline", base_cfg, prepared.lineage(),
                         tags={"intradayjules.role": "baseline"}) as base_run:
            if "baseline" in pre:
                res = pre["baseline"]
                log_evaluations(base_run, res.evaluations)
            else:
                res = train(prepared, out / "baseline", cfg=base_cfg, resume_from=ckpt, run=base_run,
                            extra_callbacks=[_steps("baseline", say, base_cfg.agent.total_timesteps)])
            log_training_outputs(base_run, model_zip=res.model_path, config_yaml=out / "baseline" / "config.yaml")
        return res, base_run.run_id
    base_res, base_run_id = stages.training("baseline", out / "baseline", _baseline,
                                            lambda d, rec: (load_train_result(d), rec.get("run_id")),
                                            lambda r: (r[0].model_path, r[1]), lambda msg: say("baseline", msg))
    timings["baseline_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("evaluate", f"model, baseline and {len(REFERENCE_NAMES)} reference policies on held-out test sessions, "
                    "realistic costs")
    eval_cfg = apply_overrides(best_cfg, {"market.model": "realistic"})
    trial_pnl, selected = trial_pnl_matrix(cfg, name, result, prepared.env_data.panel)
    suite = evaluate_suite({"model": policy_from_model(load_model(model.result.model_path)),
                            "baseline": policy_from_model(load_model(base_res.model_path))},
                           prepared.env_data, eval_cfg, "test", references=REFERENCE_NAMES, trial_pnl=trial_pnl,
                           selected=selected, descriptions=DESCRIPTIONS, seed=cfg.seed)
    records = suite.write(out / "eval")
    m_stats, b_stats = suite.stats["model"], suite.stats["baseline"]
    comparison = None
    if cfg.agent.n_seeds > 1:
        say("seeds", f"training {cfg.agent.n_seeds - 1} more seed(s) of the model and of the baseline")
        comparison = seed_comparison(prepared, {"model": (best_cfg, model.result), "baseline": (base_cfg, base_res)},
                                     cfg.agent.n_seeds, out, eval_cfg)
        for c in comparison["contrasts"]:
            say("evaluate", f"{c['a']} - {c['b']} over {cfg.agent.n_seeds} seeds: {c['mean_diff_bps']:+.2f} bps/day "
                            f"[{c['ci_low']:+.2f}, {c['ci_high']:+.2f}] ({c['verdict']})")
    timings["evaluate_s"] = time.perf_counter() - t0
    say("evaluate", f"{len(suite.stats)} policies on {len(suite.assessment.sessions)} full test sessions "
                    f"({suite.assessment.n_excluded} partial excluded); selection: {suite.assessment.n_trials} "
                    f"trials x {suite.assessment.trial_sessions} validation sessions")

    registered = None
    t0 = time.perf_counter()
    def _register() -> dict:
        say("register", f"registering the model (promotion: {cfg.tracking.promotion})")
        info, decision = register_gated(tracker, model.run_id, suite.daily["model"], prepared.env_data, eval_cfg)
        say("register", f"v{info.version} {decision.reason}")
        return {"name": info.name, "version": str(info.version), "alias": decision.alias,
                "promotion": decision.reason, "run_id": model.run_id, "artifacts": len(model.paths)}
    if model.run_id is not None:
        registered = stages.once("register", _register)  # never registered twice by a resumed run
    timings["register_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("report", "writing the report")
    details = search.details(result)
    a = suite.assessment
    data: dict[str, Any] = {
        "name": cfg.name,
        "summary": (f"The model (tuned, risk-aware DQN) against the baseline (original set-up) and "
                    f"{len(REFERENCE_NAMES)} reference policies on {m_stats['sessions']} held-out sessions under "
                    f"the realistic market model; statistics on the {len(a.sessions)} full sessions "
                    f"({a.n_excluded} partial excluded)."),
        **suite_data(suite, records, out),
        "comparison": comparison,
        "training": model.result.evaluations,
        "tuning": {"study": result.study, "backend": result.backend, "wall_s": result.wall_s,
                   "best_value": result.best_value, "best_params": result.best_params, **details},
        "lineage": {**prepared.lineage(), "registered": json.dumps(registered) if registered else "tracking off",
                    "study": result.study},
        "config_yaml": dump_config(best_cfg),
    }
    data_path_json = write_report_data(out, data)
    report = render_report(out)
    (out / "verdict.txt").write_text(suite.verdict + "\n")
    if model.run_id is not None:  # the model's run gets the evaluation: records, report, statistics
        run = tracker.get_run(model.run_id)
        run.log_artifacts(out / "eval", "evaluation/records")
        for f in (report, data_path_json, out / "verdict.txt"):
            run.log_artifact(f, "evaluation")
        run.log_metrics(summary_metrics(a.comparisons, sharpes=a.sharpes, dsr=a.dsr, pbo=a.pbo))
        run.set_tags({"intradayjules.verdict": suite.verdict[:4900]})
        run.end("FINISHED")
    timings["report_s"] = time.perf_counter() - t0
    tracking_uri = tracker.uri if track else None
    summary = {"run_dir": str(out), "report": str(report), "model": str(model.result.model_path),
               "evaluation": str(model.paths["evaluation"]), "registered": registered, "timings": timings,
               "feature_hit": prepared.feature_hit, "study": result.study, "tracking_uri": tracking_uri,
               "verdict": suite.verdict, "records": {n: {k: str(p) for k, p in r.items()} for n, r in records.items()},
               "selection": {"n_trials": a.n_trials, "trial_sessions": a.trial_sessions,
                             "dsr_p_value": a.dsr.p_value if a.dsr else None, "pbo": a.pbo.pbo if a.pbo else None,
                             "note": a.selection_note},
               "comparison": comparison}
    (out / "summary.json").write_text(json.dumps(json_safe(summary), indent=2, default=str))
    # the report files with their digests on the model's run (its records went up above), and the
    # baseline's own run gets its test metrics
    log_report_outputs(tracker, model.run_id, out, tables=False)
    log_report_outputs(tracker, base_run_id, out / "baseline", metrics=b_stats)
    stages.finish()
    return MainResult(out, report, model.result.model_path, m_stats, b_stats,
                      {"study": result.study, "best_value": result.best_value, "n_complete": result.n_complete,
                       "n_pruned": result.n_pruned, "n_failed": result.n_failed},
                      registered, registered["run_id"] if registered else None, tracking_uri, timings,
                      prepared.feature_hit, suite.verdict, suite, comparison)
