"""A training run, written once: train -> evaluate -> outputs -> tracking.

``train(prepared, run_dir, cfg=...)`` trains ``agent.algo`` (``agents.sb3.learn``) with the ``RiskCallback``
(validation, best model, early stopping) and checkpoints, and writes the run directory:
``config.yaml`` (resolved), ``lineage.json`` (data fingerprint, feature key, versions), ``model.zip``
(final, signed, with ``model.bundle/``: the pickle-free policy, ``agents/bundle.py``), ``best_model.zip`` (best validation objective), ``checkpoints/``, ``metrics.json`` (the
callback's evaluations, rewritten at each evaluation so a crash keeps them) and ``progress.csv``.

``write_outputs`` adds what a run ships besides the SB3 zip: ``policy.pt`` (TorchScript greedy policy; for
QR-DQN the risk-aware one),
``feature_spec.json``, ``scaler.json`` (the training-session standardisation the env applied) and
``evaluation.json`` (statistics of the final model on a split), and completes ``model.bundle/`` into the
deployable bundle (``agents/deploy.py``: the same parts plus the config and the observation/action
layout, each with its sha256) that the registry logs and ``intradayjules paper`` runs.

``training_run(prepared, run_dir, tracker=...)`` is the whole sequence inside one tracked run (params,
lineage, metrics by step, artifacts with sha256); every command and experiment that trains a model
goes through it. The tracker is any ``track`` tracker (``NoOpTracker`` when tracking is off): this module
never asks whether tracking is on.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from ..agents.deploy import complete_bundle
from ..agents.export import ensure_bundle, export_torchscript, save_model
from ..agents.sb3 import Checkpoint, learn, load_model
from ..agents.policy import policy_from_model
from ..config import ExperimentConfig, dump_config
from ..env import make_env
from ..evaluate.evaluation import evaluate_policy
from ..evaluate.metrics import json_safe
from ..features.pipeline import feature_spec
from ..risk.callback import RiskCallback
from ..track import NoOpTracker, log_training_outputs
from .prepare import Prepared


class StepProgress(BaseCallback):
    """Reports training progress: ``report(message, fraction)`` at every tenth of ``total`` steps (the
    CLI draws it as a bar on a terminal and prints plain lines otherwise)."""

    def __init__(self, report: Callable[[str, float], None], total: int, parts: int = 10):
        super().__init__()
        self.report, self.total, self.parts = report, max(int(total), 1), int(parts)
        self._next = 1

    def _on_step(self) -> bool:
        frac = self.num_timesteps / self.total
        if frac * self.parts >= self._next:
            self._next = int(frac * self.parts) + 1
            self.report(f"{self.num_timesteps:,} / {self.total:,} steps", min(frac, 1.0))
        return True


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    best_model_path: Path | None
    timesteps: int
    stopped_early: bool
    evaluations: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    eval_s: float = 0.0
    best_objective: float | None = None


def train(prepared: Prepared, run_dir: str | Path, *, cfg: ExperimentConfig | None = None,
          total_timesteps: int | None = None, progress_bar: bool = False, resume_from: str | Path | None = None,
          hooks: Sequence = (), extra_callbacks: Sequence = (), eval_sessions: int | None = None,
          run: Any = None, init_weights_from: str | Path | None = None, objective_weights=None,
          checkpoints: bool = True, trust_pickle: bool = False) -> TrainResult:
    """Train on ``prepared`` and write the run directory (module docstring).

    ``resume_from``: continue a run exactly (the checkpoint's hyperparameters, step count and replay
    buffer); into the same run directory it keeps the run's evaluation history and best model.
    ``init_weights_from``: PBT exploit (``agents.sb3.learn``). ``hooks``: called with (callback, metrics)
    at every validation evaluation (tuning reports there). ``run``: a tracking run that receives the
    evaluation metrics by step. ``objective_weights``: risk weights of the validation objective's
    composite (default ``cfg.risk.weights``); tuning fixes them so that trials which sample the weights
    are still scored on one scale."""
    cfg = cfg or prepared.cfg
    steps = int(total_timesteps or cfg.agent.total_timesteps)
    if steps <= cfg.agent.learning_starts and resume_from is None and init_weights_from is None:
        warnings.warn(f"{steps:,} training steps <= agent.learning_starts ({cfg.agent.learning_starts:,}): the agent "
                      "only explores at random and never learns; raise the steps or lower agent.learning_starts",
                      stacklevel=2)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    (run_dir / "lineage.json").write_text(json.dumps(prepared.lineage(), indent=2))
    eval_env = make_env(cfg, None, split="val", data=prepared.env_data)
    risk_cb = RiskCallback(eval_env, cfg.risk, n_sessions=eval_sessions, best_model_path=run_dir / "best_model.zip",
                           hooks=list(hooks), objective_weights=objective_weights, save_model=save_model)
    prev = run_dir / "metrics.json"
    if resume_from is not None and prev.exists():  # continue the same run: keep its history and best
        before = json.loads(prev.read_text())
        step = int(Path(resume_from).stem.split("_")[-2]) if "_steps" in Path(resume_from).stem else None
        risk_cb.history = [e for e in before.get("evaluations", []) if step is None or e["timesteps"] <= step]
        if risk_cb.history and (run_dir / "best_model.zip").exists():
            best = max(risk_cb.history, key=lambda e: e["eval/objective"])
            risk_cb.best_objective, risk_cb.best_step = best["eval/objective"], int(best["timesteps"])
    risk_cb.hooks.insert(0, lambda cb, m: _write_metrics(run_dir, cb, cb.num_timesteps))  # survives a crash
    if run is not None:
        risk_cb.hooks.append(lambda cb, m: log_evaluations(run, [m]))
    callbacks = [risk_cb, *([Checkpoint(cfg.agent.checkpoint_freq, run_dir / "checkpoints")] if checkpoints else []),
                 *extra_callbacks]
    t0 = time.perf_counter()
    model = learn(cfg, prepared.env_data, callbacks, total_timesteps=total_timesteps, log_dir=run_dir,
                  progress_bar=progress_bar, resume_from=resume_from, init_weights_from=init_weights_from,
                  trust_pickle=trust_pickle)
    wall = time.perf_counter() - t0
    if not risk_cb.history or risk_cb.history[-1]["timesteps"] < model.num_timesteps:
        final = risk_cb.evaluate(final=True)  # judge the final policy too (no stop rule, no hooks)
        if run is not None:  # the run's metrics by step are the whole history
            log_evaluations(run, [final])
    model_path = run_dir / "model.zip"
    save_model(model, model_path)  # signed zip + model.bundle/ (agents/export.py)
    best = run_dir / "best_model.zip"
    result = TrainResult(run_dir, model_path, best if best.exists() else None, int(model.num_timesteps),
                         risk_cb.stopped_early, risk_cb.history, wall, risk_cb.eval_seconds,
                         risk_cb.best_objective)
    _write_metrics(run_dir, risk_cb, result.timesteps, wall)
    return result


def _write_metrics(run_dir: Path, cb: RiskCallback, timesteps: int, wall: float | None = None) -> None:
    """``metrics.json`` (atomically): written at every evaluation, so a crashed run keeps its history."""
    payload = {"timesteps": int(timesteps), "stopped_early": cb.stopped_early, "wall_s": wall,
               "eval_s": cb.eval_seconds, "best_objective": cb.best_objective, "best_step": cb.best_step,
               "evaluations": cb.history, "complete": wall is not None}
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(run_dir / "metrics.json")


def write_outputs(result: TrainResult, prepared: Prepared, cfg: ExperimentConfig | None = None,
                  split: str = "test") -> dict[str, Path]:
    """``policy.pt``, ``feature_spec.json``, ``scaler.json`` and ``evaluation.json`` (the final model on
    ``split`` under ``cfg``'s market model) in the run directory; returns their paths."""
    cfg = cfg or prepared.cfg
    model = load_model(result.model_path)
    paths = {"torchscript": export_torchscript(model, result.run_dir / "policy.pt")}
    spec = result.run_dir / "feature_spec.json"
    spec.write_text(json.dumps(feature_spec(cfg.features, cfg.data.calendar), indent=2, default=str))
    paths["feature_spec"] = spec
    if prepared.scaler is not None:
        paths["scaler"] = result.run_dir / "scaler.json"
        paths["scaler"].write_text(prepared.scaler.to_json())
    bundle = ensure_bundle(model, result.model_path)  # every algorithm (agents/export.py)
    paths["bundle"] = complete_bundle(bundle, cfg, prepared.env_data)  # the paper loop's (agents/deploy.py)
    stats, _ = evaluate_policy(policy_from_model(model), prepared.env_data, cfg, split)
    ev = result.run_dir / "evaluation.json"
    ev.write_text(json.dumps(json_safe(stats), indent=2, sort_keys=True))
    paths["evaluation"] = ev
    return paths


@dataclass
class TrainingRun:
    result: TrainResult
    paths: dict[str, Path]
    evaluation: dict[str, Any]
    run_id: str | None = None


def log_evaluations(run: Any, evaluations: Sequence[dict[str, float]]) -> None:
    """A training's validation evaluations as the run's metrics by step, for a training that ran without
    the run (in a forked worker): the same values and steps :func:`train` logs as it goes."""
    for m in evaluations:
        run.log_metrics(m, step=int(m["timesteps"]))


def training_run(prepared: Prepared, run_dir: str | Path, *, cfg: ExperimentConfig | None = None,
                 tracker: Any = None, name: str | None = None, split: str = "test",
                 trained: TrainResult | None = None, **train_kwargs: Any) -> TrainingRun:
    """Train, write the outputs (evaluated on ``split``) and record it all in one tracked run; ``tracker``
    defaults to tracking off. ``train_kwargs`` go to :func:`train`. ``trained``: a :func:`train` of
    ``run_dir`` already done (in a worker process, ``pipeline/main_job.py``): not trained again, its
    evaluations logged by step (:func:`log_evaluations`), the rest as usual."""
    cfg = cfg or prepared.cfg
    tracker = tracker if tracker is not None else NoOpTracker()
    with tracker.run(name or cfg.name, cfg, prepared.lineage()) as run:
        if trained is None:
            result = train(prepared, run_dir, cfg=cfg, run=run, **train_kwargs)
        else:
            result = trained
            log_evaluations(run, result.evaluations)
        paths = write_outputs(result, prepared, cfg, split)
        log_training_outputs(run, model_zip=result.model_path, torchscript=paths["torchscript"],
                             config_yaml=result.run_dir / "config.yaml", feature_spec=paths["feature_spec"],
                             scaler_json=paths.get("scaler"), evaluation_json=paths["evaluation"])
        evaluation = json.loads(paths["evaluation"].read_text())
        run.log_metrics({f"{split}/{k}": float(v) for k, v in evaluation.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))})
        run_id = run.run_id
    return TrainingRun(result, paths, evaluation, run_id)
