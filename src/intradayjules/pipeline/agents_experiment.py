"""``experiment agents``: several algorithms, several seeds, the same folds, against reference policies.

For every fold, algorithm and seed ``s`` (``agent.seed + s``) one training run (``train_run.train``: the
risk callback, the config's risk profile and budget; ``agent.algo`` set to the algorithm) on the fold's
training sessions; the final model is then rolled over the fold's test sessions under the realistic
market model. The reference policies (default: every one of ``agents.references``: flat, buy_hold,
buy_hold_liquid, random, momentum, reversal) are rolled over the same sessions. A day's net P&L is ``1e4 * (equity_close / initial_cash - 1)`` bps (each session starts from the
initial cash); a run's test P&L is its days over all folds' test sessions, in fold order.

Per algorithm, the report (``agents_experiment.json``) gives:

* ``mean_daily_bps``: each seed's mean test daily P&L; their mean and sd over seeds (ddof 1) and the
  per-seed values (``evaluate.daily_pnl.mean_over_seeds``);
* ``vs_<reference>``: ``evaluate.paired.paired_comparison`` of the algorithm's daily P&L averaged over
  seeds (the P&L one should expect from running the algorithm with an unknown seed) against the
  reference's, paired by session: mean difference, block-bootstrap interval, p-values; the same
  comparison for each seed (``per_seed``); and ``two_level``: the interval of ``evaluate.seeds.difference``,
  which resamples the seeds as well as the sessions (the protocol's comparison, docs/protocol.md), so a
  difference that depends on the seed does not count.

Folds: a fold is a :class:`Fold` (a name and the ``EnvData`` whose train/val/test splits are its session
blocks). :func:`config_folds` gives the config's folds: with ``data.splits.mode: walk_forward`` one per
walk-forward fold (each with its own scaler, ``Prepared.for_fold``), else the one train/val/test split; any
other list plugs in (``run(..., folds=...)``). Test sessions are never used for a choice: training selects
nothing on them and the report only reads them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..agents.algos import ALGOS
from ..agents.policy import policy_from_model
from ..agents.references import REFERENCE_NAMES, reference_policy
from ..agents.sb3 import load_model
from ..config import ExperimentConfig, apply_overrides
from ..env import EnvData, make_env
from ..env.rollout import Policy
from ..evaluate.daily_pnl import mean_over_seeds
from ..evaluate.evaluation import evaluate_policy
from ..evaluate.metrics import json_safe
from ..evaluate.paired import paired_comparison
from ..evaluate.seeds import difference
from .prepare import Prepared, prepare, run_dir
from .train_run import train

PolicyFactory = Callable[[Any], Policy]  # (evaluation env) -> policy
REFERENCES: dict[str, PolicyFactory] = {n: (lambda env, n=n: reference_policy(n, env)) for n in REFERENCE_NAMES}


@dataclass(frozen=True)
class Fold:
    name: str
    env_data: EnvData  # its splits are the fold's (train, val, test) session blocks


def config_folds(prepared: Prepared) -> list[Fold]:
    """The config's folds: every walk-forward fold (``data.splits.mode: walk_forward``), else its one split."""
    if prepared.cfg.data.splits.mode == "walk_forward":
        return [Fold(f"fold{i}", prepared.for_fold(i).env_data) for i in range(prepared.env_data.n_folds)]
    return [Fold("split", prepared.env_data)]


@dataclass
class RunResult:
    algo: str
    seed: int
    fold: str
    timesteps: int
    wall_s: float
    stopped_early: bool
    daily_bps: pd.Series  # test sessions -> net P&L, bps of initial cash


def daily_bps(policy: Policy, env_data: EnvData, cfg: ExperimentConfig) -> pd.Series:
    """Net P&L per test session in bps of the initial cash, indexed by session."""
    _, res = evaluate_policy(policy, env_data, cfg, "test")
    return (res.closing_equity() / res.initial_equity - 1.0) * 1e4


def algo_config(cfg: ExperimentConfig, algo: str, seed: int) -> ExperimentConfig:
    return apply_overrides(cfg, {"agent.algo": algo, "agent.seed": seed})


def run(cfg: ExperimentConfig, algos: Sequence[str] = tuple(ALGOS), seeds: int = 3, *,
        timesteps: int | None = None, data_path: str | Path | None = None, out_dir: str | Path | None = None,
        folds: Sequence[Fold] | None = None, references: Mapping[str, PolicyFactory] | None = None,
        progress: Callable[[RunResult], None] | None = None) -> dict[str, Any]:
    """Train and evaluate ``algos`` x ``seeds`` on ``folds`` (default: the config's split); returns (and
    writes ``agents_experiment.json``) the summary of :func:`summarize`."""
    unknown = [a for a in algos if a not in ALGOS]
    if unknown or not algos:
        raise ValueError(f"algorithms {unknown or algos} not among {', '.join(ALGOS)}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    prepared = prepare(cfg, data_path)
    folds = list(folds) if folds is not None else config_folds(prepared)
    references = dict(references if references is not None else REFERENCES)
    eval_cfg = apply_overrides(cfg, {"market.model": "realistic"})
    out = Path(out_dir) if out_dir else run_dir(cfg, f"{cfg.name}-agents-experiment")
    ref_pnl = {name: pd.concat([daily_bps(make(make_env(eval_cfg, None, split="test", data=f.env_data)), f.env_data,
                                          eval_cfg) for f in folds]) for name, make in references.items()}
    runs: list[RunResult] = []
    for algo in algos:
        for s in range(seeds):
            acfg = algo_config(cfg, algo, cfg.agent.seed + s)
            for fold in folds:
                t0 = time.perf_counter()
                res = train(dataclasses.replace(prepared, env_data=fold.env_data), out / fold.name / f"{algo}-seed{s}",
                            cfg=acfg, total_timesteps=timesteps, checkpoints=False)
                pnl = daily_bps(policy_from_model(load_model(res.model_path)), fold.env_data, eval_cfg)
                runs.append(RunResult(algo, s, fold.name, res.timesteps, time.perf_counter() - t0, res.stopped_early,
                                      pnl))
                if progress:
                    progress(runs[-1])
    summary = summarize(runs, ref_pnl)
    summary["config"] = {"name": cfg.name, "algos": list(algos), "seeds": seeds, "folds": [f.name for f in folds],
                         "timesteps": int(timesteps or cfg.agent.total_timesteps),
                         "symbols": list(prepared.env_data.symbols),
                         "data": str(data_path) if data_path else None, "market_model": "realistic"}
    path = out / "agents_experiment.json"
    summary["path"] = str(path)
    path.write_text(json.dumps(json_safe(summary), indent=2, default=float))
    return summary


def summarize(runs: Sequence[RunResult], references: Mapping[str, pd.Series]) -> dict[str, Any]:
    """Per algorithm: mean daily bps over seeds and paired comparisons with each reference (module docstring)."""
    out: dict[str, Any] = {"algorithms": {}, "references": {}}
    for name, pnl in references.items():
        out["references"][name] = {"mean_daily_bps": float(pnl.mean()), "sessions": int(len(pnl))}
    for algo in dict.fromkeys(r.algo for r in runs):
        by_seed = {}
        for r in runs:
            if r.algo == algo:
                by_seed.setdefault(r.seed, []).append(r.daily_bps)
        seed_pnl = {s: pd.concat(parts) for s, parts in by_seed.items()}
        agg = mean_over_seeds({s: float(p.mean()) for s, p in seed_pnl.items()}, nan="propagate",
                              what=f"{algo} mean daily bps")
        mean_pnl = pd.concat(seed_pnl.values(), axis=1).mean(axis=1)
        entry: dict[str, Any] = {
            "mean_daily_bps": {"mean": agg.mean, "sd": agg.sd, "n_seeds": agg.n,
                               "per_seed": {str(s): float(p.mean()) for s, p in seed_pnl.items()}},
            "timesteps": [r.timesteps for r in runs if r.algo == algo],
            "wall_s": float(sum(r.wall_s for r in runs if r.algo == algo)),
            "stopped_early": sum(r.stopped_early for r in runs if r.algo == algo),
        }
        seeds_x_sessions = pd.concat(seed_pnl.values(), axis=1).to_numpy().T
        for ref, ref_pnl in references.items():
            c = paired_comparison(mean_pnl, ref_pnl, name_a=f"{algo} (mean over seeds)", name_b=ref)
            two = difference(seeds_x_sessions, ref_pnl.reindex(mean_pnl.index).to_numpy()[None, :],
                             name_a=algo, name_b=ref)
            entry[f"vs_{ref}"] = {**c.to_dict(),
                                  "two_level": {"mean_diff": two.estimate, "ci_low": two.ci_low,
                                                "ci_high": two.ci_high, "p_value": two.p_value,
                                                "reason": two.reason},
                                  "per_seed": {str(s): _brief(paired_comparison(p, ref_pnl, name_a=f"{algo} seed {s}",
                                                                                name_b=ref))
                                               for s, p in seed_pnl.items()}}
        out["algorithms"][algo] = entry
    return out


def _brief(c) -> dict[str, float]:
    return {"mean_diff": c.mean_diff, "ci_low": c.ci_low, "ci_high": c.ci_high, "p_value": c.p_value}


def describe(summary: Mapping[str, Any]) -> list[str]:
    """One line per algorithm, for a terminal."""
    lines = []
    for algo, e in summary["algorithms"].items():
        m = e["mean_daily_bps"]
        sd = "" if m["sd"] is None or (isinstance(m["sd"], float) and math.isnan(m["sd"])) else f" +- {m['sd']:.2f}"
        parts = [f"{algo}: {m['mean']:.2f}{sd} bps/day over {m['n_seeds']} seeds"]
        for key, c in e.items():
            if key.startswith("vs_"):
                t = c["two_level"]
                parts.append(f"{key} {c['mean_diff']:+.2f} [{t['ci_low']:+.2f}, {t['ci_high']:+.2f}] "
                             f"p={t['p_value']:.3g}")
        lines.append("; ".join(parts))
    return lines
