"""Numba step and observation kernels for ``Simulator`` (semantics documented in ``simulator.py``).

Fills and costs come from ``market.kernels.fill_one``: the same code ``MarketModel`` runs.
``eparams`` layout: the ``E_*`` indices below (position_size, max_gross_exposure, max_daily_drawdown,
multi flag, carry flag, reward scale, initial cash, number of actions, observation bounds). State arrays
are packed to keep the numba call cheap (each array argument costs ~55 ns of dispatch): ``ist`` (3, N)
int64 = t, offset, n_bars; ``fbars`` (4, N, T, K) = open, close, volume, secs since trade; ``sp``
(5, N, K) = half-spread bps, daily sigma, ADV, exit bar, exit return (``env/membership.py``: from the
decision at bar ``t >= exit bar`` on, the symbol is not tradable: the action's request for it is refused
and a held position is closed in full at bar t+1's open times ``1 + exit return``); ``pt`` (2, N, K) = position, target; ``cp`` (2, N) =
cash, peak. ``Simulator`` exposes each part as a named view.
``scal`` columns (per slot, written by ``step_kernel``) are the ``S_*`` indices below; ``S_NT0 + j`` /
``S_CT0 + j`` are the traded notional / total cost (fills and flatten) of the symbols whose tier code
(``tcode``, ``data.tiers.TIER_CODE``) is j, summed in symbol order. ``step_observe_kernel`` steps and
writes the next observation in one call (one numba dispatch per step).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..market.kernels import fill_one

E_SIZE, E_GROSS, E_DD, E_MULTI, E_CARRY, E_RSCALE, E_CASH0, E_NACT, E_POSB, E_CASHB, E_EXPOB = range(11)
N_EPARAMS = 11
(S_EQ0, S_EQ1, S_DD, S_PART, S_UNFILLED, S_DONE, S_BREACH, S_LIMIT, S_STALE_DEC, S_STALE_SHARE, S_SECS,
 S_ADVP, S_GROSS, S_CASH, S_SPREAD, S_IMPACT, S_FEES, S_NOTIONAL, S_NFILLS, S_REWARD, S_BAR,
 S_NT0, S_NT1, S_NT2, S_CT0, S_CT1, S_CT2, S_NREF) = range(28)
N_SCAL = 28
N_TIERS = 3
# rows of the per-symbol output block ``out`` (R, N, K)
(R_FILLED, R_ORDER, R_FLQ, R_SPREAD, R_IMPACT, R_FEES, R_FSPREAD, R_FIMPACT, R_FFEES, R_FPART, R_NOTIONAL,
 R_FPRICE, R_CPRICE, R_COST, R_REFUSED) = range(15)
N_ROWS = 15
# ``out[R_REFUSED]`` codes: the action asked for a non-flat target in a symbol it may not hold
REFUSE_NONE, REFUSE_NOT_MEMBER, REFUSE_DELISTED = 0, 1, 2
REFUSE_REASONS = {REFUSE_NOT_MEMBER: "not_member", REFUSE_DELISTED: "delisted"}


@njit(cache=True)
def step_kernel(actions, ist, fbars, stale, sp, tcode, pt, unit, cp, finished, eparams, mparams, out, scal):
    """One step of every slot. Returns 0, or 1 (an action out of range), 2 (a finished slot): then
    nothing was changed."""
    t, offset, n_bars = ist[0], ist[1], ist[2]
    open_, close, volume, secs = fbars[0], fbars[1], fbars[2], fbars[3]
    hs, sigma, adv, xbar, xret = sp[0], sp[1], sp[2], sp[3], sp[4]
    pos, target = pt[0], pt[1]
    cash, peak = cp[0], cp[1]
    N, K = pos.shape
    for n in range(N):
        if actions[n] < 0 or actions[n] >= eparams[E_NACT]:
            return 1
        if finished[n]:
            return 2
    filled, order, flq = out[R_FILLED], out[R_ORDER], out[R_FLQ]
    spread, impact, fees = out[R_SPREAD], out[R_IMPACT], out[R_FEES]
    fspread, fimpact, ffees = out[R_FSPREAD], out[R_FIMPACT], out[R_FFEES]
    fpart, notional = out[R_FPART], out[R_NOTIONAL]
    size, max_gross, max_dd = eparams[E_SIZE], eparams[E_GROSS], eparams[E_DD]
    multi, carry = eparams[E_MULTI] > 0.5, eparams[E_CARRY] > 0.5
    req = np.empty(K, np.int64)
    changed = np.empty(K, np.bool_)
    new_target = np.empty(K)
    blocked = np.empty(K, np.bool_)
    refused = out[R_REFUSED]
    for n in range(N):
        tn = t[n]
        t1 = tn + 1
        eq0 = cash[n]
        for k in range(K):
            eq0 += pos[n, k] * close[n, tn, k]
        a = actions[n]
        # actions -> requested target units
        any_changed = False
        for k in range(K):
            req[k] = unit[n, k]
            changed[k] = False
        if multi:
            if a > 0:
                k = (a - 1) // 3
                req[k] = (a - 1) % 3 - 1
                changed[k] = req[k] != unit[n, k]
        else:
            req[0] = a - 1
            changed[0] = req[0] != unit[n, 0]
        # membership: a symbol past its exit bar gets target 0 (its position is closed below)
        nref = 0
        for k in range(K):
            refused[n, k] = 0.0
            blocked[k] = tn >= xbar[n, k]
            if blocked[k]:
                asked = (not multi) or (a > 0 and (a - 1) // 3 == k)
                if asked and req[k] != 0:
                    refused[n, k] = 1.0 if xbar[n, k] <= 0.0 else 2.0
                    nref += 1
                req[k] = 0
                changed[k] = unit[n, k] != 0 or pos[n, k] != 0.0
        gross = 0.0
        eqp = eq0 if eq0 > 0.0 else 0.0
        for k in range(K):
            new_target[k] = target[n, k]
            if blocked[k]:
                new_target[k] = 0.0
            elif changed[k]:
                any_changed = True
                sh = math.floor(size * eqp / close[n, tn, k])
                new_target[k] = req[k] * sh
            gross += abs(new_target[k]) * close[n, tn, k]
        limit = False
        if multi and any_changed:
            if gross / (eq0 if eq0 > 0.0 else 1e-9) > max_gross * (1.0 + 1e-9):
                limit = True
                for k in range(K):
                    if changed[k] and not blocked[k]:
                        changed[k] = False
                        new_target[k] = target[n, k]
        # orders, fills at bar t+1's open
        c = cash[n]
        part = 0.0
        unf = 0.0
        advp = 0.0
        stale_dec = False
        n_stale = 0
        smax = 0.0
        for k in range(K):
            if changed[k]:
                unit[n, k] = req[k]
            if carry or changed[k] or blocked[k]:
                q = new_target[k] - pos[n, k]
            else:
                q = 0.0
            order[n, k] = q
            o = open_[n, t1, k]
            if blocked[k] and q != 0.0:  # forced exit: in full, at the open times 1 + exit return
                o = o * (1.0 + xret[n, k])
            v = volume[n, t1, k]
            f, s, im, fe = fill_one(q, o, v, hs[n, k], sigma[n, k], adv[n, k], blocked[k], mparams)
            filled[n, k] = f
            spread[n, k] = s
            impact[n, k] = im
            fees[n, k] = fe
            nt = abs(f) * o
            notional[n, k] = nt
            c -= f * o + s + im + fe
            pos[n, k] += f
            target[n, k] = new_target[k] if carry else pos[n, k]
            fpart[n, k] = abs(f) / v if v > 0.0 else 0.0
            if fpart[n, k] > part:
                part = fpart[n, k]
            unf += abs(q - f) * o
            advp += nt / adv[n, k]
            if stale[n, tn, k]:
                n_stale += 1
                if q != 0.0 or changed[k]:
                    stale_dec = True
            if secs[n, tn, k] > smax:
                smax = secs[n, tn, k]
            flq[n, k] = 0.0
            out[R_FPRICE, n, k] = o
            out[R_CPRICE, n, k] = close[n, t1, k]
            fspread[n, k] = 0.0
            fimpact[n, k] = 0.0
            ffees[n, k] = 0.0
        # mark at bar t+1's close
        eq1 = c
        for k in range(K):
            eq1 += pos[n, k] * close[n, t1, k]
        if eq1 > peak[n]:
            peak[n] = eq1
        dd = 1.0 - eq1 / peak[n]
        breach = dd >= max_dd
        done = breach or t1 >= n_bars[n] - 1
        if done:  # market-on-close flatten at bar t+1's close, in full
            for k in range(K):
                if pos[n, k] != 0.0:
                    p = close[n, t1, k]
                    f, s, im, fe = fill_one(-pos[n, k], p, volume[n, t1, k], hs[n, k], sigma[n, k], adv[n, k],
                                            True, mparams)
                    flq[n, k] = f
                    fspread[n, k] = s
                    fimpact[n, k] = im
                    ffees[n, k] = fe
                    nt = abs(f) * p
                    notional[n, k] += nt
                    advp += nt / adv[n, k]
                    c -= f * p + s + im + fe
                    pos[n, k] += f
                target[n, k] = 0.0
                unit[n, k] = 0
            eq1 = c
            dd = 1.0 - eq1 / peak[n]
        g = 0.0
        for k in range(K):
            g += abs(pos[n, k]) * close[n, t1, k]
        cash[n] = c
        t[n] = t1
        finished[n] = done
        scal[n, S_EQ0] = eq0
        scal[n, S_EQ1] = eq1
        scal[n, S_DD] = dd if dd > 0.0 else 0.0
        scal[n, S_PART] = part
        scal[n, S_UNFILLED] = unf
        scal[n, S_DONE] = 1.0 if done else 0.0
        scal[n, S_BREACH] = 1.0 if breach else 0.0
        scal[n, S_LIMIT] = 1.0 if limit else 0.0
        scal[n, S_STALE_DEC] = 1.0 if stale_dec else 0.0
        scal[n, S_STALE_SHARE] = n_stale / K
        scal[n, S_SECS] = smax
        scal[n, S_ADVP] = advp
        scal[n, S_GROSS] = g
        scal[n, S_CASH] = c
        a_s = 0.0
        a_i = 0.0
        a_f = 0.0
        a_n = 0.0
        nf = 0
        for j in range(N_TIERS):
            scal[n, S_NT0 + j] = 0.0
            scal[n, S_CT0 + j] = 0.0
        for k in range(K):
            out[R_COST, n, k] = spread[n, k] + impact[n, k] + fees[n, k] + fspread[n, k] + fimpact[n, k] + ffees[n, k]
            scal[n, S_NT0 + tcode[n, k]] += notional[n, k]
            scal[n, S_CT0 + tcode[n, k]] += out[R_COST, n, k]
            a_s += spread[n, k] + fspread[n, k]
            a_i += impact[n, k] + fimpact[n, k]
            a_f += fees[n, k] + ffees[n, k]
            a_n += notional[n, k]
            if filled[n, k] != 0.0:
                nf += 1
            if flq[n, k] != 0.0:
                nf += 1
        scal[n, S_SPREAD] = a_s
        scal[n, S_IMPACT] = a_i
        scal[n, S_FEES] = a_f
        scal[n, S_NOTIONAL] = a_n
        scal[n, S_NFILLS] = nf
        scal[n, S_REWARD] = eparams[E_RSCALE] * (eq1 - eq0) / eparams[E_CASH0]
        scal[n, S_BAR] = t1 + offset[n]
        scal[n, S_NREF] = nref
    return 0


@njit(cache=True)
def observe_kernel(t, feat, tod, close, pos, cash, pos_bound, cash_bound, expo_bound, out):
    """Write observations (N, D) float32: features row t, position values / equity, gross exposure,
    cash / equity, fraction of the session elapsed."""
    N, K = pos.shape
    nf = feat.shape[2]
    for n in range(N):
        tn = t[n]
        for j in range(nf):
            out[n, j] = feat[n, tn, j]
        eq = cash[n]
        g = 0.0
        for k in range(K):
            val = pos[n, k] * close[n, tn, k]
            eq += val
            g += abs(val)
        safe = eq if eq > 0.0 else 1e-9
        for k in range(K):
            w = pos[n, k] * close[n, tn, k] / safe
            out[n, nf + k] = min(max(w, -pos_bound), pos_bound)
        out[n, nf + K] = min(max(g / safe, 0.0), expo_bound)
        out[n, nf + K + 1] = min(max(cash[n] / safe, -cash_bound), cash_bound)
        out[n, nf + K + 2] = tod[n, tn]


@njit(cache=True)
def step_observe_kernel(actions, ist, fbars, stale, sp, tcode, pt, unit, cp, finished, eparams, mparams, out, scal,
                        feat, tod, obs):
    """``step_kernel`` then, when it succeeded, ``observe_kernel`` into ``obs``. Returns ``step_kernel``'s
    status."""
    status = step_kernel(actions, ist, fbars, stale, sp, tcode, pt, unit, cp, finished, eparams, mparams, out, scal)
    if status == 0:
        observe_kernel(ist[0], feat, tod, fbars[1], pt[0], cp[0], eparams[E_POSB], eparams[E_CASHB],
                       eparams[E_EXPOB], obs)
    return status
