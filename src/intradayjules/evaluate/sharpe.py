"""The one Sharpe ratio of daily net P&L, its bootstrap interval and its standard errors (Lo, 2002).

Input: one value per session, daily net P&L (bps of equity, or returns: the ratio is scale-free).

* **Sharpe** ``SR = mean(x) / std(x, ddof=1)`` per day; annualised ``SR_a = sqrt(252) SR`` (risk-free 0).
  Equals ``empyrical.sharpe_ratio`` on any series with variance (tested).
* **The convention for no variance** (a flat policy, or any constant daily P&L) and for fewer than two
  sessions: the Sharpe ratio is **NaN**, never 0 or +-inf, with ``reason`` ``"no variance"`` or ``"fewer
  than 2 sessions"``. ``sharpe_ratio`` returns the NaN, ``sharpe_reason`` the reason, and
  ``SharpeEstimate.reason`` carries it. Code that averages Sharpe ratios must not drop these NaNs silently:
  see ``daily_pnl.mean_over_seeds``. (Comparisons with a flat policy are made on paired P&L, which is well
  defined: ``paired.paired_comparison``.)
* **Lo (2002) standard errors** of the daily Sharpe (annualised by the same ``sqrt(252)``):
  iid returns: ``SE = sqrt((1 + SR^2 / 2) / T)``; serially dependent returns (Lo's GMM estimator):
  ``SE^2 = grad' Omega grad / T`` with ``grad = (1 / sigma, -mu / (2 sigma^3))`` the gradient of
  ``mu / sigma`` in ``(mu, sigma^2)`` and ``Omega`` the Newey-West (Bartlett) long-run covariance of the
  moment series ``(x_t - mu, (x_t - mu)^2 - sigma^2)`` with ``L = floor(4 (T / 100)^(2/9))`` lags (Newey and
  West, 1994). Without autocorrelation and with normal returns the two agree. (Lo's separate correction of
  the *annualisation* factor for autocorrelated returns is not applied: every Sharpe here is annualised by
  ``sqrt(252)``, so numbers are comparable across policies.)
* **Bootstrap interval**: the Sharpe over stationary-bootstrap resamples (``bootstrap`` module, automatic
  block length by default), percentile interval at ``level``; resamples with no variance are counted in
  ``n_undefined_resamples`` and left out of the quantiles.
* **Moments for PSR/DSR**: ``skewness`` and ``kurtosis`` are the moment estimators ``m3 / m2^1.5`` and
  ``m4 / m2^2`` (population form, non-excess: a normal has kurtosis 3), as in Bailey and López de Prado.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .bootstrap import (DEFAULT_LEVEL, DEFAULT_RESAMPLES, SeedLike, bootstrap_distribution,
                        percentile_interval)
from .daily_pnl import finite_values

TRADING_DAYS = 252
NO_VARIANCE = "no variance"
TOO_SHORT = "fewer than 2 sessions"


def sharpe_reason(x: Any) -> str:
    """Why the Sharpe ratio of ``x`` is undefined ('' when it is defined)."""
    v = finite_values(x)
    if len(v) < 2:
        return TOO_SHORT
    if v.max() == v.min():
        return NO_VARIANCE
    return ""


def sharpe_ratio(x: Any, *, annualize: bool = True) -> float:
    """``mean / std(ddof=1)``, times ``sqrt(252)`` when ``annualize``; NaN when undefined (see module)."""
    v = finite_values(x)
    if sharpe_reason(v):
        return math.nan
    sr = float(v.mean() / v.std(ddof=1))
    return sr * math.sqrt(TRADING_DAYS) if annualize else sr


def rowwise_sharpe(m: np.ndarray) -> np.ndarray:
    """Daily Sharpe of each row of a ``(k, n)`` matrix; NaN for rows with no variance (same convention)."""
    m = np.asarray(m, dtype=float)
    mean = m.mean(axis=1)
    sd = m.std(axis=1, ddof=1)
    flat = m.max(axis=1) == m.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / sd
    out[flat] = math.nan
    return np.asarray(out)


def moments(x: Any) -> tuple[float, float]:
    """(skewness, kurtosis) as moment estimators, kurtosis non-excess; NaN when there is no variance."""
    v = finite_values(x)
    if len(v) < 2 or v.max() == v.min():
        return math.nan, math.nan
    d = v - v.mean()
    m2 = float(np.mean(d**2))
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2)


def lo_se_iid(sr_daily: float, n: int) -> float:
    """Lo (2002) standard error of the daily Sharpe under iid normal returns: ``sqrt((1 + SR^2/2) / T)``."""
    if n < 2 or math.isnan(sr_daily):
        return math.nan
    return math.sqrt((1.0 + 0.5 * sr_daily**2) / n)


def newey_west_lags(n: int) -> int:
    """``floor(4 (n / 100)^(2/9))`` (Newey and West, 1994)."""
    return int(math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))) if n > 0 else 0


def lo_se_hac(x: Any, lags: int | None = None) -> float:
    """Lo (2002) GMM standard error of the daily Sharpe with a Newey-West long-run covariance (module)."""
    v = finite_values(x)
    n = len(v)
    if sharpe_reason(v):
        return math.nan
    mu = float(v.mean())
    d = v - mu
    var = float(np.mean(d**2))
    u = np.column_stack([d, d**2 - var])
    lags = newey_west_lags(n) if lags is None else int(lags)
    omega = u.T @ u / n
    for j in range(1, min(lags, n - 1) + 1):
        gamma = u[j:].T @ u[:-j] / n
        omega += (1.0 - j / (lags + 1.0)) * (gamma + gamma.T)
    sigma = math.sqrt(var)
    grad = np.array([1.0 / sigma, -mu / (2.0 * sigma**3)])
    return math.sqrt(max(float(grad @ omega @ grad), 0.0) / n)


@dataclass(frozen=True)
class SharpeEstimate:
    """An annualised Sharpe ratio with its uncertainty; every ratio and SE is annualised by sqrt(252)."""

    sharpe: float
    ci_low: float
    ci_high: float
    se_iid: float  # Lo (2002), iid normal returns
    se_hac: float  # Lo (2002), GMM with Newey-West covariance
    n: int  # sessions
    mean: float  # daily mean of the input (its units, e.g. bps/day)
    sd: float  # daily standard deviation (ddof=1)
    level: float
    block_length: float
    n_resamples: int
    n_undefined_resamples: int
    reason: str = ""  # why the Sharpe is NaN ('' when defined)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sharpe_estimate(x: Any, *, level: float = DEFAULT_LEVEL, n_resamples: int = DEFAULT_RESAMPLES,
                    block_length: float | None = None, method: str = "stationary",
                    seed: SeedLike = 0) -> SharpeEstimate:
    """Annualised Sharpe of daily P&L ``x`` with a block-bootstrap interval and both Lo (2002) SEs."""
    v = finite_values(x)
    n = len(v)
    reason = sharpe_reason(v)
    mean = float(v.mean()) if n else math.nan
    sd = float(v.std(ddof=1)) if n >= 2 else math.nan
    if reason:
        return SharpeEstimate(math.nan, math.nan, math.nan, math.nan, math.nan, n, mean, sd, level,
                              math.nan, 0, 0, reason)
    root = math.sqrt(TRADING_DAYS)
    sr = mean / sd
    draws, bl = bootstrap_distribution(v, rowwise_sharpe, n_resamples=n_resamples, method=method,
                                       block_length=block_length, seed=seed)
    lo, hi = percentile_interval(draws, level)
    return SharpeEstimate(sharpe=sr * root, ci_low=lo * root, ci_high=hi * root,
                          se_iid=lo_se_iid(sr, n) * root, se_hac=lo_se_hac(v) * root, n=n, mean=mean, sd=sd,
                          level=level, block_length=bl, n_resamples=n_resamples,
                          n_undefined_resamples=int(np.count_nonzero(~np.isfinite(draws))), reason="")
