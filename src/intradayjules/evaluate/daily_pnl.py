"""The daily P&L samples statistics are computed on: partial sessions, pairing, aggregation over seeds.

* **Partial sessions** (a session the rollout could not run to its close: missing bars, a data hole, an
  early close) are excluded from statistics by default and **counted**: ``exclude_partial`` returns the
  kept series together with how many and which sessions were dropped, so a report can say so.
* **Pairing**: two policies are compared on the same sessions only. ``align_pair`` requires the two series
  to cover exactly the same sessions (it raises naming the first session missing on either side) and returns
  them in the first series' order; plain arrays must have equal length.
* **Over seeds**: ``mean_over_seeds`` never drops a NaN silently. With ``nan="raise"`` (default) a NaN
  raises, naming the seeds and their reasons; with ``nan="propagate"`` the mean is NaN and ``reason`` says
  which seeds were undefined and why. (A flat policy's Sharpe is NaN, "no variance": ``sharpe`` module.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def finite_values(x: Any, name: str = "daily P&L") -> np.ndarray:
    """``x`` as a 1-d float array; raises naming the first non-finite value's position and session."""
    v = np.asarray(x, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(v))
    if len(bad):
        i = int(bad[0])
        label = x.index[i] if isinstance(x, pd.Series) else i
        raise ValueError(f"{name}: value at position {i} (session {label!r}) is {v[i]}: statistics need finite "
                         "values (exclude the session or fix the rollout)")
    return v


@dataclass(frozen=True)
class PnLSample:
    values: pd.Series  # daily net P&L of the full sessions, indexed by session
    n_excluded: int
    excluded: tuple[Any, ...] = ()


def exclude_partial(pnl: pd.Series, partial: pd.Series | Iterable[Any] | None = None) -> PnLSample:
    """Drop the partial sessions from daily P&L ``pnl`` and count them.

    ``partial`` is a boolean Series indexed like ``pnl`` (True = partial) or a collection of session labels.
    Labels in ``partial`` that ``pnl`` does not have raise (a mismatch means the inputs are misaligned).
    """
    if partial is None:
        return PnLSample(pnl, 0, ())
    if isinstance(partial, pd.Series) and partial.dtype == bool:
        missing = partial.index.difference(pnl.index)
        if len(missing):
            raise ValueError(f"partial-session flags name session {missing[0]!r}, which the daily P&L lacks")
        flags = partial.reindex(pnl.index)
        if flags.isna().any():
            raise ValueError(f"no partial-session flag for session {flags.index[flags.isna()][0]!r}")
        mask = flags.to_numpy(dtype=bool)
    else:
        labels = list(partial)
        unknown = [s for s in labels if s not in pnl.index]
        if unknown:
            raise ValueError(f"partial session {unknown[0]!r} is not in the daily P&L")
        mask = pnl.index.isin(labels)
    return PnLSample(pnl[~mask], int(mask.sum()), tuple(pnl.index[mask]))


def align_pair(a: Any, b: Any, *, names: tuple[str, str] = ("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    """The two daily P&L series on the same sessions, as arrays in ``a``'s order (module docstring)."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        for x, y, nx, ny in ((a, b, names[0], names[1]), (b, a, names[1], names[0])):
            if x.index.has_duplicates:
                raise ValueError(f"{nx}: session {x.index[x.index.duplicated()][0]!r} appears twice")
            missing = x.index.difference(y.index)
            if len(missing):
                raise ValueError(f"paired comparison {names[0]} vs {names[1]}: session {missing[0]!r} is in "
                                 f"{nx} but not in {ny} ({len(missing)} such sessions): compare on the same "
                                 "sessions")
        return a.to_numpy(dtype=float), b.reindex(a.index).to_numpy(dtype=float)
    av, bv = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(av) != len(bv):
        raise ValueError(f"paired comparison {names[0]} vs {names[1]}: {len(av)} vs {len(bv)} sessions")
    return av, bv


@dataclass(frozen=True)
class SeedAggregate:
    mean: float
    sd: float  # across seeds, ddof=1 (NaN with one seed)
    n: int  # seeds given
    undefined: dict[Any, str] = field(default_factory=dict)  # seed -> reason, for NaN values
    reason: str = ""

    def describe(self, fmt: str = ".3g") -> str:
        if self.reason:
            return f"n/a ({self.reason})"
        sd = "" if math.isnan(self.sd) else f" +- {self.sd:{fmt}}"
        return f"{self.mean:{fmt}}{sd} over {self.n} seeds"


def mean_over_seeds(values: Mapping[Any, float], *, reasons: Mapping[Any, str] | None = None,
                    nan: str = "raise", what: str = "value") -> SeedAggregate:
    """Mean and sd of ``values`` (seed -> number) that never drops a NaN silently (module docstring)."""
    if nan not in ("raise", "propagate"):
        raise ValueError(f"nan must be 'raise' or 'propagate' (got {nan!r})")
    if not values:
        raise ValueError(f"{what}: no seeds to aggregate")
    reasons = dict(reasons or {})
    undefined = {s: reasons.get(s, "NaN") for s, v in values.items() if v is None or math.isnan(float(v))}
    if undefined:
        listed = ", ".join(f"seed {s}: {r}" for s, r in undefined.items())
        msg = f"{what} undefined for {len(undefined)} of {len(values)} seeds ({listed})"
        if nan == "raise":
            raise ValueError(msg + "; pass nan='propagate' to report it instead")
        return SeedAggregate(math.nan, math.nan, len(values), undefined, msg)
    v = np.array([float(x) for x in values.values()])
    sd = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    return SeedAggregate(float(v.mean()), sd, len(v), {}, "")
