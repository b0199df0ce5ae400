"""Paired comparison of two policies on the same sessions: the primary test of "is A better than B".

Input: daily net P&L of A and of B (bps/day), one value per session, on the same sessions
(``daily_pnl.align_pair``). With ``d_t = a_t - b_t`` over ``n`` sessions:

* ``mean_diff = mean(d)`` (bps/day).
* **Interval**: percentile interval at ``level`` of ``mean(d*)`` over block-bootstrap resamples ``d*`` of
  ``d`` (stationary bootstrap, Politis-White automatic block length unless given: ``bootstrap`` module).
  Resampling the difference keeps each day's pairing, and the blocks keep its serial dependence.
* **p_value** (two-sided, bootstrap): the inversion of that percentile interval, ``min(1, 2 min(P*(mean(d*)
  <= 0), P*(mean(d*) >= 0)))`` with the ``(count + 1) / (B + 1)`` correction
  (``bootstrap.interval_p_value``). For a symmetric bootstrap distribution it equals the p-value under the
  centred null ``P*(|mean(d*) - mean(d)| >= |mean(d)|)``; unlike it, it agrees with the interval by
  construction: ``p < 1 - level`` exactly when the interval excludes 0 (up to Monte Carlo granularity).
* **p_value_t**: Student's paired t-test, ``t = mean(d) / (sd(d) / sqrt(n))`` with ``n - 1`` degrees of
  freedom (assumes independent days; reported next to the bootstrap p-value as a cross-check).
* When ``d`` is 0 on every session (e.g. a model that never trades, compared with flat) the comparison is
  exact: ``mean_diff = ci_low = ci_high = 0``, ``p_value = 1`` and ``identical = True``. A constant
  non-zero ``d`` has an interval of one point and an undefined t-test (NaN). Fewer than 2 sessions: all NaN,
  ``reason = "fewer than 2 sessions"``.

Decisions in words (``verdict``) use the interval: above 0 -> better, below 0 -> worse, else not
distinguishable at ``level``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._distributions import student_t_sf
from .bootstrap import (DEFAULT_LEVEL, DEFAULT_RESAMPLES, bootstrap_distribution, interval_p_value,
                        percentile_interval)
from .daily_pnl import align_pair, finite_values
from .sharpe import TOO_SHORT


@dataclass(frozen=True)
class PairedComparison:
    name_a: str
    name_b: str
    mean_diff: float  # mean of a - b, input units per day (bps/day)
    ci_low: float
    ci_high: float
    p_value: float  # bootstrap, inverting the percentile interval (module docstring)
    p_value_t: float  # paired Student t-test, n - 1 df
    n: int  # paired sessions
    level: float
    method: str  # how the interval and p-value were obtained, in words
    block_length: float
    n_resamples: int
    seed: int | None
    identical: bool = False  # a - b is 0 on every session
    reason: str = ""  # why the comparison is undefined ('' when it is defined)

    @property
    def alpha(self) -> float:
        return 1.0 - self.level

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_t_test(d: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test on differences ``d``; NaN when ``sd(d) = 0`` or ``n < 2``."""
    n = len(d)
    if n < 2:
        return math.nan
    sd = float(np.std(d, ddof=1))
    if sd == 0.0 or d.max() == d.min():
        return math.nan
    t = float(np.mean(d)) / (sd / math.sqrt(n))
    return min(1.0, 2.0 * student_t_sf(abs(t), n - 1))


def _row_means(m: np.ndarray) -> np.ndarray:
    return np.asarray(m.mean(axis=1))


def paired_comparison(a: Any, b: Any, *, name_a: str = "model", name_b: str = "reference",
                      level: float = DEFAULT_LEVEL, n_resamples: int = DEFAULT_RESAMPLES,
                      block_length: float | None = None, method: str = "stationary",
                      seed: int | None = 0) -> PairedComparison:
    """Compare daily P&L ``a`` with ``b`` on the same sessions (module docstring)."""
    finite_values(a, name_a)
    finite_values(b, name_b)
    av, bv = align_pair(a, b, names=(name_a, name_b))
    d = av - bv
    n = len(d)
    if n < 2:
        return PairedComparison(name_a, name_b, math.nan, math.nan, math.nan, math.nan, math.nan, n, level,
                                "none", math.nan, 0, seed, False, TOO_SHORT)
    mean = float(d.mean())
    if d.max() == d.min():  # constant difference: the bootstrap can only return it
        identical = mean == 0.0
        return PairedComparison(name_a, name_b, mean, mean, mean, 1.0 if identical else 2.0 / (n_resamples + 1),
                                math.nan, n, level, "exact (constant daily difference)", math.nan, n_resamples,
                                seed, identical, "")
    draws, bl = bootstrap_distribution(d, _row_means, n_resamples=n_resamples, method=method,
                                       block_length=block_length, seed=seed)
    lo, hi = percentile_interval(draws, level)
    how = (f"{method} bootstrap of the daily difference, mean block {bl:.2g} days, {n_resamples} resamples, "
           "percentile interval; p-value by inverting it; t-test p-value alongside")
    return PairedComparison(name_a, name_b, mean, lo, hi, interval_p_value(draws), paired_t_test(d), n, level,
                            how, bl, n_resamples, seed, False, "")
