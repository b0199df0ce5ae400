"""Is the model any good? Its daily P&L against every reference, and its selection against luck.

``assess(daily, subject="model", trial_pnl=...)`` takes one daily table per policy (``records.daily_table``:
the same sessions for every policy) and returns an :class:`Assessment`:

* **Sessions**: partial sessions (``partial`` in the daily table; the same for every policy, since they are a
  property of the data) are excluded from every statistic and counted (``daily_pnl.exclude_partial``).
* **Comparisons**: the subject against every other policy on paired daily net P&L (bps):
  ``paired.paired_comparison`` (mean difference, stationary-bootstrap CI, bootstrap and t-test p-values).
* **Ranking**: policies ordered by mean daily net P&L on the same sessions. The difference of two means is
  the paired mean difference, so the order agrees with the comparisons; it never orders by Sharpe ratio
  (two negative Sharpe ratios say nothing about which policy lost less).
* **Sharpe**: ``sharpe.sharpe_estimate`` per policy (NaN with a reason for a flat policy: one convention).
* **Selection**: with the tuning trials' per-session validation P&L (sessions x trials, ``trial_pnl``), the
  deflated Sharpe ratio of the ``selected`` trial (``overfitting.deflated_sharpe_from_trials``) and PBO by
  CSCV (``overfitting.pbo_cscv`` with ``n_blocks = min(16, T rounded down to even)``, the mean-P&L
  metric). When they cannot be computed (no tuning, one trial, fewer than two sessions) ``selection_note``
  says why and the verdict says "selection bias not assessed".
* **Verdict**: ``verdict.verdict`` over the comparisons (the references first, in the order given) and the
  selection.

Resampling is seeded (``seed``), so the same inputs give the same numbers. ``to_dict``/``from_dict`` round-trip
through JSON (NaN as ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES
from .daily_pnl import exclude_partial
from .metrics import json_safe
from .overfitting import DeflatedSharpe, PBOResult, deflated_sharpe_from_trials, pbo_cscv
from .paired import PairedComparison, paired_comparison
from .records import net_pnl, partial_flags
from .sharpe import SharpeEstimate, sharpe_estimate
from .verdict import verdict as verdict_sentence

MAX_BLOCKS = 16


@dataclass
class Assessment:
    subject: str
    sessions: list[str]  # full sessions every statistic uses
    excluded: list[str]  # partial sessions left out
    pnl: dict[str, pd.Series]  # net bps per full session, per policy
    comparisons: dict[str, PairedComparison]  # reference name -> subject vs reference
    sharpes: dict[str, SharpeEstimate]
    ranking: list[dict[str, Any]]  # policies by mean daily net P&L, best first
    dsr: DeflatedSharpe | None = None
    pbo: PBOResult | None = None
    selection_note: str = ""
    verdict: str = ""
    n_trials: int = 0
    trial_sessions: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_excluded(self) -> int:
        return len(self.excluded)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "subject": self.subject, "sessions": self.sessions, "excluded": self.excluded,
            "pnl": {k: [float(x) for x in v.to_numpy()] for k, v in self.pnl.items()},
            "comparisons": {k: c.to_dict() for k, c in self.comparisons.items()},
            "sharpes": {k: s.to_dict() for k, s in self.sharpes.items()},
            "ranking": self.ranking, "selection_note": self.selection_note, "verdict": self.verdict,
            "n_trials": self.n_trials, "trial_sessions": self.trial_sessions, "extras": self.extras,
            "dsr": self.dsr.to_dict() if self.dsr is not None else None,
            "pbo": ({**self.pbo.to_dict(), "logits": self.pbo.logits.tolist(), "is_perf": self.pbo.is_perf.tolist(),
                     "oos_perf": self.pbo.oos_perf.tolist()} if self.pbo is not None else None),
        }
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Assessment":
        idx = pd.DatetimeIndex(pd.to_datetime(d["sessions"]))
        pnl = {k: pd.Series(_floats(v), index=idx, name=k) for k, v in d["pnl"].items()}
        dsr = _build(DeflatedSharpe, d["dsr"]) if d.get("dsr") else None
        pbo = None
        if d.get("pbo"):
            p = dict(d["pbo"])
            for k in ("logits", "is_perf", "oos_perf"):
                p[k] = np.asarray(_floats(p.get(k) or []), dtype=float)
            pbo = _build(PBOResult, p)
        return cls(d["subject"], list(d["sessions"]), list(d["excluded"]), pnl,
                   {k: _build(PairedComparison, c) for k, c in d["comparisons"].items()},
                   {k: _build(SharpeEstimate, s) for k, s in d["sharpes"].items()}, list(d["ranking"]), dsr, pbo,
                   d.get("selection_note", ""), d.get("verdict", ""), int(d.get("n_trials") or 0),
                   int(d.get("trial_sessions") or 0), dict(d.get("extras") or {}))


def _floats(xs) -> list[float]:
    return [math.nan if x is None else float(x) for x in xs]


def _build(klass, d: Mapping[str, Any]):
    """A frozen dataclass from its ``to_dict`` (None -> NaN for float fields, extra keys ignored)."""
    kw = {}
    for f in fields(klass):
        if f.name not in d:
            continue
        v = d[f.name]
        if v is None and f.type in ("float", float):
            v = math.nan
        kw[f.name] = v
    return klass(**kw)


def n_blocks_for(t: int) -> int:
    """CSCV blocks for ``t`` sessions: 16, or ``t`` rounded down to even when fewer (0: too few)."""
    n = min(MAX_BLOCKS, t - t % 2)
    return n if n >= 2 else 0


def selection_stats(trial_pnl: pd.DataFrame | None, selected: Any = None) -> tuple[DeflatedSharpe | None,
                                                                                 PBOResult | None, str]:
    """DSR and PBO of a sessions x trials validation P&L matrix, or the reason they are missing."""
    if trial_pnl is None or trial_pnl.shape[1] == 0:
        return None, None, "no tuning trials with validation P&L"
    t, n = trial_pnl.shape
    if t < 2:
        return None, None, f"the trials have {t} validation session(s): DSR and PBO need at least 2"
    if selected is not None and selected not in trial_pnl.columns:
        selected = None
    dsr = deflated_sharpe_from_trials(trial_pnl, selected)
    notes = []
    pbo = None
    if n < 2:
        notes.append("PBO needs at least 2 trials (1 with validation P&L)")
    else:
        pbo = pbo_cscv(trial_pnl, n_blocks_for(t), metric="mean")
    return dsr, pbo, "; ".join(notes)


def assess(daily: Mapping[str, pd.DataFrame], *, subject: str = "model", trial_pnl: pd.DataFrame | None = None,
           selected: Any = None, level: float = DEFAULT_LEVEL, n_resamples: int = DEFAULT_RESAMPLES,
           seed: int = 0, exclude_partial_sessions: bool = True) -> Assessment:
    """The statistics of ``subject`` against every other policy in ``daily`` (module docstring)."""
    if subject not in daily:
        raise ValueError(f"no daily P&L for {subject!r} (policies: {', '.join(daily)})")
    flags = partial_flags(daily[subject]) if exclude_partial_sessions else None
    pnl: dict[str, pd.Series] = {}
    excluded: list = []
    for name, table in daily.items():
        series = net_pnl(table)
        if flags is not None:
            other = partial_flags(table)
            if not other.index.equals(flags.index) or not (other.to_numpy() == flags.reindex(other.index).to_numpy()).all():
                raise ValueError(f"{name}: its sessions or partial-session flags differ from {subject}'s: "
                                 "policies must be evaluated on the same sessions")
            sample = exclude_partial(series, flags)
            excluded = list(sample.excluded)
            series = sample.values
        pnl[name] = series
    base = pnl[subject]
    comparisons = {name: paired_comparison(base, s, name_a=subject, name_b=name, level=level,
                                           n_resamples=n_resamples, seed=seed)
                   for name, s in pnl.items() if name != subject}
    sharpes = {name: sharpe_estimate(s, level=level, n_resamples=n_resamples, seed=seed) for name, s in pnl.items()}
    ranking = sorted(({"policy": name, "mean_bps": float(s.mean()) if len(s) else math.nan,
                       "total_bps": float(s.sum()), "sessions": int(len(s))} for name, s in pnl.items()),
                     key=lambda r: -r["mean_bps"] if math.isfinite(r["mean_bps"]) else math.inf)
    dsr, pbo, note = selection_stats(trial_pnl, selected)
    text = verdict_sentence(comparisons, dsr=dsr, pbo=pbo, subject=subject.capitalize())
    if note and dsr is None and trial_pnl is not None:
        text = text[:-1] + f" ({note})."
    n_trials = int(trial_pnl.shape[1]) if trial_pnl is not None else 0
    return Assessment(subject, [d.date().isoformat() for d in base.index], [pd.Timestamp(d).date().isoformat()
                      for d in excluded], pnl, comparisons, sharpes, ranking, dsr, pbo, note, text, n_trials,
                      int(trial_pnl.shape[0]) if trial_pnl is not None else 0)
