"""The main job: bars -> features -> tuning -> retrain the best trial -> baseline -> evaluation ->
registry -> report. ``intradayjules run`` is a thin layer over :func:`run_main`.

Stages (each reported through ``progress(stage, message)``):

1. ``data``: load (or synthesise) and validate the bars; bad data stops here with file, line and rule.
2. ``features``: from the shared feature store (a rerun with the same config is a hit).
3. ``tune``: the configured backend (default Optuna, all local cores, median pruning) over
   ``tune.n_trials`` trials of ``tune.trial_timesteps`` steps; the study is named after the config's
   content, so a rerun with the same config resumes it (finished trials are not run again).
4. ``train``: the best trial's parameters, ``agent.total_timesteps`` steps, with the RiskCallback.
5. ``baseline``: the original set-up (flat 5 bps costs in training, risk profile ``off``), same budget.
6. ``evaluate``: both on the held-out test sessions under the realistic market model.
7. ``register``: the model becomes a version of ``tracking.registered_model`` with alias ``champion``.
8. ``report``: ``runs/<name>/report.html`` (and ``report_data.json``, ``summary.json``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import ExperimentConfig, dump_config

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


def study_name(cfg: ExperimentConfig) -> str:
    """Named by what decides the trials (data, features, env, market, risk, agent, tune), so a rerun
    of the same config resumes its study and a changed config gets a new one."""
    parts = cfg.model_dump(mode="json", include={"data", "features", "env", "market", "risk", "agent", "tune"})
    digest = hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=5).hexdigest()
    return f"{cfg.name}-{digest}"


def _study_exists(cfg: ExperimentConfig, name: str) -> bool:
    """Whether a study of this name already has trials (then the run resumes it)."""
    from .tune.results import run_dir_for

    if cfg.tune.backend == "optuna":
        import optuna

        from .tune.optuna_backend import open_storage, storage_spec

        spec = storage_spec(cfg.tune.storage, run_dir_for(cfg, name, "optuna"))
        return name in optuna.study.get_all_study_names(storage=open_storage(spec))
    from ray import tune

    return tune.Tuner.can_restore(str(run_dir_for(cfg, name, "ray")))


def _eval_summary(stats: dict, res) -> dict:
    from .evaluate.report import equity_from_daily

    closes = res.steps.groupby("session", sort=False)["equity"].last()
    return {"stats": stats, "sessions": list(map(str, closes.index)),
            "equity_curve": equity_from_daily(list(closes.to_numpy()), res.initial_equity)}


def _study_details(result) -> dict:
    """Trials (number, state, last reported value) and parameter importances from the study."""
    trials = []
    importances: dict[str, float] = {}
    for i, t in enumerate(result.trials):
        number = int(t["id"]) if str(t["id"]).isdigit() else i  # Ray trial ids are names
        trials.append({"number": number, "id": str(t["id"]), "state": t["state"], "value": t.get("value"),
                       "last_step": t.get("last_step"), "seconds": t.get("seconds")})
    if result.backend == "optuna" and result.storage:
        try:
            import optuna

            from .tune.optuna_backend import open_storage

            study = optuna.load_study(study_name=result.study, storage=open_storage(result.storage))
            by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
            for row in trials:
                t = by_number.get(row["number"])
                if t is not None and row["value"] is None and t.intermediate_values:
                    row["value"] = t.intermediate_values[max(t.intermediate_values)]
            complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
            if len(complete) >= 2:
                try:
                    importances = optuna.importance.get_param_importances(study)
                except (ImportError, RuntimeError, ValueError):
                    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
                    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except Exception as e:  # noqa: BLE001 - the report says why instead of failing the run
            importances = {}
            note = f"parameter importances unavailable: {type(e).__name__}: {e}"
            return {"trials": trials, "importances": {}, "note": note}
    return {"trials": trials, "importances": {k: float(v) for k, v in importances.items() if math.isfinite(v)}}


def run_main(cfg: ExperimentConfig, *, data_path=None, backend: str | None = None, address: str | None = None,
             track: bool | None = None, progress: Progress | None = None) -> MainResult:
    from .agents.dqn import train, with_risk_profile, write_outputs
    from .agents.illiquid_experiment import arm_config
    from .data import load_data
    from .evaluate.backtest import policy_from_model
    from .evaluate.evaluation import evaluate_policy
    from .evaluate.report import render_report, write_report_data
    from .experiment import prepare, run_dir
    from .tune.search import run_search
    from .tune.space import SearchSpace

    say = progress or (lambda stage, msg: None)
    track = cfg.tracking.enabled if track is None else track
    timings: dict[str, float] = {}
    if backend or address:
        cfg = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={
            k: v for k, v in (("backend", backend), ("address", address)) if v is not None})})
    if data_path is not None:
        cfg = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"data_path": Path(data_path).resolve()})})

    tracker = None
    if track:
        from .track import check_reachable, make_tracker, resolve_tracking

        target = resolve_tracking(cfg, enabled=True)
        check_reachable(target.uri, target.connect_timeout_s)  # before hours of work, not after
        tracker = make_tracker(target)

    t0 = time.perf_counter()
    say("data", "loading and validating bars")
    bars, _ = load_data(cfg, data_path)  # validation errors stop the run here
    timings["data_s"] = time.perf_counter() - t0
    say("data", f"{len(bars.frame):,} bars, {bars.frame['symbol'].nunique()} symbols, "
                f"{bars.frame['session'].nunique()} sessions")

    t0 = time.perf_counter()
    say("features", "building or reusing features")
    prepared = prepare(cfg, data_path)
    timings["features_s"] = time.perf_counter() - t0
    say("features", f"feature store {'hit' if prepared.feature_hit else 'miss (built)'} "
                    f"key {prepared.feature_key[:12] if prepared.feature_key else '-'}; "
                    f"symbols {', '.join(prepared.env_data.symbols)}")
    out = run_dir(cfg)
    (out / "config.yaml").write_text(dump_config(cfg))

    t0 = time.perf_counter()
    name = study_name(cfg)
    tcfg = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"study_name": name})})
    say("tune", f"{cfg.tune.backend}: study {name}, {cfg.tune.n_trials} trials x {cfg.tune.trial_timesteps:,} steps")
    result, _ = run_search(tcfg, track=track, resume=_study_exists(tcfg, name), progress=False)
    timings["tune_s"] = time.perf_counter() - t0
    if not result.best_params:
        from .errors import IntradayJulesError

        raise IntradayJulesError(f"tuning finished without a complete trial ({result.n_failed} failed, "
                                 f"{result.n_pruned} pruned): see {result.run_dir}")
    say("tune", f"{result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed in "
                f"{result.wall_s:.0f} s; best objective {result.best_value:.3f}")

    t0 = time.perf_counter()
    best_cfg = SearchSpace.from_config(cfg.tune).apply(cfg, result.best_params)
    say("train", f"retraining the best trial for {best_cfg.agent.total_timesteps:,} steps")
    run = tracker.run(cfg.name, best_cfg, prepared.lineage()) if tracker is not None else None
    try:
        model_res = train(prepared, out / "model", cfg=best_cfg,
                          tracker=run if run is not None else None)
        paths = write_outputs(model_res, prepared, best_cfg)
        timings["train_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        base_cfg = arm_config(with_risk_profile(cfg, "off"), "original", cfg.agent.seed)
        say("baseline", "training the original set-up (flat 5 bps costs, no risk shaping)")
        base_res = train(prepared, out / "baseline", cfg=base_cfg, checkpoints=False)  # a reference, not resumed
        timings["baseline_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        say("evaluate", "both models on held-out test sessions, realistic costs")
        eval_cfg = best_cfg.model_copy(update={"market": best_cfg.market.model_copy(update={"model": "realistic"})})
        from .agents.dqn import load_model

        m_stats, m_res = evaluate_policy(policy_from_model(load_model(model_res.model_path)), prepared, "test",
                                         eval_cfg)
        b_stats, b_res = evaluate_policy(policy_from_model(load_model(base_res.model_path)), prepared, "test",
                                         eval_cfg)
        timings["evaluate_s"] = time.perf_counter() - t0

        registered = None
        t0 = time.perf_counter()
        if run is not None:
            from .track import log_training_outputs, register_model

            digests = log_training_outputs(run, model_zip=model_res.model_path, torchscript=paths["torchscript"],
                                           config_yaml=model_res.run_dir / "config.yaml",
                                           feature_spec=paths["feature_spec"], evaluation_json=paths["evaluation"])
            run.log_metrics({f"test/{k}": float(v) for k, v in m_stats.items()
                             if isinstance(v, (int, float)) and math.isfinite(float(v))})
            run.end("FINISHED")
            say("register", "registering the model as champion")
            info = register_model(tracker, run.run_id)
            registered = {"name": info.name, "version": str(info.version), "alias": "champion",
                          "run_id": run.run_id, "artifacts": len(digests)}
            run = None
        timings["register_s"] = time.perf_counter() - t0
    except BaseException:
        if run is not None:
            run.end("FAILED")
        raise

    t0 = time.perf_counter()
    say("report", "writing the report")
    details = _study_details(result)
    data = {
        "name": cfg.name,
        "summary": (f"Model (tuned, risk-aware) vs baseline (original set-up) on {m_stats['sessions']} held-out "
                    f"sessions under the realistic market model."),
        "evaluation": {"model": _eval_summary(m_stats, m_res), "baseline": _eval_summary(b_stats, b_res)},
        "training": model_res.evaluations,
        "tuning": {"study": result.study, "backend": result.backend, "wall_s": result.wall_s,
                   "best_value": result.best_value, "best_params": result.best_params, **details},
        "lineage": {**prepared.lineage(), "registered": json.dumps(registered) if registered else "tracking off",
                    "study": result.study},
        "config_yaml": dump_config(best_cfg),
    }
    write_report_data(out, data)
    report = render_report(out)
    timings["report_s"] = time.perf_counter() - t0
    summary = {"run_dir": str(out), "report": str(report), "model": str(model_res.model_path),
               "evaluation": str(paths["evaluation"]), "registered": registered, "timings": timings,
               "feature_hit": prepared.feature_hit, "study": result.study,
               "tracking_uri": tracker.uri if tracker is not None else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return MainResult(out, report, model_res.model_path, m_stats, b_stats,
                      {"study": result.study, "best_value": result.best_value, "n_complete": result.n_complete,
                       "n_pruned": result.n_pruned, "n_failed": result.n_failed},
                      registered, registered["run_id"] if registered else None,
                      tracker.uri if tracker is not None else None, timings, prepared.feature_hit)
