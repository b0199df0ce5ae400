"""Comparisons of arms trained with several seeds: per-seed values, mean +- sd, and contrasts whose interval
covers both day-to-day and seed-to-seed variation.

Input per arm (a "cell" of a design): a ``seeds x sessions`` matrix of daily values (net P&L in bps/day,
traded notional, ...), every arm on the same sessions in the same order (the arms are evaluated on the same
test blocks), each arm with its own seeds (independent models).

* ``arm_summary``: each seed's mean over the sessions, their mean and sd (ddof=1) across seeds.
* **Contrast** ``c = sum_a w_a * xbar_a`` with ``xbar_a`` the arm's mean over seeds and sessions: ``A - B`` is
  ``w = (+1, -1)``; a main effect in a two-level factorial is ``+1/m`` on the ``m`` cells with the factor on
  and ``-1/m`` on the others.
* **Interval: two-level bootstrap.** Each resample draws (i) one stationary-bootstrap resample of the sessions
  (``bootstrap.stationary_indices``, Politis-White block length of the seed-averaged contrast series unless
  given), shared by every arm, which keeps the pairing by day and the serial dependence, and (ii) for each
  arm independently, its seeds with replacement. With session weights ``v_t`` (times drawn / T) and seed
  weights ``u_s`` (times drawn / S) the resampled arm mean is ``sum_s sum_t u_s v_t x[s, t]``; the contrast is
  recomputed from those. Percentile interval at ``level``; two-sided p-value by inverting it
  (``bootstrap.interval_p_value``), so "the interval excludes 0" and "p < 1 - level" agree.
  A session-only bootstrap of seed-averaged P&L ignores a model that is worse on every day because of its
  seed; the seed draw puts that spread into the interval. With few seeds the seed draw is coarse (3 seeds:
  10 distinct multisets), so the interval is approximate; the per-seed values are always reported with it.
* **Ratios** (``ratio_contrast``): a share such as illiquid notional / all notional, per arm
  ``sum num / sum den`` over seeds and sessions (0 when the arm traded nothing), numerator and denominator
  resampled with the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .bootstrap import (DEFAULT_LEVEL, DEFAULT_RESAMPLES, default_block_length, interval_p_value, make_rng,
                        percentile_interval, stationary_indices)

Matrix = np.ndarray  # (seeds, sessions)


@dataclass(frozen=True)
class ArmSummary:
    per_seed: tuple[float, ...]  # each seed's mean over the sessions
    mean: float
    sd: float  # across seeds, ddof=1 (NaN with one seed)

    def describe(self, fmt: str = ".2f") -> str:
        sd = "" if math.isnan(self.sd) else f" +- {self.sd:{fmt}}"
        seeds = ", ".join(f"{v:{fmt}}" for v in self.per_seed)
        return f"{self.mean:{fmt}}{sd} (seeds: {seeds})"


def arm_summary(x: Matrix) -> ArmSummary:
    m = _matrix(x, "arm")
    per = m.mean(axis=1)
    return ArmSummary(tuple(float(v) for v in per), float(per.mean()),
                      float(per.std(ddof=1)) if len(per) > 1 else math.nan)


@dataclass(frozen=True)
class Contrast:
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    level: float
    weights: dict[str, float]
    n_sessions: int
    n_seeds: dict[str, int]
    block_length: float
    n_resamples: int
    seed: int | None
    method: str
    reason: str = ""  # why it is undefined ('' when defined)
    arms: dict[str, ArmSummary] = field(default_factory=dict)

    @property
    def excludes_zero(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matrix(x: Any, name: str) -> np.ndarray:
    m = np.asarray(x, dtype=float)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[0] < 1:
        raise ValueError(f"{name}: need a seeds x sessions matrix (got shape {m.shape})")
    bad = np.argwhere(~np.isfinite(m))
    if len(bad):
        s, t = bad[0]
        raise ValueError(f"{name}: seed row {s}, session {t} is {m[s, t]}: values must be finite")
    return m


def _check(arms: Mapping[str, Matrix]) -> dict[str, np.ndarray]:
    if not arms:
        raise ValueError("no arms to compare")
    out = {a: _matrix(x, a) for a, x in arms.items()}
    lengths = {a: m.shape[1] for a, m in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arms must cover the same sessions: sessions per arm {lengths}")
    return out


def _weights(counts: np.ndarray, n: int) -> np.ndarray:
    return counts / float(n)


def _session_weights(idx: np.ndarray, n: int) -> np.ndarray:
    b = idx.shape[0]
    flat = (idx + n * np.arange(b)[:, None]).ravel()
    return _weights(np.bincount(flat, minlength=b * n).reshape(b, n), n)


def resampled_means(fields: Mapping[str, Mapping[str, Matrix]], *, n_resamples: int = DEFAULT_RESAMPLES,
                    block_length: float = 1.0, seed: int | np.random.Generator | None = 0
                    ) -> dict[str, dict[str, np.ndarray]]:
    """``{arm: {field: (n_resamples,) resampled means}}`` of the two-level bootstrap (module docstring).

    ``fields[arm][field]`` are ``seeds x sessions`` matrices; the fields of one arm share its seed draws,
    every arm shares the session draws."""
    rng = make_rng(seed)
    arms = {a: {f: _matrix(m, f"{a}.{f}") for f, m in fs.items()} for a, fs in fields.items()}
    n = {m.shape[1] for fs in arms.values() for m in fs.values()}
    if len(n) != 1:
        raise ValueError(f"every arm and field must cover the same sessions (got lengths {sorted(n)})")
    t = n.pop()
    v = _session_weights(stationary_indices(t, n_resamples, block_length, rng), t)  # (B, T)
    out: dict[str, dict[str, np.ndarray]] = {}
    for a, fs in arms.items():
        s = {m.shape[0] for m in fs.values()}
        if len(s) != 1:
            raise ValueError(f"{a}: every field needs the same seeds (rows {sorted(s)})")
        ns = s.pop()
        draws = rng.integers(0, ns, size=(n_resamples, ns))
        u = _session_weights(draws, ns)  # (B, S): same counting as for sessions
        out[a] = {f: np.einsum("bs,bs->b", u, v @ m.T) for f, m in fs.items()}
    return out


def contrast(arms: Mapping[str, Matrix], weights: Mapping[str, float], *, level: float = DEFAULT_LEVEL,
             n_resamples: int = DEFAULT_RESAMPLES, block_length: float | None = None,
             seed: int | None = 0) -> Contrast:
    """``sum_a weights[a] * mean(arms[a])`` with its two-level bootstrap interval (module docstring)."""
    ms = _check(arms)
    unknown = [a for a in weights if a not in ms]
    if unknown:
        raise ValueError(f"weights name arms that are not given: {unknown}")
    w = {a: float(weights.get(a, 0.0)) for a in ms}
    t = next(iter(ms.values())).shape[1]
    summaries = {a: arm_summary(m) for a, m in ms.items()}
    est = float(sum(w[a] * m.mean() for a, m in ms.items()))
    n_seeds = {a: m.shape[0] for a, m in ms.items()}
    if t < 2:
        return Contrast(est, math.nan, math.nan, math.nan, level, w, t, n_seeds, math.nan, 0, seed, "none",
                        "fewer than 2 sessions", summaries)
    daily = sum(w[a] * m.mean(axis=0) for a, m in ms.items())
    bl = default_block_length(daily) if block_length is None else float(block_length)
    means = resampled_means({a: {"x": m} for a, m in ms.items() if w[a] != 0.0}, n_resamples=n_resamples,
                            block_length=bl, seed=seed)
    draws = sum(w[a] * means[a]["x"] for a in means)
    lo, hi = percentile_interval(draws, level)
    how = (f"two-level bootstrap: stationary resample of {t} sessions (mean block {bl:.2g}) shared by the arms, "
           f"seeds resampled within each arm; {n_resamples} resamples, percentile interval")
    return Contrast(est, lo, hi, interval_p_value(draws), level, w, t, n_seeds, bl, n_resamples, seed, how, "",
                    summaries)


def difference(a: Matrix, b: Matrix, *, name_a: str = "a", name_b: str = "b", **kw: Any) -> Contrast:
    """``mean(a) - mean(b)``: arm ``a`` against arm ``b`` on the same sessions (``contrast``)."""
    return contrast({name_a: a, name_b: b}, {name_a: 1.0, name_b: -1.0}, **kw)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def ratio_contrast(num: Mapping[str, Matrix], den: Mapping[str, Matrix], weights: Mapping[str, float], *,
                   level: float = DEFAULT_LEVEL, n_resamples: int = DEFAULT_RESAMPLES,
                   block_length: float | None = None, seed: int | None = 0) -> Contrast:
    """``sum_a w_a * (sum num_a / sum den_a)`` (0 for an arm whose denominator is 0), with its two-level
    bootstrap interval; numerator and denominator share each resample's draws. Default block length: of the
    weighted seed-averaged numerator series."""
    nm, dm = _check(num), _check(den)
    if set(nm) != set(dm):
        raise ValueError(f"numerator arms {sorted(nm)} differ from denominator arms {sorted(dm)}")
    w = {a: float(weights.get(a, 0.0)) for a in nm}
    t = next(iter(nm.values())).shape[1]
    point = {a: float(_ratio(np.array(nm[a].sum()), np.array(dm[a].sum()))) for a in nm}
    est = float(sum(w[a] * point[a] for a in nm))
    per_seed = {a: _ratio(nm[a].sum(axis=1), dm[a].sum(axis=1)) for a in nm}
    summaries = {a: ArmSummary(tuple(float(v) for v in per_seed[a]), point[a],
                               float(per_seed[a].std(ddof=1)) if len(per_seed[a]) > 1 else math.nan) for a in nm}
    n_seeds = {a: m.shape[0] for a, m in nm.items()}
    if t < 2:
        return Contrast(est, math.nan, math.nan, math.nan, level, w, t, n_seeds, math.nan, 0, seed, "none",
                        "fewer than 2 sessions", summaries)
    if block_length is None:
        block_length = default_block_length(sum(w[a] * nm[a].mean(axis=0) for a in nm))
    means = resampled_means({a: {"num": nm[a], "den": dm[a]} for a in nm if w[a] != 0.0},
                            n_resamples=n_resamples, block_length=block_length, seed=seed)
    draws = sum(w[a] * _ratio(means[a]["num"], means[a]["den"]) for a in means)
    lo, hi = percentile_interval(draws, level)
    how = (f"two-level bootstrap of a ratio of sums: stationary resample of {t} sessions (mean block "
           f"{block_length:.2g}), seeds resampled within each arm; {n_resamples} resamples, percentile interval")
    return Contrast(est, lo, hi, interval_p_value(draws), level, w, t, n_seeds, block_length, n_resamples, seed,
                    how, "", summaries)


def main_effect_weights(cells: Mapping[str, Mapping[str, Any]], factor: str, on: Any) -> dict[str, float]:
    """Contrast weights of a factor's main effect: ``+1/m_on`` on cells whose ``factor`` level is ``on``,
    ``-1/m_off`` on the others (``cells[name][factor]`` is the cell's level)."""
    on_cells = [c for c, lv in cells.items() if lv[factor] == on]
    off_cells = [c for c in cells if c not in on_cells]
    if not on_cells or not off_cells:
        raise ValueError(f"factor {factor!r}: need cells on both levels (on: {on_cells}, off: {off_cells})")
    return {**{c: 1.0 / len(on_cells) for c in on_cells}, **{c: -1.0 / len(off_cells) for c in off_cells}}


__all__ = ["ArmSummary", "Contrast", "arm_summary", "contrast", "difference", "main_effect_weights",
           "ratio_contrast", "resampled_means"]
