"""The DQN trial: train with the risk callback, report the validation objective at every evaluation.

``dqn_trial(params, cfg, reporter)`` (the default ``tune.trial_fn``; contract in ``tune/trial.py``):

* data and features come from ``pipeline.prepare`` (the shared feature store), cached per process so
  a worker running many trials prepares them once;
* one training run of ``tune.trial_timesteps`` steps (torch on one thread, ``cfg.agent.device``), with
  ``RiskCallback`` evaluating on validation sessions ``tune.reports_per_trial`` times; each evaluation's
  risk-adjusted objective (``risk/callback.py``) goes to ``reporter.report(i, value)``, which raises
  ``Prune`` when the pruner or scheduler stops the trial;
* PBT: a checkpoint (the SB3 model) is written every ``reporter.checkpoint_every`` reports; a trial
  that starts from a checkpoint (``reporter.restore_dir()``) builds a model with its own (perturbed)
  hyperparameters and copies the donor's network weights into it (the replay buffer starts empty, and
  learning waits ``learning_starts`` fresh steps); ``net_arch`` must not be perturbed by PBT;
* when the search samples the risk weights, the objective's composite uses the profile's reference
  weights, so trials are scored on one scale (the sampled weights only drive early stopping);
* the final objective is the mean of the last three evaluations' objectives (less optimistic than the
  best one), averaged over ``tune.n_seeds`` seeds (seeds after the first train without reporting) and, with
  walk-forward splits, over ``tune.objective_folds`` folds ending with the fold being tuned
  (``trial_folds``; each trained on its own window with its own scaler); the evaluations of fold k (seed 0)
  are reported as steps ``k * reports_per_trial + 1, ...``, so pruning compares trials fold by fold;
* the whole trial runs inside ``env.tuning_phase`` with the horizon at the tuned fold's first test session:
  asking the data layer for a test block, or for any session from the horizon on, raises;
* the per-session validation P&L of the final policies (mean over seeds) is written for DSR/PBO
  (``trial_pnl``).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import json

import pandas as pd

from ..agents.dqn import load_model
from ..agents.policy import policy_from_model
from ..config import ExperimentConfig, RiskConfig
from ..env import tuning_phase
from ..evaluate.evaluation import evaluate_policy
from .prepare import prepare, resolve_path
from .train_run import train
from .trial_pnl import write_trial_pnl

_PREPARED: dict[str, object] = {}
_FOLDS: dict[tuple, object] = {}


def prepared_for(cfg: ExperimentConfig, data_path=None):
    """``pipeline.prepare`` once per (data, features, env symbols) in this process."""
    env = cfg.env.model_dump(mode="json", include={"symbols", "mode", "n_assets", "standardize", "obs_clip"})
    key = json.dumps([cfg.data.model_dump(mode="json"), cfg.features.model_dump(mode="json"),
                      cfg.market.model_dump(mode="json"), env, str(data_path), str(cfg.workdir)], sort_keys=True)
    if key not in _PREPARED:
        _PREPARED.clear()  # one prepared data set per worker process at a time
        _FOLDS.clear()
        _PREPARED[key] = prepare(cfg, data_path)
    return _PREPARED[key]


def _final(history: list[dict]) -> float:
    vals = [h["eval/objective"] for h in history[-3:]]
    return float(sum(vals) / len(vals)) if vals else math.nan


def trial_folds(cfg: ExperimentConfig) -> list[int]:
    """The folds a trial trains and validates on: the last ``tune.objective_folds`` folds ending with the
    one being tuned (``data.splits.fold``, default the last); ``[0]`` for a fixed split."""
    sp = cfg.data.splits
    if sp.mode != "walk_forward":
        return [0]
    last = sp.folds - 1 if sp.fold is None else sp.fold
    return list(range(max(0, last - cfg.tune.objective_folds + 1), last + 1))


def _fold(prepared, i: int):
    key = (id(prepared), i)
    if key not in _FOLDS:
        _FOLDS[key] = prepared.for_fold(i)
    return _FOLDS[key]


def dqn_trial(params: dict, cfg: ExperimentConfig, reporter) -> float:
    # Trials that sample the risk weights are still scored on one scale: the objective's composite uses
    # the profile's reference weights, the sampled ones drive early stopping only.
    objective_weights = RiskConfig(profile=cfg.risk.profile).weights if cfg.tune.search_risk_weights else None

    steps = cfg.tune.trial_timesteps
    n_reports = max(1, cfg.tune.reports_per_trial)
    eval_freq = max(steps // n_reports, 1)
    risk = cfg.risk.model_copy(update={"eval_freq": eval_freq})
    cfg = cfg.model_copy(update={"risk": risk})
    prepared = prepared_for(cfg, cfg.tune.data_path)
    root = Path(tempfile.mkdtemp(prefix="trial-", dir=_trial_root(cfg)))
    finals = []
    pnl = []
    # the guard: nothing in here may read the tuned fold's test block or anything after its start
    with tuning_phase(horizon=prepared.env_data.splits["test"][0], what="tuning trial"):
        try:
            for k, fold in enumerate(trial_folds(cfg)):
                prep = _fold(prepared, fold)
                fold_pnl = []
                for s in range(cfg.tune.n_seeds):
                    seed_cfg = cfg.model_copy(update={"agent": cfg.agent.model_copy(
                        update={"seed": cfg.agent.seed + s})})
                    hooks = [_report_hook(reporter, offset=k * n_reports)] if s == 0 else []
                    init = None
                    if k == 0 and s == 0 and reporter.restore_dir() is not None:  # PBT exploit
                        cand = Path(reporter.restore_dir()) / "model.zip"
                        init = cand if cand.exists() else None
                    res = train(prep, root / f"fold{fold}-seed{s}", cfg=seed_cfg, total_timesteps=steps,
                                hooks=hooks, init_weights_from=init, eval_sessions=cfg.risk.eval_episodes,
                                objective_weights=objective_weights, checkpoints=False)
                    finals.append(_final(res.evaluations))
                    fold_pnl.append(_validation_pnl(res.model_path, prep, seed_cfg))
                pnl.append(sum(fold_pnl) / len(fold_pnl))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    value = float(sum(finals) / len(finals))
    write_trial_pnl(cfg, cfg.tune.study_name or cfg.name, params, value, pd.concat(pnl).sort_index())
    return value


def _validation_pnl(model_path: Path, prepared, cfg: ExperimentConfig) -> pd.Series:
    """Daily net P&L (bps of initial cash) of the final policy on every validation session, realistic costs."""
    eval_cfg = cfg.model_copy(update={"market": cfg.market.model_copy(update={"model": "realistic"})})
    _, res = evaluate_policy(policy_from_model(load_model(model_path)), prepared.env_data, eval_cfg, "val")
    closes = res.closing_equity()
    return pd.Series(1e4 * (closes.to_numpy() / res.initial_equity - 1.0), index=closes.index)


def _trial_root(cfg: ExperimentConfig) -> str:
    d = resolve_path(cfg, cfg.workdir) / "tune-trials"
    d.mkdir(parents=True, exist_ok=True)
    return str(d)


def _report_hook(reporter, offset: int = 0):
    """Reports each evaluation as step ``offset + 1, offset + 2, ...`` (one range of steps per fold, so the
    pruner compares trials fold by fold)."""
    count = {"n": 0}

    def hook(callback, metrics: dict) -> None:
        count["n"] += 1
        every = getattr(reporter, "checkpoint_every", None)
        if every and count["n"] % every == 0:
            callback.model.save(Path(reporter.checkpoint_dir()) / "model.zip")
        reporter.report(offset + count["n"], float(metrics["eval/objective"]))

    return hook
