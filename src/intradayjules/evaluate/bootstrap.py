"""Block bootstraps for dependent daily series: resample indices, the automatic block length, intervals.

Daily P&L is weakly dependent (volatility clusters, regimes), so resampling single days understates the
variance of a mean. Both bootstraps below resample whole blocks of consecutive sessions, wrapping around the
end of the sample (circularly), so every day is equally likely to be drawn:

* **Stationary bootstrap** (Politis and Romano, 1994): a resample starts at a uniform random day; each next
  index is the following day (wrapping) with probability ``1 - p`` or a fresh uniform day with probability
  ``p = 1 / block_length``. Block lengths are geometric with mean ``block_length`` (may be fractional).
* **Circular block bootstrap** (Politis and Romano, 1992): ``ceil(n / L)`` blocks of exactly ``L =
  round(block_length)`` consecutive days (wrapping), from uniform random starts, cut to ``n``.

**Block length default** (``block_length=None``): the automatic choice of Politis and White (2004) with the
correction of Patton, Politis and White (2009) (``optimal_block_length``), floored at 1 day and capped at
``min(3 sqrt(n), n / 3)``. With ``rho_k`` the sample autocorrelations, ``m`` is the first lag that starts a
run of ``K_n = max(5, ceil(log10 n))`` lags all inside ``+-2 sqrt(log10(n) / n)`` (``m_max = ceil(sqrt n) +
K_n`` when there is none), ``M = min(2 max(m, 1), m_max)``, ``lambda(s) = 1`` for ``|s| <= 1/2`` and ``2(1 -
|s|)`` up to 1 (flat-top window), ``G = sum_{|k|<=M} lambda(k/M) |k| R(k)``, ``g0 = sum_{|k|<=M} lambda(k/M)
R(k)`` with ``R(k)`` the autocovariances (divisor ``n``), and ``b_SB = (2 G^2 / (2 g0^2))^(1/3) n^(1/3)``,
``b_CB = (2 G^2 / ((4/3) g0^2))^(1/3) n^(1/3)``. This is the convention of Patton's reference code and R's
``np::b.star`` (standard sample autocorrelations). ``arch.bootstrap.optimal_block_length`` follows it too but
normalises each autocorrelation by partial sums, so where one sits on the band it can pick another ``m``;
the two agree exactly on the large majority of series (tested).

**Intervals** are percentile intervals of the resampled statistic: ``[q_{(1-level)/2}, q_{(1+level)/2}]``.

Every function takes a seed or a ``numpy.random.Generator``; the same seed gives the same resamples.
Resamples are drawn as ``(n_resamples, n)`` index matrices, in chunks of at most ``CHUNK_ELEMENTS`` entries
so memory stays bounded for long samples (10,000 resamples of 250 days: one 2.5 M-entry chunk).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 10_000
DEFAULT_LEVEL = 0.95
CHUNK_ELEMENTS = 4_000_000
METHODS = ("stationary", "circular")

SeedLike = int | np.random.Generator | None


def make_rng(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ------------------------------------------------------------------------------------ indices
def stationary_indices(n: int, n_resamples: int, block_length: float, rng: SeedLike = 0) -> np.ndarray:
    """``(n_resamples, n)`` int indices of the stationary bootstrap with mean block length ``block_length``."""
    _check_n(n, block_length)
    rng = make_rng(rng)
    p = 1.0 / float(block_length)
    starts = rng.integers(0, n, size=(n_resamples, n))
    new_block = rng.random((n_resamples, n)) < p
    new_block[:, 0] = True
    pos = np.arange(n)
    last = np.maximum.accumulate(np.where(new_block, pos, 0), axis=1)  # where the current block began
    return (np.take_along_axis(starts, last, axis=1) + (pos - last)) % n


def circular_block_indices(n: int, n_resamples: int, block_length: float, rng: SeedLike = 0) -> np.ndarray:
    """``(n_resamples, n)`` int indices of the circular block bootstrap, blocks of ``round(block_length)``."""
    _check_n(n, block_length)
    rng = make_rng(rng)
    size = max(1, int(round(float(block_length))))
    n_blocks = -(-n // size)
    starts = rng.integers(0, n, size=(n_resamples, n_blocks))
    pos = np.arange(n)
    return (starts[:, pos // size] + pos % size) % n


def _check_n(n: int, block_length: float) -> None:
    if n < 1:
        raise ValueError(f"bootstrap needs at least one observation (got n={n})")
    if not (math.isfinite(block_length) and block_length >= 1.0):
        raise ValueError(f"block_length must be a finite number >= 1 (got {block_length})")


def resample_chunks(n: int, n_resamples: int = DEFAULT_RESAMPLES, *, method: str = "stationary",
                    block_length: float = 1.0, seed: SeedLike = 0) -> Iterator[np.ndarray]:
    """Index matrices covering ``n_resamples`` resamples, at most ``CHUNK_ELEMENTS`` entries each."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} (got {method!r})")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1 (got {n_resamples})")
    rng = make_rng(seed)
    draw = stationary_indices if method == "stationary" else circular_block_indices
    per_chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    done = 0
    while done < n_resamples:
        k = min(per_chunk, n_resamples - done)
        yield draw(n, k, block_length, rng)
        done += k


# ------------------------------------------------------------------------------ block length
@dataclass(frozen=True)
class BlockLength:
    stationary: float
    circular: float


def optimal_block_length(x: np.ndarray) -> BlockLength:
    """Politis-White (2004) / Patton-Politis-White (2009) block lengths (module docstring), unclipped
    below; ``BlockLength(1, 1)`` for a series with no variance or fewer than 4 observations."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    eps = x - x.mean() if n else x
    if n < 4 or not np.any(eps):
        return BlockLength(1.0, 1.0)
    kn = max(5, math.ceil(math.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + kn
    b_max = math.ceil(min(3.0 * math.sqrt(n), n / 3.0))
    lags = min(m_max, n - 1)
    acv = np.array([eps[k:] @ eps[: n - k] for k in range(lags + 1)]) / n
    rho = np.abs(acv[1:] / acv[0])  # lags 1..lags
    crit = 2.0 * math.sqrt(math.log10(n) / n)
    insignificant = rho < crit
    m = None
    for first in range(1, lags - kn + 2):  # first lag of a run of kn insignificant lags
        if insignificant[first - 1: first - 1 + kn].all():
            m = first
            break
    big_m = m_max if m is None else min(2 * max(m, 1), m_max)
    big_m = min(big_m, lags)
    k = np.arange(1, big_m + 1)
    s = k / big_m
    lam = np.where(s <= 0.5, 1.0, 2.0 * (1.0 - s))
    g = 2.0 * float(np.sum(lam * k * acv[1: big_m + 1]))
    g0 = acv[0] + 2.0 * float(np.sum(lam * acv[1: big_m + 1]))
    if g0 <= 0 or g == 0:
        return BlockLength(1.0, 1.0)
    b_sb = (2.0 * g * g / (2.0 * g0 * g0)) ** (1 / 3) * n ** (1 / 3)
    b_cb = (2.0 * g * g / (4.0 / 3.0 * g0 * g0)) ** (1 / 3) * n ** (1 / 3)
    return BlockLength(float(min(b_sb, b_max)), float(min(b_cb, b_max)))


def default_block_length(x: np.ndarray, method: str = "stationary") -> float:
    """The automatic block length for ``method``, at least 1 day."""
    b = optimal_block_length(x)
    return float(max(1.0, b.stationary if method == "stationary" else b.circular))


# ---------------------------------------------------------------------------------- statistics
def bootstrap_distribution(x: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], *,
                           n_resamples: int = DEFAULT_RESAMPLES, method: str = "stationary",
                           block_length: float | None = None, seed: SeedLike = 0) -> tuple[np.ndarray, float]:
    """The statistic over block-bootstrap resamples of ``x`` and the block length used.

    ``statistic`` maps a ``(k, n)`` matrix of resampled series to ``k`` values (row-wise, vectorised).
    """
    x = np.asarray(x, dtype=float)
    bl = default_block_length(x, method) if block_length is None else float(block_length)
    out = [statistic(x[idx]) for idx in resample_chunks(len(x), n_resamples, method=method, block_length=bl,
                                                       seed=seed)]
    return np.concatenate(out), bl


def percentile_interval(draws: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """``(q_{(1-level)/2}, q_{(1+level)/2})`` of the finite draws (NaN, NaN when there are none)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(d, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def interval_p_value(draws: np.ndarray, null: float = 0.0) -> float:
    """Two-sided p-value that inverts the percentile interval:
    ``min(1, 2 min((#{d <= null} + 1) / (B + 1), (#{d >= null} + 1) / (B + 1)))``.

    ``p < 1 - level`` exactly when ``null`` lies outside the percentile interval at ``level`` (up to the
    ``+1`` and quantile interpolation at the boundary), so the CI and the p-value never disagree.
    """
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    b = len(d)
    if b == 0:
        return math.nan
    below = (np.count_nonzero(d <= null) + 1) / (b + 1)
    above = (np.count_nonzero(d >= null) + 1) / (b + 1)
    return float(min(1.0, 2.0 * min(below, above)))
