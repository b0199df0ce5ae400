"""Numba kernels of the market model (compiled once, then cached on disk). ``fill_one`` is the single
implementation of the fill and cost formulas documented
in ``costs.py``; ``MarketModel.fill_arrays`` and the environment's step kernel both call it.

``params`` layout (``model_params``): cap, impact_coef, commission rate, flat flag, flat rate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

P_CAP, P_Y, P_COMM, P_FLAT, P_FLAT_RATE = range(5)


def model_params(cfg) -> np.ndarray:
    return np.array([cfg.participation_cap, cfg.impact_coef, cfg.commission_bps * 1e-4,
                     1.0 if cfg.model == "flat" else 0.0, cfg.flat_cost_bps * 1e-4], dtype=np.float64)


@njit(cache=True, inline="always")
def fill_one(qty, price, volume, hs_bps, sigma, adv, must, params):
    """-> (filled signed shares, spread USD, impact USD, fees USD) for one order."""
    if params[P_FLAT] > 0.5:
        return qty, 0.0, 0.0, abs(qty) * price * params[P_FLAT_RATE]
    a = abs(qty)
    if not must:
        c = math.floor(params[P_CAP] * volume)
        if c < 0.0:
            c = 0.0
        if a > c:
            a = c
    f = a if qty >= 0 else -a
    notional = a * price
    spread = notional * hs_bps * 1e-4
    impact = 0.0
    if notional > 0.0:
        impact = params[P_Y] * sigma * math.sqrt(notional / adv) * notional
    return f, spread, impact, notional * params[P_COMM]


@njit(cache=True)
def fill_loop(qty, price, volume, hs_bps, sigma, adv, must, params, out):
    """1-D arrays of equal length; ``out`` (n, 4) receives filled, spread, impact, fees."""
    for i in range(qty.shape[0]):
        f, s, im, fe = fill_one(qty[i], price[i], volume[i], hs_bps[i], sigma[i], adv[i], must[i], params)
        out[i, 0] = f
        out[i, 1] = s
        out[i, 2] = im
        out[i, 3] = fe
