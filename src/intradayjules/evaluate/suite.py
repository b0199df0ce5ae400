"""Evaluate a model and the reference policies together: same sessions, symbols and market model.

``evaluate_suite(policies, data, cfg, split, references=...)`` rolls every policy given (the model, and
e.g. a baseline model) and every reference named (``agents.references``: default all of them) over every
session of ``split`` with ``evaluation.evaluate_policy`` (``cfg``'s market model, normally ``realistic``), and
returns a :class:`Suite`: per policy the statistics dict, the rollout, the daily and trades tables
(``records``), and the :class:`~.assessment.Assessment` of the subject (the first policy) against every
other one. ``Suite.write(directory)`` writes ``<directory>/<policy>/{daily,trades}.parquet``;
``Suite.to_json()`` holds every policy's statistics, the comparisons, Sharpe estimates and the verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..agents.references import DESCRIPTIONS, reference_policies
from ..config import ExperimentConfig
from ..env import EnvData, make_env
from ..env.rollout import Policy, RolloutResult
from .assessment import Assessment, assess
from .evaluation import evaluate_policy
from .metrics import json_safe
from .records import daily_table, trades_table, write_records


@dataclass
class Suite:
    subject: str
    stats: dict[str, dict[str, Any]]
    results: dict[str, RolloutResult]
    daily: dict[str, pd.DataFrame]
    trades: dict[str, pd.DataFrame]
    assessment: Assessment
    descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.assessment.verdict

    def write(self, directory: str | Path) -> dict[str, dict[str, Path]]:
        """``directory/<policy>/daily.parquet`` and ``trades.parquet`` for every policy."""
        return {name: write_records(self.daily[name], self.trades[name], Path(directory) / name)
                for name in self.daily}

    def to_json(self) -> dict[str, Any]:
        a = self.assessment.to_dict()
        return json_safe({"subject": self.subject, "verdict": self.verdict,
                          "full_sessions": a["sessions"], "excluded_partial_sessions": a["excluded"],
                          "policies": {n: {**self.stats[n], "description": self.descriptions.get(n, "")}
                                       for n in self.stats},
                          "comparisons": a["comparisons"], "sharpes": a["sharpes"], "ranking": a["ranking"],
                          "dsr": a["dsr"], "pbo": {k: v for k, v in (a["pbo"] or {}).items()
                                                   if k not in ("logits", "is_perf", "oos_perf")} or None,
                          "selection_note": a["selection_note"]})


def evaluate_suite(policies: Mapping[str, Policy], data: EnvData, cfg: ExperimentConfig, split: str = "test", *,
                   references: Iterable[str] = (), trial_pnl: pd.DataFrame | None = None, selected: Any = None,
                   descriptions: Mapping[str, str] | None = None, seed: int | None = None,
                   n_resamples: int | None = None) -> Suite:
    """Roll the ``policies`` (the first is the subject) and the named ``references`` (module docstring)."""
    if not policies:
        raise ValueError("evaluate_suite needs at least one policy (the subject)")
    seed = cfg.seed if seed is None else seed
    env = make_env(cfg, None, split=split, data=data)  # the layout the references are built for
    refs = reference_policies(references, env, seed=seed)
    clash = sorted(set(refs) & set(policies))
    if clash:
        raise ValueError(f"policy name {clash[0]!r} is also a reference: rename it")
    subject = next(iter(policies))
    # the subject, then the references, then the other policies given (the order of the comparisons)
    every = {subject: policies[subject], **refs, **{k: v for k, v in policies.items() if k != subject}}
    stats, results, daily, trades = {}, {}, {}, {}
    for name, policy in every.items():
        stats[name], results[name] = evaluate_policy(policy, data, cfg, split)
        daily[name] = daily_table(results[name])
        trades[name] = trades_table(results[name])
    kw = {"n_resamples": n_resamples} if n_resamples is not None else {}
    assessment = assess(daily, subject=subject, trial_pnl=trial_pnl, selected=selected, seed=seed, **kw)
    desc = {**{n: DESCRIPTIONS[n] for n in refs}, **dict(descriptions or {})}
    return Suite(subject, stats, results, daily, trades, assessment, desc)
