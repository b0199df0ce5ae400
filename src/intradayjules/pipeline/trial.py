"""The default trial: train with the risk callback, report the validation objective at every evaluation.

``dqn_trial(params, cfg, reporter)`` (the default ``tune.trial_fn``; contract in ``tune/trial.py``) trains
whichever ``agent.algo`` the config names (agents/algos.py; the name is historical):

* data and features come from ``pipeline.prepare`` (the shared feature store), cached per process so
  a worker running many trials prepares them once;
* one training run of ``tune.trial_timesteps`` steps (torch on one thread, ``cfg.agent.device``), with
  ``RiskCallback`` evaluating on validation sessions ``tune.reports_per_trial`` times; each evaluation's
  risk-adjusted objective (``risk/callback.py``) goes to ``reporter.report(i, value)``, which raises
  ``Prune`` when the pruner or scheduler stops the trial;
* PBT: a checkpoint (the SB3 model) is written every ``reporter.checkpoint_every`` reports; a trial
  that starts from a checkpoint (``reporter.restore_dir()``) builds a model with its own (perturbed)
  hyperparameters and copies the donor's network weights into it (the replay buffer starts empty, and
  learning waits ``learning_starts`` fresh steps); PBT leaves ``net_arch`` and QR-DQN's ``n_quantiles``
  unperturbed (``tune.space.ARCHITECTURE_PARAMS``), so the donor's weights fit;
* when the search samples the risk weights, the objective's composite uses the profile's reference
  weights, so trials are scored on one scale (the sampled weights only drive early stopping);
* the final objective is the mean of the last three evaluations' objectives (less optimistic than the
  best one), averaged over ``tune.n_seeds`` seeds (seeds after the first train without reporting) and, with
  walk-forward splits, over ``tune.objective_folds`` folds ending with the fold being tuned
  (``trial_folds``; each trained on its own window with its own scaler); the evaluations of fold k (seed 0)
  are reported as steps ``k * reports_per_trial + 1, ...``, so pruning compares trials fold by fold;
* the whole trial runs inside ``env.tuning_phase`` with the horizon at the tuned fold's first test session:
  asking the data layer for a test block, or for any session from the horizon on, raises;
* a trial's evaluations cover every session of the validation block (not ``risk.eval_episodes``, which
  is for training runs): the objective and the selection statistics below see the whole block;
* the per-session validation P&L of the trial's latest evaluation (first seed; rewritten at every
  evaluation, so a pruned trial keeps its last one; with several objective folds, each fold's latest,
  concatenated in time order) goes to ``<workdir>/tune-pnl/<study>/<trial key>.json`` as
  ``{"trial": key, "sessions": [...], "daily_bps": [...]}``; ``load_pnl_matrix(cfg, study)`` reads them
  back as the sessions x trials matrix of the deflated Sharpe ratio and PBO (``evaluate/overfitting.py``).
  The trial key is the backend's trial id (``reporter.trial_key``: the Optuna trial number, the Ray trial
  directory name), else a digest of the parameters.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from ..config import ExperimentConfig, RiskConfig
from ..env import tuning_phase
from ..agents.sb3 import warm_training
from .prepare import prepare, resolve_path
from .train_run import train

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
    by_fold: dict[int, pd.Series] = {}  # each objective fold's latest validation P&L (seed 0)
    # the guard: nothing in here may read the tuned fold's test block or anything after its start
    with tuning_phase(horizon=prepared.env_data.splits["test"][0], what="tuning trial"):
        try:
            for k, fold in enumerate(trial_folds(cfg)):
                prep = _fold(prepared, fold)
                for s in range(cfg.tune.n_seeds):
                    seed_cfg = cfg.model_copy(update={"agent": cfg.agent.model_copy(
                        update={"seed": cfg.agent.seed + s})})
                    hooks = ([_pnl_hook(cfg, params, reporter, by_fold, fold),
                              _report_hook(reporter, offset=k * n_reports)] if s == 0 else [])
                    init = None
                    if k == 0 and s == 0 and reporter.restore_dir() is not None:  # PBT exploit: donor weights
                        cand = Path(reporter.restore_dir()) / "model.zip"
                        init = cand if cand.exists() else None
                    res = train(prep, root / f"fold{fold}-seed{s}", cfg=seed_cfg, total_timesteps=steps,
                                hooks=hooks, init_weights_from=init,
                                eval_sessions=len(prep.env_data.splits["val"]),  # the whole validation block
                                objective_weights=objective_weights, checkpoints=False)
                    finals.append(_final(res.evaluations))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return float(sum(finals) / len(finals))


def _warm(cfg: ExperimentConfig) -> None:
    """Issue 16: tune backends that fork workers call this once first, so every worker starts with the data
    (and, walk-forward, the last objective fold's split) prepared, and with the imports and env kernels a
    training loads lazily (``agents.sb3.warm_training``)."""
    prepared = prepared_for(cfg, cfg.tune.data_path)
    warm_training(cfg, _fold(prepared, trial_folds(cfg)[-1]).env_data)


dqn_trial.warm = _warm  # type: ignore[attr-defined]


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


# ------------------------------------------------------------------ per-trial validation P&L (DSR, PBO)
def pnl_dir(cfg: ExperimentConfig, study: str) -> Path:
    return resolve_path(cfg, cfg.workdir) / "tune-pnl" / re.sub(r"[^A-Za-z0-9._-]", "_", study)


def trial_key(params: dict, reporter) -> str:
    key = getattr(reporter, "trial_key", None)
    if key is None:
        key = "p" + hashlib.blake2b(json.dumps(params, sort_keys=True, default=str).encode(), digest_size=6).hexdigest()
    return str(key)


def _pnl_hook(cfg: ExperimentConfig, params: dict, reporter, by_fold: dict[int, pd.Series] | None = None,
              fold: int = 0):
    """Write the evaluation's per-session validation P&L (bps) of this trial, atomically, at every evaluation;
    ``by_fold`` keeps each objective fold's latest, written concatenated in time order."""
    study = cfg.tune.study_name or cfg.name
    by_fold = {} if by_fold is None else by_fold

    def hook(callback, metrics: dict) -> None:
        if callback.last_daily_bps is None:
            return
        by_fold[fold] = callback.last_daily_bps
        daily = pd.concat([by_fold[f] for f in sorted(by_fold)])
        key = trial_key(params, reporter)
        d = pnl_dir(cfg, study)
        d.mkdir(parents=True, exist_ok=True)
        out = d / (re.sub(r"[^A-Za-z0-9._-]", "_", key) + ".json")
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"trial": key, "timesteps": int(callback.num_timesteps),
                                   "sessions": [str(x) for x in daily.index],
                                   "daily_bps": [float(x) for x in daily.to_numpy()]}))
        tmp.replace(out)

    return hook


def load_pnl_matrix(cfg: ExperimentConfig, study: str, trials=None) -> pd.DataFrame:
    """The sessions x trials matrix of validation daily net P&L (bps) written by the trials of ``study``
    (columns: trial keys, sorted; index: sessions as dates). ``trials``: keep only these keys. Every trial
    must have the same sessions (one study evaluates on one validation set): a file that differs raises,
    naming it and the first differing session. Empty frame when there are none."""
    d = pnl_dir(cfg, study)
    cols: dict[str, pd.Series] = {}
    first: tuple[Path, list[str]] | None = None
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        rec = json.loads(f.read_text())
        key = str(rec["trial"])
        if trials is not None and key not in {str(t) for t in trials}:
            continue
        sessions = [str(x) for x in rec["sessions"]]
        if len(sessions) != len(rec["daily_bps"]):
            raise ValueError(f"{f}: {len(sessions)} sessions but {len(rec['daily_bps'])} daily_bps values")
        if first is None:
            first = (f, sessions)
        elif sessions != first[1]:
            diff = next((a for a, b in zip(sessions, first[1]) if a != b), None) or f"{len(sessions)} vs {len(first[1])} sessions"
            raise ValueError(f"{f}: its validation sessions differ from {first[0].name}'s (first difference: {diff})")
        cols[key] = pd.Series(rec["daily_bps"], index=pd.DatetimeIndex(pd.to_datetime(sessions)), dtype=float)
    if not cols:
        return pd.DataFrame()
    return pd.DataFrame({k: cols[k] for k in sorted(cols, key=lambda k: (len(k), k))})



def trial_pnl_matrix(cfg: ExperimentConfig, study: str, result, panel) -> tuple[pd.DataFrame, str | None]:
    """The complete and pruned trials' validation P&L (sessions x trials, partial sessions dropped) and the
    selected (best) trial's key, from a search ``result`` (``tune.search.SearchResult``)."""
    keep = [t["id"] for t in result.trials if t.get("state") in ("complete", "pruned") and t.get("id") is not None]
    m = load_pnl_matrix(cfg, study, trials=keep)
    if not m.empty:
        m = m.loc[~m.index.isin(pd.to_datetime(panel.partial_dates()))]
    best = [t["id"] for t in result.trials if t.get("state") == "complete" and t.get("value") == result.best_value]
    return m, (best[0] if best else None)
