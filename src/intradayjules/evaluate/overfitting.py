"""Selection among many tuning trials: probabilistic and deflated Sharpe ratios, and PBO by CSCV.

All Sharpe ratios here are **daily** (not annualised) unless a field says ``_annual`` (x sqrt(252)); ``T`` is
the number of sessions, ``N`` the number of trials.

* **PSR** (Bailey and López de Prado, 2012): the probability that the true Sharpe exceeds ``SR*`` given the
  estimate ``SR`` over ``T`` sessions with skewness ``g3`` and (non-excess) kurtosis ``g4``:
  ``PSR(SR*) = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``.
* **Expected maximum Sharpe** of ``N`` independent trials whose Sharpe estimates have variance ``V`` and true
  Sharpe 0 (Bailey and López de Prado, 2014, with the Euler-Mascheroni constant ``gamma``):
  ``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``; ``SR0 = 0`` for ``N = 1``.
* **DSR** = ``PSR(SR0)``: the probability that the selected trial's true Sharpe beats what the best of ``N``
  luck-only trials would show. Its **p-value** is ``1 - DSR``; a small p-value means "distinguishable from
  luck". With ``N = 1`` it is the PSR against 0, whose p-value is uniform under the null. With ``N > 1``,
  ``SR0`` is the *expected* maximum, not a quantile of it, and the maximum of ``N`` estimates varies less
  than one estimate, so under the null the p-value concentrates near 0.5: the test is conservative (it
  rejects a true null less often than ``alpha``; simulated in the tests).
  ``deflated_sharpe_from_trials`` computes every input from the trials' per-session P&L: the Sharpe of each
  trial, ``V`` their variance (ddof=1) over the trials whose Sharpe is defined, and the moments of the
  selected trial. Trials with no variance (flat) count in ``N`` but have no Sharpe: they are left out of
  ``V`` and counted in ``n_undefined``.
* **PBO by CSCV** (Bailey, Borwein, López de Prado and Zhu, 2017): split the ``T x N`` matrix of per-session
  P&L (rows: sessions in time order, columns: trials) into ``S`` (even) contiguous blocks of rows
  (``numpy.array_split``: sizes differ by at most one). For each of the ``C(S, S/2)`` ways to pick half the
  blocks as in-sample (IS, the rest out-of-sample, OOS): ``n*`` = the trial with the best IS performance
  (first one on ties), ``w`` = its OOS rank among the ``N`` trials divided by ``N + 1`` (rank 1 = worst,
  ties averaged), logit ``lambda = ln(w / (1 - w))``. ``PBO`` = share of combinations with ``lambda <= 0``
  (the IS-best trial is at or below the OOS median). Under the null of ``N`` exchangeable trials the OOS
  rank is uniform and ``PBO = floor((N + 1) / 2) / N`` in expectation (0.5 for even ``N``). Trials that are
  all identical (e.g. all flat) tie everywhere, so the IS-best sits at the OOS median and ``PBO = 1``:
  selecting among them gains nothing out of sample.
  Performance is the mean P&L of the block rows (``metric="mean"``, default: defined for flat trials too)
  or their Sharpe (``metric="sharpe"``; a trial with no variance in a half is ranked as Sharpe 0 there).
  Also: the **performance degradation**, the OLS slope and intercept of OOS on IS performance of ``n*``
  across combinations (a negative slope: the better it looked IS, the worse OOS), and ``prob_oos_loss``,
  the share of combinations where ``n*`` loses OOS (performance < 0).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._distributions import norm_cdf, norm_ppf
from .daily_pnl import finite_values
from .sharpe import NO_VARIANCE, TRADING_DAYS, moments, rowwise_sharpe, sharpe_reason

EULER_GAMMA = 0.5772156649015329
MAX_COMBINATIONS = 1_000_000


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0,
                               kurt: float = 3.0) -> float:
    """PSR (module docstring); daily Sharpe ratios, ``kurt`` non-excess."""
    if n_obs < 2 or any(math.isnan(v) for v in (sr, sr_benchmark, skew, kurt)):
        return math.nan
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if var <= 0:
        raise ValueError(f"PSR: 1 - skew*SR + (kurt-1)/4*SR^2 = {var} <= 0 (skew={skew}, kurt={kurt}, SR={sr}): "
                         "moments are inconsistent")
    return norm_cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var))


def expected_max_sharpe(n_trials: int, var_sharpes: float) -> float:
    """``SR0``, the expected maximum daily Sharpe of ``n_trials`` luck-only trials (module docstring)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1 (got {n_trials})")
    if n_trials == 1:
        return 0.0
    if math.isnan(var_sharpes) or var_sharpes < 0:
        return math.nan
    n = float(n_trials)
    z = (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm_ppf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(var_sharpes) * z


@dataclass(frozen=True)
class DeflatedSharpe:
    dsr: float  # probability that the selected trial's true Sharpe exceeds SR0
    p_value: float  # 1 - dsr
    sharpe: float  # daily Sharpe of the selected trial
    sr0: float  # expected maximum daily Sharpe of n_trials luck-only trials
    n_trials: int
    var_sharpes: float  # variance of the trials' daily Sharpe ratios
    n_obs: int  # sessions
    skew: float
    kurt: float  # non-excess
    selected: Any = None  # the selected trial's label, when known
    n_undefined: int = 0  # trials with no variance (no Sharpe): in n_trials, not in var_sharpes
    reason: str = ""  # why the DSR is NaN ('' when defined)

    @property
    def sharpe_annual(self) -> float:
        return self.sharpe * math.sqrt(TRADING_DAYS)

    @property
    def sr0_annual(self) -> float:
        return self.sr0 * math.sqrt(TRADING_DAYS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"sharpe_annual": self.sharpe_annual, "sr0_annual": self.sr0_annual}


def deflated_sharpe_ratio(sr: float, n_obs: int, n_trials: int, var_sharpes: float, skew: float = 0.0,
                          kurt: float = 3.0) -> DeflatedSharpe:
    """DSR of a selected trial from its daily Sharpe, sessions, moments, and the trials' count and variance."""
    sr0 = expected_max_sharpe(n_trials, var_sharpes)
    reason = ""
    if math.isnan(sr):
        reason = NO_VARIANCE
    elif math.isnan(sr0):
        reason = "variance of the trials' Sharpe ratios undefined"
    dsr = math.nan if reason else probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurt)
    return DeflatedSharpe(dsr, 1.0 - dsr, sr, sr0, n_trials, var_sharpes, n_obs, skew, kurt, reason=reason)


def _trial_matrix(pnl: pd.DataFrame | np.ndarray, what: str) -> tuple[np.ndarray, list[Any]]:
    if isinstance(pnl, pd.DataFrame):
        labels = list(pnl.columns)
        for c in labels:
            finite_values(pnl[c], f"{what}, trial {c!r}")
        m = pnl.to_numpy(dtype=float)
    else:
        m = np.asarray(pnl, dtype=float)
        if m.ndim != 2:
            raise ValueError(f"{what}: need a 2-d sessions x trials matrix (got shape {m.shape})")
        labels = list(range(m.shape[1]))
        for j in range(m.shape[1]):
            finite_values(m[:, j], f"{what}, trial {j}")
    return m, labels


def deflated_sharpe_from_trials(pnl: pd.DataFrame | np.ndarray, selected: Any = None) -> DeflatedSharpe:
    """DSR of the ``selected`` trial (a column label; default: the highest Sharpe) of a sessions x trials
    P&L matrix, the same sessions for every trial (the validation sessions the selection used)."""
    m, labels = _trial_matrix(pnl, "trial P&L")
    t, n = m.shape
    if n < 1 or t < 2:
        raise ValueError(f"trial P&L: need >= 2 sessions and >= 1 trial (got {t} x {n})")
    srs = rowwise_sharpe(m.T)
    defined = np.isfinite(srs)
    if selected is None:
        if not defined.any():
            j = 0
        else:
            j = int(np.nanargmax(srs))
    else:
        if selected not in labels:
            raise ValueError(f"trial P&L: selected trial {selected!r} is not a column")
        j = labels.index(selected)
    var = float(np.var(srs[defined], ddof=1)) if defined.sum() >= 2 else (0.0 if n == 1 else math.nan)
    skew, kurt = moments(m[:, j])
    res = deflated_sharpe_ratio(float(srs[j]), t, n, var, skew, kurt)
    reason = res.reason
    if sharpe_reason(m[:, j]):
        reason = f"selected trial {labels[j]!r}: {sharpe_reason(m[:, j])}"
    elif defined.sum() < 2 and n > 1:
        reason = f"only {int(defined.sum())} of {n} trials have a Sharpe ratio: their variance is undefined"
    return DeflatedSharpe(res.dsr, res.p_value, res.sharpe, res.sr0, n, var, t, skew, kurt, labels[j],
                          int((~defined).sum()), reason)


# ------------------------------------------------------------------------------------- PBO
@dataclass(frozen=True)
class PBOResult:
    pbo: float  # share of combinations whose logit <= 0
    n_trials: int
    n_blocks: int
    n_combinations: int
    n_sessions: int
    metric: str
    logits: np.ndarray = field(repr=False)  # one per combination
    is_perf: np.ndarray = field(repr=False)  # IS performance of the IS-best trial, per combination
    oos_perf: np.ndarray = field(repr=False)  # its OOS performance
    slope: float = math.nan  # OLS of oos_perf on is_perf (performance degradation)
    intercept: float = math.nan
    prob_oos_loss: float = math.nan  # share of combinations with oos_perf < 0

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if not isinstance(v, np.ndarray)}
        return d | {"logit_median": float(np.median(self.logits))}


def _block_performance(sums: np.ndarray, sumsq: np.ndarray, counts: np.ndarray, metric: str) -> np.ndarray:
    """Per (combination, trial) performance from summed block moments. ``counts`` is (C, 1)."""
    mean = sums / counts
    if metric == "mean":
        return np.asarray(mean)
    var = (sumsq - counts * mean * mean) / np.maximum(counts - 1, 1)
    sd = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = np.where(sd > 1e-12 * np.maximum(np.abs(mean), 1.0), mean / sd, 0.0)
    return sr


def pbo_cscv(pnl: pd.DataFrame | np.ndarray, n_blocks: int = 16, *, metric: str = "mean") -> PBOResult:
    """Probability of backtest overfitting of a sessions x trials P&L matrix by CSCV (module docstring)."""
    if metric not in ("mean", "sharpe"):
        raise ValueError(f"metric must be 'mean' or 'sharpe' (got {metric!r})")
    m, _labels = _trial_matrix(pnl, "trial P&L")
    t, n = m.shape
    if n < 2:
        raise ValueError(f"PBO needs at least 2 trials (got {n})")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be even and >= 2 (got {n_blocks})")
    if t < n_blocks:
        raise ValueError(f"PBO: {t} sessions cannot fill {n_blocks} blocks; use fewer blocks")
    n_comb = math.comb(n_blocks, n_blocks // 2)
    if n_comb > MAX_COMBINATIONS:
        raise ValueError(f"PBO: C({n_blocks}, {n_blocks // 2}) = {n_comb} combinations is too many")
    blocks = np.array_split(np.arange(t), n_blocks)
    b_sum = np.stack([m[idx].sum(axis=0) for idx in blocks])  # (S, N)
    b_sq = np.stack([(m[idx] ** 2).sum(axis=0) for idx in blocks])
    b_cnt = np.array([len(idx) for idx in blocks], dtype=float)
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)))
    mask = np.zeros((n_comb, n_blocks))
    np.put_along_axis(mask, combos, 1.0, axis=1)
    perf = {}
    for side, w in (("is", mask), ("oos", 1.0 - mask)):
        perf[side] = _block_performance(w @ b_sum, w @ b_sq, (w @ b_cnt)[:, None], metric)
    best = np.argmax(perf["is"], axis=1)  # first on ties
    rows = np.arange(n_comb)
    oos_best = perf["oos"][rows, best]
    less = np.count_nonzero(perf["oos"] < oos_best[:, None], axis=1)
    ties = np.count_nonzero(perf["oos"] == oos_best[:, None], axis=1) - 1
    rank = 1.0 + less + 0.5 * ties
    w = rank / (n + 1.0)
    logits = np.log(w / (1.0 - w))
    is_best = perf["is"][rows, best]
    if np.ptp(is_best) > 0:
        slope, intercept = np.polyfit(is_best, oos_best, 1)
    else:
        slope, intercept = math.nan, math.nan
    return PBOResult(pbo=float(np.mean(logits <= 0)), n_trials=n, n_blocks=n_blocks, n_combinations=n_comb,
                     n_sessions=t, metric=metric, logits=logits, is_perf=is_best, oos_perf=oos_best,
                     slope=float(slope), intercept=float(intercept),
                     prob_oos_loss=float(np.mean(oos_best < 0)))
