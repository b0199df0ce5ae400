"""Numba kernel of the reward-shaping penalty for every slot of the project's simulator at once.

The same formula as ``shaping.SlotShaper.penalty`` (module docstring of ``shaping.py``), with the same
floating-point operations in the same order, so the two agree exactly (tested through
``VecRiskShaping`` against ``RiskShapingWrapper``). Per slot n, from the step's scalar row ``scal[n]``
and per-symbol block ``out[:, n]`` (``env.kernel`` layouts)::

    peak_n  = max(peak_n, equity)                     (starts at the episode's initial equity)
    dd      = clip(1 - equity / peak_n, 0, 1)         (1 when peak_n <= 0)
    penalty = k*dd_pen*max(dd - dd_prev, 0) + k*ul_pen*dd*dd + k*imp*impact_usd + k*ill*illiquid_cost_usd
              + k*m*unfilled_illiquid_cost_usd / initial_cash         (ordered basis only)

``state`` (2, N): running peak and previous drawdown (updated in place); ``coef``: the ``C_*`` values.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..env.kernel import R_FILLED, R_FPRICE, R_ORDER, S_CT2, S_EQ1, S_IMPACT
from ..market.kernels import fill_one

C_K, C_DD, C_UL, C_IMP, C_ILL, C_M, C_CASH, C_ORDERED = range(8)
ILLIQUID = 2  # data.tiers.TIER_CODE["illiquid"]


@njit(cache=True)
def penalty_kernel(scal, out, tcode, sp, mparams, coef, state, pen):
    """Write each slot's penalty into ``pen`` (N,) and update ``state``; ``tcode``/``sp`` (half-spread,
    sigma, ADV) are those of the episodes the step ran in."""
    N = scal.shape[0]
    K = tcode.shape[1]
    k = coef[C_K]
    for n in range(N):
        equity = scal[n, S_EQ1]
        peak = state[0, n]
        if equity > peak:
            peak = equity
            state[0, n] = peak
        if peak > 0.0:
            dd = 1.0 - equity / peak
            dd = 0.0 if dd < 0.0 else (1.0 if dd > 1.0 else dd)
        else:
            dd = 1.0
        inc = dd - state[1, n]
        inc = inc if inc > 0.0 else 0.0
        state[1, n] = dd
        p_dd = k * coef[C_DD] * inc
        p_ul = k * coef[C_UL] * dd * dd
        p_imp = k * coef[C_IMP] * scal[n, S_IMPACT]
        p_ill = k * coef[C_ILL] * scal[n, S_CT2]
        p_unf = 0.0
        if coef[C_ORDERED] > 0.5:
            total = 0.0
            for j in range(K):
                if tcode[n, j] != ILLIQUID:
                    continue
                q = out[R_ORDER, n, j]
                f = out[R_FILLED, n, j]
                if q == 0.0 or f == q:
                    continue
                price = out[R_FPRICE, n, j]
                _, s1, i1, f1 = fill_one(q, price, 0.0, sp[0, n, j], sp[1, n, j], sp[2, n, j], True, mparams)
                _, s0, i0, f0 = fill_one(f, price, 0.0, sp[0, n, j], sp[1, n, j], sp[2, n, j], True, mparams)
                c = (s1 + i1 + f1) - (s0 + i0 + f0)
                total += c if c > 0.0 else 0.0
            if total != 0.0:
                p_unf = k * coef[C_M] * total / coef[C_CASH]
        pen[n] = p_dd + p_ul + p_imp + p_ill + p_unf


def coefficients(risk, initial_cash: float, reward_scale: float) -> np.ndarray:
    """``coef`` for ``penalty_kernel`` from a ``RiskConfig`` (as ``SlotShaper`` derives them)."""
    c = np.zeros(8)
    c[C_K] = float(reward_scale)
    c[C_DD] = risk.drawdown_penalty
    c[C_UL] = risk.ulcer_penalty
    c[C_IMP] = risk.impact_penalty / initial_cash
    c[C_ILL] = (risk.illiquid_penalty_multiplier - 1.0) / initial_cash
    c[C_M] = float(risk.illiquid_penalty_multiplier)
    c[C_CASH] = float(initial_cash)
    c[C_ORDERED] = 1.0 if risk.illiquid_penalty_basis == "ordered" and risk.illiquid_penalty_multiplier > 1 else 0.0
    return c
