"""The walk-forward run: tune on each fold's validation blocks, retrain per fold and seed, and report the
concatenated out-of-sample (OOS) test P&L, the honest equity curve, with its statistics.

For each fold ``i`` of ``data.splits`` (mode ``walk_forward``, env/episodes.py ``fold_splits``):

1. **Tune** (``tune.n_trials`` trials, study ``<study>-fold<i>``): every trial trains on the training window
   of the last ``tune.objective_folds`` folds ending with ``i`` and is scored on their validation blocks
   (``pipeline.trial``), inside ``env.tuning_phase`` with the horizon at fold ``i``'s first test session, so
   no choice for fold ``i`` sees its test block or anything after it. Each trial's per-session validation
   P&L is kept (``trial_pnl``).
2. **Select and deflate**: the best trial's parameters; the **DSR** of that selection (its daily Sharpe on the
   validation sessions against the expected maximum of ``N`` luck-only trials, ``N`` = trials tried,
   pruned ones included) and the **PBO** by CSCV of the trials' validation P&L matrix
   (``evaluate.overfitting``).
3. **Retrain** the selected configuration on fold ``i``'s training window for ``agent.n_seeds`` seeds (early
   stopping and the best-model choice see fold ``i``'s validation block only), evaluate each final model on
   fold ``i``'s **test block** under the realistic market model, and roll the reference policies
   (``pipeline.compare.default_references``: every policy of ``agents.references``) over the same block.

The folds' test blocks are consecutive and never overlap, so concatenating them gives one OOS daily P&L per
seed (``compare.concat_folds``). Reported on it: per seed and mean +- sd of the mean daily P&L, the Sharpe of
the seed-averaged OOS P&L with its bootstrap interval and Lo standard errors (``evaluate.sharpe``), its PSR
against 0 (no selection happened on these sessions, so ``N = 1``), and the model against each reference by
the two-level (sessions x seeds) bootstrap of the mean daily difference (``evaluate.seeds``).

Written to ``<run_dir>``: ``walk_forward.json`` (everything), ``oos_pnl.csv`` (session, fold, every seed,
the seed mean and the references, bps of initial cash), ``oos_equity.png`` (cumulative OOS P&L).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ExperimentConfig, apply_overrides
from ..env.rollout import Policy
from ..evaluate.metrics import json_safe
from ..evaluate.assessment import selection_stats
from ..evaluate.overfitting import probabilistic_sharpe_ratio
from ..evaluate.sharpe import moments, sharpe_estimate
from ..evaluate.tearsheet import equity_figure, figure_png
from ..tune.backend import get_backend
from ..tune.search import run_search
from ..tune.space import SearchSpace
from .compare import (RunRecord, comparison_table, concat_folds, default_references, realistic,
                      reference_records, train_arm)
from .prepare import Prepared, prepare, run_dir
from .trial import trial_pnl_matrix

Progress = Callable[[str, str], None]
References = Callable[[Any, ExperimentConfig], Mapping[str, Policy]]


@dataclass
class FoldResult:
    fold: int
    sessions: dict[str, list[str]]  # first and last session of train / val / test
    study: str | None
    best_params: dict[str, Any]
    best_value: float | None
    n_trials: dict[str, int]
    selection: dict[str, Any]  # dsr, pbo (or the reason they are undefined)
    models: list[RunRecord]
    references: dict[str, RunRecord]


@dataclass
class WalkForwardResult:
    run_dir: Path
    folds: list[FoldResult]
    oos: dict[str, Any]  # statistics of the concatenated test blocks
    paths: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def fold_config(cfg: ExperimentConfig, i: int, study: str | None = None) -> ExperimentConfig:
    over: dict[str, Any] = {"data.splits.fold": i}
    if study is not None:
        over["tune.study_name"] = study
    return apply_overrides(cfg, over)


def _span(days) -> list[str]:
    d = [str(np.datetime_as_string(x, unit="D")) for x in days]
    return [d[0], d[-1], str(len(d))] if d else []


def fold_selection(trial_pnl: pd.DataFrame, selected: str | None, n_tried: int) -> dict[str, Any]:
    """DSR of the selected trial and PBO by CSCV over a fold's trials (``evaluate.assessment.selection_stats``),
    as a JSON-ready dict; ``reason`` says why one is missing."""
    dsr, pbo, note = selection_stats(trial_pnl, selected)
    out: dict[str, Any] = {"n_trials_in_matrix": int(trial_pnl.shape[1]), "n_trials_tried": int(n_tried),
                           "n_sessions": int(trial_pnl.shape[0]), "selected": selected}
    if dsr is not None:
        out["dsr"] = dsr.to_dict()
    if pbo is not None:
        out["pbo"] = pbo.to_dict()
    if note or dsr is None:
        out["reason"] = note or "no validation P&L of the trials"
    return out


def run_walk_forward(cfg: ExperimentConfig, *, study: str, prepared: Prepared | None = None, data_path=None,
                     out: Path | None = None, track: bool = False, progress: Progress | None = None,
                     references: References | None = None, timesteps: int | None = None) -> WalkForwardResult:
    """The walk-forward run (module docstring); ``study`` names the tuning studies (``<study>-fold<i>``);
    ``tune.n_trials = 0`` skips tuning (the config's own parameters are retrained)."""
    if cfg.data.splits.mode != "walk_forward":
        raise ValueError("run_walk_forward needs data.splits.mode: walk_forward")
    say = progress or (lambda stage, msg: None)
    make_refs = references or default_references
    prepared = prepared or prepare(cfg, data_path)
    out = out or run_dir(cfg)
    timings: dict[str, float] = {"tune_s": 0.0, "train_s": 0.0}
    folds: list[FoldResult] = []
    n_folds = prepared.env_data.n_folds
    for i in range(n_folds):
        prep = prepared.for_fold(i)
        sp = prep.env_data.splits
        sessions = {k: _span(sp[k]) for k in ("train", "val", "test")}
        say("fold", f"fold {i} ({i + 1} of {n_folds}): train {sessions['train'][0]}..{sessions['train'][1]}, "
                    f"val {sessions['val'][0]}..{sessions['val'][1]}, test {sessions['test'][0]}.."
                    f"{sessions['test'][1]}")
        fold_cfg = fold_config(cfg, i, f"{study}-fold{i}")
        if data_path is not None:  # the trials (other processes) load the same bars
            fold_cfg = apply_overrides(fold_cfg, {"tune.data_path": str(Path(data_path).resolve())})
        best_cfg, best_params, best_value, counts, selection = fold_cfg, {}, None, {}, {}
        if cfg.tune.n_trials > 0:
            t0 = time.perf_counter()
            name = fold_cfg.tune.study_name
            search = get_backend(cfg.tune.backend)
            say("tune", f"fold {i}: {cfg.tune.n_trials} trials x {cfg.tune.trial_timesteps:,} steps, objective "
                        f"over {min(cfg.tune.objective_folds, i + 1)} fold(s) x {cfg.tune.n_seeds} seed(s)")
            result, _ = run_search(fold_cfg, track=track, resume=search.exists(fold_cfg, name), progress=False)
            timings["tune_s"] += time.perf_counter() - t0
            if not result.best_params:
                raise ValueError(f"fold {i}: tuning finished without a complete trial ({result.n_failed} failed, "
                                 f"{result.n_pruned} pruned): see {result.run_dir}")
            best_params, best_value = result.best_params, result.best_value
            counts = {"complete": result.n_complete, "pruned": result.n_pruned, "failed": result.n_failed}
            best_cfg = SearchSpace.from_config(cfg.tune, cfg.agent.algo).apply(fold_cfg, best_params)
            trial_pnl, selected = trial_pnl_matrix(fold_cfg, name, result, prep.env_data.panel)
            selection = fold_selection(trial_pnl, selected, result.n_complete + result.n_pruned)
            say("tune", f"fold {i}: best objective {best_value:.3f}; " + _selection_line(selection))
        t0 = time.perf_counter()
        say("train", f"fold {i}: retraining for {cfg.agent.n_seeds} seed(s) x "
                     f"{timesteps or best_cfg.agent.total_timesteps:,} steps")
        models = train_arm(prep, best_cfg, "model", cfg.agent.n_seeds, out / f"fold{i}", split="test",
                           timesteps=timesteps)
        timings["train_s"] += time.perf_counter() - t0
        eval_cfg = realistic(best_cfg)
        refs = reference_records(make_refs(prep.env_data, eval_cfg), prep.env_data, eval_cfg, "test")
        say("evaluate", f"fold {i}: test mean daily P&L " + ", ".join(
            f"seed {r.seed} {r.mean_pnl:+.2f}" for r in models) + " bps; " + ", ".join(
            f"{n} {r.mean_pnl:+.2f}" for n, r in refs.items()))
        folds.append(FoldResult(i, sessions, fold_cfg.tune.study_name if cfg.tune.n_trials else None, best_params,
                                best_value, counts, selection, models, refs))
    oos = oos_statistics(folds)
    res = WalkForwardResult(out, folds, oos, timings=timings)
    res.paths = write_outputs(res, cfg)
    return res


def _selection_line(sel: dict) -> str:
    d, p = sel.get("dsr", {}), sel.get("pbo", {})
    dsr = f"DSR p {d['p_value']:.3f}" if d and not d.get("reason") else f"DSR n/a ({d.get('reason', sel.get('reason'))})"
    pbo = f"PBO {p['pbo']:.2f}" if "pbo" in p else f"PBO n/a ({p.get('reason', '')})"
    return f"{dsr}, {pbo} over {sel.get('n_trials_in_matrix', 0)} trials"


def oos_statistics(folds: list[FoldResult]) -> dict[str, Any]:
    """Statistics of the concatenated test blocks (module docstring)."""
    model = concat_folds([f.models for f in folds])
    names = list(folds[0].references)
    refs = {n: concat_folds([[f.references[n]] for f in folds])[0] for n in names}
    table = comparison_table({"model": model}, refs)
    mean = np.mean([r.daily["pnl"].to_numpy() for r in model], axis=0)
    sh = sharpe_estimate(mean)
    skew, kurt = moments(mean)
    sr_daily = sh.sharpe / math.sqrt(252) if math.isfinite(sh.sharpe) else math.nan
    psr = probabilistic_sharpe_ratio(sr_daily, 0.0, len(mean), skew, kurt)
    per_seed_sharpe = [sharpe_estimate(r.daily["pnl"].to_numpy(), n_resamples=1000).sharpe for r in model]
    return {"sessions": list(model[0].daily.index), "n_sessions": len(mean), "n_seeds": len(model),
            "model_mean_pnl": mean.tolist(), "sharpe": sh.to_dict(), "per_seed_sharpe": per_seed_sharpe,
            "psr_vs_0": psr, "table": table,
            "fold_of_session": [f.fold for f in folds for _ in range(len(f.models[0].daily))]}


def write_outputs(res: WalkForwardResult, cfg: ExperimentConfig) -> dict[str, Path]:
    out = res.run_dir
    out.mkdir(parents=True, exist_ok=True)
    oos = res.oos
    frame = pd.DataFrame({"session": oos["sessions"], "fold": oos["fold_of_session"]})
    model = concat_folds([f.models for f in res.folds])
    for r in model:
        frame[f"seed{r.seed}"] = r.daily["pnl"].to_numpy()
    frame["model_mean"] = oos["model_mean_pnl"]
    for n in res.folds[0].references:
        frame[n] = np.concatenate([f.references[n].daily["pnl"].to_numpy() for f in res.folds])
    paths = {"csv": out / "oos_pnl.csv", "json": out / "walk_forward.json", "png": out / "oos_equity.png"}
    frame.to_csv(paths["csv"], index=False)
    series = {c: pd.Series(frame[c].to_numpy(), index=pd.to_datetime(frame["session"]))
              for c in ["model_mean", *res.folds[0].references]}
    paths["png"].write_bytes(figure_png(equity_figure(series, title="walk-forward out-of-sample net P&L "
                                                                    "(concatenated test blocks)")))
    payload = {"name": cfg.name, "splits": cfg.data.splits.model_dump(mode="json"),
               "n_seeds": cfg.agent.n_seeds, "tune": {"n_trials": cfg.tune.n_trials,
                                                      "trial_timesteps": cfg.tune.trial_timesteps,
                                                      "objective_folds": cfg.tune.objective_folds,
                                                      "n_seeds": cfg.tune.n_seeds},
               "folds": [{"fold": f.fold, "sessions": f.sessions, "study": f.study, "best_params": f.best_params,
                          "best_value": f.best_value, "n_trials": f.n_trials, "selection": f.selection,
                          "models": [r.summary() for r in f.models],
                          "references": {n: r.summary() for n, r in f.references.items()}} for f in res.folds],
               "oos": oos, "timings": res.timings}
    paths["json"].write_text(json.dumps(json_safe(payload), indent=2, default=str))
    return paths


def seed_comparison(prepared: Prepared, arms: Mapping[str, tuple[ExperimentConfig, Any]], n_seeds: int,
                    out: Path, eval_cfg: ExperimentConfig, split: str = "test",
                    references: References | None = None) -> dict[str, Any]:
    """Arms ``name -> (config, trained seed-0 TrainResult)``: train seeds 1..n-1 of each, evaluate every
    model and the reference policies on ``split`` under ``eval_cfg``, and compare (``compare
    .comparison_table``: each arm against each reference, and the arms in the given order)."""
    records = {name: train_arm(prepared, c, name, n_seeds, out / "seeds", split=split, eval_cfg=eval_cfg,
                               first=first) for name, (c, first) in arms.items()}
    refs = reference_records((references or default_references)(prepared.env_data, eval_cfg), prepared.env_data,
                             eval_cfg, split)
    names = list(arms)
    return comparison_table(records, refs, pairs=[(names[0], b) for b in names[1:]])

