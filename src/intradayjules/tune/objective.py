"""The DQN trial: train with the risk callback, report the validation objective at every evaluation.

``dqn_trial(params, cfg, reporter)`` (the default ``tune.trial_fn``; contract in ``tune/trial.py``):

* data and features come from ``experiment.prepare`` (the shared feature store), cached per process so
  a worker running many trials prepares them once; the Optuna backend prepares them once for the
  whole study (``share_prepared``) and its workers load that bundle instead;
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
  best one), averaged over ``tune.n_seeds`` seeds (seeds after the first train without reporting).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

from ..config import ExperimentConfig

_PREPARED: dict[str, object] = {}
PREPARED_ENV = "INTRADAYJULES_PREPARED"  # a bundle written by share_prepared: workers load it, not prepare
DQN_TRIAL = "intradayjules.tune.objective:dqn_trial"


def _prepared_key(cfg: ExperimentConfig, data_path) -> str:
    import json

    env = cfg.env.model_dump(mode="json", include={"symbols", "mode", "n_assets", "standardize", "obs_clip"})
    return json.dumps([cfg.data.model_dump(mode="json"), cfg.features.model_dump(mode="json"),
                       cfg.market.model_dump(mode="json"), env, str(data_path), str(cfg.workdir)], sort_keys=True)


def prepared_for(cfg: ExperimentConfig, data_path=None):
    """``experiment.prepare`` once per (data, features, env symbols) in this process; a worker whose
    ``INTRADAYJULES_PREPARED`` bundle (``share_prepared``) was made for the same key loads it instead
    (no data loading, feature-store read or panel building in the worker)."""
    from ..experiment import prepare

    key = _prepared_key(cfg, data_path)
    if key not in _PREPARED:
        _PREPARED.clear()  # one prepared data set per worker process at a time
        _PREPARED[key] = _load_shared(key) or prepare(cfg, data_path)
    return _PREPARED[key]


def share_prepared(cfg: ExperimentConfig, run_dir: Path) -> Path | None:
    """In the process that starts the workers: prepare the default DQN trial's data once and write it to
    ``run_dir/prepared.pkl`` (the env arrays and lineage; the raw bars are left out), for workers to
    load through ``INTRADAYJULES_PREPARED``. None for other trial functions. The bundle is a pickle
    in the study's own run directory, read only by this study's workers."""
    import pickle
    from dataclasses import replace

    if cfg.tune.trial_fn != DQN_TRIAL:
        return None
    prepared = prepared_for(cfg, cfg.tune.data_path)
    path = Path(run_dir) / "prepared.pkl"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps({"key": _prepared_key(cfg, cfg.tune.data_path),
                                  "prepared": replace(prepared, bars=None)}, protocol=5))
    tmp.replace(path)
    return path


def _load_shared(key: str):
    import os
    import pickle

    path = os.environ.get(PREPARED_ENV)
    if not path or not Path(path).exists():
        return None
    bundle = pickle.loads(Path(path).read_bytes())
    return bundle["prepared"] if bundle.get("key") == key else None


def _final(history: list[dict]) -> float:
    vals = [h["eval/objective"] for h in history[-3:]]
    return float(sum(vals) / len(vals)) if vals else math.nan


def dqn_trial(params: dict, cfg: ExperimentConfig, reporter) -> float:
    from ..agents.dqn import train
    from ..config import RiskConfig

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
    try:
        for s in range(cfg.tune.n_seeds):
            seed_cfg = cfg.model_copy(update={"agent": cfg.agent.model_copy(update={"seed": cfg.agent.seed + s})})
            hooks = [_report_hook(reporter)] if s == 0 else []
            init = None
            if s == 0 and reporter.restore_dir() is not None:  # PBT exploit: donor weights, new params
                cand = Path(reporter.restore_dir()) / "model.zip"
                init = cand if cand.exists() else None
            res = train(prepared, root / f"seed{s}", cfg=seed_cfg, total_timesteps=steps, hooks=hooks,
                        init_weights_from=init, eval_sessions=cfg.risk.eval_episodes,
                        objective_weights=objective_weights, checkpoints=False)
            finals.append(_final(res.evaluations))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return float(sum(finals) / len(finals))


def _trial_root(cfg: ExperimentConfig) -> str:
    from ..experiment import resolve_path

    d = resolve_path(cfg, cfg.workdir) / "tune-trials"
    d.mkdir(parents=True, exist_ok=True)
    return str(d)


def _report_hook(reporter):
    count = {"n": 0}

    def hook(callback, metrics: dict) -> None:
        count["n"] += 1
        every = getattr(reporter, "checkpoint_every", None)
        if every and count["n"] % every == 0:
            callback.model.save(Path(reporter.checkpoint_dir()) / "model.zip")
        reporter.report(count["n"], float(metrics["eval/objective"]))

    return hook
