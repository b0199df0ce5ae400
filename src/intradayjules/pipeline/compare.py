"""Arms x seeds on the same sessions: what every comparison the system prints is made of.

* ``daily_record(res)``: one row per session of a rollout: net P&L in bps of initial cash (``pnl``), filled
  notional (all and illiquid; fills and the end-of-session flatten), ordered notional (all and illiquid:
  what the agent asked for), and fills (``trades``).
* ``evaluate_daily(policy, env_data, cfg, split)``: the evaluation statistics and that daily record, under
  ``cfg``'s market model (callers pass the realistic one).
* ``train_arm(prepared, cfg, arm, n_seeds, out, ...)``: trains an arm for seeds ``agent.seed + 0..n-1``
  (``pipeline.train_run.train``), evaluates each final model on ``split``; a ``RunRecord`` per seed.
* ``reference_records(policies, env_data, cfg, split)``: the same for untrained policies (any
  ``name -> policy(obs, info)``; ``default_references`` gives those of ``agents.references``).
* ``comparison_table(arms, references)``: per arm, seeds' mean daily P&L (mean +- sd and per seed), and
  each arm against each reference and against each other arm by ``evaluate.seeds.difference``
  (two-level bootstrap CI of the mean daily P&L difference, paired by session).

A comparison counts only when its interval says so: ``Contrast.excludes_zero``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..agents.dqn import load_model
from ..agents.sb3 import configure_torch, warm_training
from ..agents.policy import policy_from_model
from ..config import ExperimentConfig
from ..agents.references import REFERENCE_NAMES, reference_policies
from ..env import EnvData, make_env
from ..env.rollout import Policy, RolloutResult
from ..evaluate.evaluation import evaluate_policy
from ..evaluate.seeds import Contrast, arm_summary, difference
from .parallel import map_forked
from .prepare import Prepared
from .train_run import train

DAILY_COLUMNS = ["pnl", "notional", "notional_illiquid", "ordered", "ordered_illiquid", "trades"]


def daily_record(res: RolloutResult) -> pd.DataFrame:
    """Per session (in rollout order): ``pnl`` (bps of initial cash), filled and ordered notional (all and
    illiquid, USD) and the number of fills."""
    closes = res.closing_equity()
    out = pd.DataFrame(index=closes.index)
    out["pnl"] = 1e4 * (closes.to_numpy() / res.initial_equity - 1.0)
    for name, frame in (("notional", res.trades), ("ordered", res.orders)):
        if len(frame):
            n = frame["qty"].abs() * frame["price"]
            out[name] = n.groupby(frame["session"]).sum().reindex(out.index, fill_value=0.0)
            ill = n.where(frame["tier"] == "illiquid", 0.0)
            out[f"{name}_illiquid"] = ill.groupby(frame["session"]).sum().reindex(out.index, fill_value=0.0)
        else:
            out[name] = 0.0
            out[f"{name}_illiquid"] = 0.0
    out["trades"] = (res.trades.groupby("session").size().reindex(out.index, fill_value=0)
                     if len(res.trades) else 0)
    return out[DAILY_COLUMNS].astype(float)


def evaluate_daily(policy: Policy, env_data: EnvData, cfg: ExperimentConfig, split: str = "test"
                   ) -> tuple[dict[str, Any], pd.DataFrame]:
    stats, res = evaluate_policy(policy, env_data, cfg, split)
    return stats, daily_record(res)


def realistic(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with the realistic market model (what every evaluation uses, whatever trained the model)."""
    return cfg.model_copy(update={"market": cfg.market.model_copy(update={"model": "realistic"})})


@dataclass
class RunRecord:
    arm: str
    seed: int
    daily: pd.DataFrame  # daily_record of the evaluation split
    stats: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None
    timesteps: int = 0
    stopped_early: bool = False

    @property
    def mean_pnl(self) -> float:
        return float(self.daily["pnl"].mean())

    def summary(self) -> dict[str, Any]:
        d = self.daily
        return {"arm": self.arm, "seed": self.seed, "mean_daily_pnl_bps": self.mean_pnl,
                "illiquid_trade_share": _share(d["notional_illiquid"].sum(), d["notional"].sum()),
                "illiquid_order_share": _share(d["ordered_illiquid"].sum(), d["ordered"].sum()),
                "trades": float(d["trades"].sum()), "sessions": len(d), "timesteps": self.timesteps,
                "stopped_early": self.stopped_early, "model": self.model_path,
                "reused_from": self.stats.get("reused_from")}


def _share(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def train_arm(prepared: Prepared, cfg: ExperimentConfig, arm: str, n_seeds: int, out: str | Path, *,
              split: str = "test", eval_cfg: ExperimentConfig | None = None, timesteps: int | None = None,
              progress: Callable[[RunRecord], None] | None = None, first: Any = None) -> list[RunRecord]:
    """Train ``arm`` (``cfg``) for seeds ``cfg.agent.seed + 0 .. n_seeds - 1`` into ``out/<arm>-seed<k>``
    and evaluate each final model on ``split`` under ``eval_cfg`` (default: ``cfg`` with realistic costs).
    ``first``: an already trained seed-0 ``TrainResult`` (e.g. the main job's tracked model). The seeds
    run in ``cfg.agent.seed_workers`` forked processes (``pipeline.parallel``); ``progress`` sees each
    record in seed order."""
    eval_cfg = eval_cfg or realistic(cfg)
    # this process's torch threads as the trainings' before it runs a network itself: forked after torch's
    # default thread pool has run here, the seeds ran many times slower (pipeline/main_job.py does the same)
    configure_torch(cfg.agent.torch_threads)

    def one(k: int) -> RunRecord:
        seed_cfg = cfg.model_copy(update={"agent": cfg.agent.model_copy(update={"seed": cfg.agent.seed + k})})
        res = first if (k == 0 and first is not None) else train(
            prepared, Path(out) / f"{arm}-seed{k}", cfg=seed_cfg, total_timesteps=timesteps, checkpoints=False)
        stats, daily = evaluate_daily(policy_from_model(load_model(res.model_path)), prepared.env_data, eval_cfg,
                                      split)
        return RunRecord(arm, k, daily, stats, str(res.model_path), int(res.timesteps), bool(res.stopped_early))

    return map_forked(one, range(n_seeds), cfg.agent.seed_workers, on_result=progress,
                      before_fork=lambda: warm_training(cfg, prepared.env_data))


def default_references(env_data: EnvData, cfg: ExperimentConfig, split: str = "test",
                       names=REFERENCE_NAMES) -> dict[str, Policy]:
    """The reference policies (``agents.references``: every one by default) built for ``split``'s env."""
    return reference_policies(names, make_env(cfg, None, split=split, data=env_data), seed=cfg.seed)


def reference_records(policies: Mapping[str, Policy], env_data: EnvData, cfg: ExperimentConfig,
                      split: str = "test") -> dict[str, RunRecord]:
    """Each policy rolled over ``split`` under ``cfg``'s market model (no training, one 'seed')."""
    out = {}
    for name, policy in policies.items():
        stats, daily = evaluate_daily(policy, env_data, cfg, split)
        out[name] = RunRecord(name, 0, daily, stats)
    return out


def pnl_matrix(records: list[RunRecord], column: str = "pnl") -> np.ndarray:
    """``seeds x sessions`` of one daily column; every record must cover the same sessions in one order."""
    first = records[0].daily.index
    for r in records[1:]:
        if not r.daily.index.equals(first):
            raise ValueError(f"{r.arm} seed {r.seed}: evaluated on other sessions than {records[0].arm} seed "
                             f"{records[0].seed}; comparisons need the same sessions")
    return np.vstack([r.daily[column].to_numpy(dtype=float) for r in records])


def concat_folds(per_fold: list[list[RunRecord]]) -> list[RunRecord]:
    """One record per seed whose daily table is the folds' test blocks in time order (the OOS record)."""
    n = {len(f) for f in per_fold}
    if len(n) != 1:
        raise ValueError(f"every fold needs the same seeds (got {sorted(n)})")
    out = []
    for k in range(n.pop()):
        parts = [f[k] for f in per_fold]
        out.append(RunRecord(parts[0].arm, parts[0].seed, pd.concat([p.daily for p in parts]),
                             {"folds": [p.stats for p in parts]},
                             parts[-1].model_path, sum(p.timesteps for p in parts),
                             any(p.stopped_early for p in parts)))
    return out


def comparison_table(arms: Mapping[str, list[RunRecord]], references: Mapping[str, RunRecord] | None = None,
                     *, pairs: list[tuple[str, str]] | None = None, n_resamples: int = 10_000,
                     seed: int = 0) -> dict[str, Any]:
    """Per arm: ``summary`` (mean +- sd of the seeds' mean daily P&L, per-seed values) and per-seed
    records; ``contrasts``: each arm minus each reference, and each pair in ``pairs`` (default: every
    ordered pair of arms, first minus second), as ``Contrast`` dicts (two-level bootstrap CIs)."""
    references = references or {}
    mats = {a: pnl_matrix(rs) for a, rs in arms.items()}
    refs = {n: pnl_matrix([r]) for n, r in references.items()}
    table: dict[str, Any] = {"arms": {}, "references": {}, "contrasts": []}
    for a, rs in arms.items():
        s = arm_summary(mats[a])
        table["arms"][a] = {"mean": s.mean, "sd": s.sd, "per_seed": list(s.per_seed),
                            "runs": [r.summary() for r in rs]}
    for n, r in references.items():
        table["references"][n] = r.summary()
    names = list(arms)
    pairs = pairs if pairs is not None else [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
    todo = [(a, n, mats[a], refs[n]) for a in arms for n in refs] + [(x, y, mats[x], mats[y]) for x, y in pairs]
    for x, y, mx, my in todo:
        c = difference(mx, my, name_a=x, name_b=y, n_resamples=n_resamples, seed=seed)
        table["contrasts"].append(contrast_row(x, y, c))
    return table


def contrast_row(a: str, b: str, c: Contrast) -> dict[str, Any]:
    return {"a": a, "b": b, "mean_diff_bps": c.estimate, "ci_low": c.ci_low, "ci_high": c.ci_high,
            "p_value": c.p_value, "level": c.level, "n_sessions": c.n_sessions, "n_seeds": c.n_seeds,
            "block_length": c.block_length, "method": c.method, "reason": c.reason,
            "verdict": verdict_word(c)}


def verdict_word(c: Contrast) -> str:
    if c.reason or math.isnan(c.ci_low):
        return "undefined"
    if c.ci_low > 0:
        return "better"
    if c.ci_high < 0:
        return "worse"
    return "not distinguishable"
