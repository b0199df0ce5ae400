"""PSR, DSR and PBO: the published worked example, hand-computed CSCV, a plain reference loop, simulations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from intradayjules.evaluate.overfitting import (EULER_GAMMA, deflated_sharpe_from_trials, deflated_sharpe_ratio,
                                                expected_max_sharpe, pbo_cscv, probabilistic_sharpe_ratio)
from intradayjules.evaluate.sharpe import moments, sharpe_ratio


# ------------------------------------------------------------------------------------- DSR
def test_dsr_reproduces_the_papers_numerical_example():
    # Bailey and López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias, Backtest
    # Overfitting and Non-Normality", J. Portfolio Management 40(5), section "A numerical example":
    # N = 100 trials, variance of their annualised Sharpe ratios 1/2, best annualised SR 2.5 over T = 1250 daily
    # observations (250 a year), skewness -3, kurtosis 10 -> E[max SR] = 0.1132 (non-annualised), DSR = 0.9004.
    periods = 250
    res = deflated_sharpe_ratio(2.5 / math.sqrt(periods), n_obs=1250, n_trials=100, var_sharpes=0.5 / periods,
                                skew=-3.0, kurt=10.0)
    assert res.sr0 == pytest.approx(0.1132, abs=5e-5)
    assert res.dsr == pytest.approx(0.9004, abs=5e-5)
    assert res.p_value == pytest.approx(1 - res.dsr)


def test_expected_max_sharpe_formula_and_simulation():
    # the closed form, written out from the paper
    v = 0.003
    n = 37
    z = scipy.stats.norm.ppf
    want = math.sqrt(v) * ((1 - EULER_GAMMA) * z(1 - 1 / n) + EULER_GAMMA * z(1 - 1 / (n * math.e)))
    assert expected_max_sharpe(n, v) == pytest.approx(want, rel=1e-12)
    assert expected_max_sharpe(1, v) == 0.0
    # it approximates the mean of the maximum of N standard normals (within 3 % from N = 10 on)
    rng = np.random.default_rng(0)
    for n in (10, 100, 1000):
        sim = rng.normal(size=(20_000, n)).max(axis=1).mean()
        assert expected_max_sharpe(n, 1.0) == pytest.approx(sim, rel=0.035)


def test_psr_against_the_true_sharpe_is_uniform_only_with_the_moment_terms():
    # skewed returns (skew -2, kurtosis 9), true daily Sharpe 0.2: PSR(true SR) of the estimate is uniform when
    # the skewness/kurtosis terms are used, and clearly not without them (the check can fail)
    rng = np.random.default_rng(0)
    t, mu = 250, 0.2
    r = mu - (rng.exponential(size=(2000, t)) - 1.0)
    with_m, without = [], []
    for x in r:
        sr = sharpe_ratio(x, annualize=False)
        s, k = moments(x)
        with_m.append(probabilistic_sharpe_ratio(sr, mu, t, s, k))
        without.append(probabilistic_sharpe_ratio(sr, mu, t))
    assert scipy.stats.kstest(with_m, "uniform").pvalue > 0.01
    assert scipy.stats.kstest(without, "uniform").pvalue < 1e-4


def _null_dsr_p_values(n_trials, reps, t=250, seed=0):
    rng = np.random.default_rng(seed)
    return np.array([deflated_sharpe_from_trials(rng.normal(size=(t, n_trials))).p_value for _ in range(reps)])


def test_dsr_p_value_uniform_under_the_null_with_one_trial():
    p = _null_dsr_p_values(1, 1000)
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.01


def test_dsr_is_conservative_under_the_null_with_many_trials():
    # N zero-mean strategies, the best selected: SR0 is the *expected* maximum, so the p-value centres near 0.5
    # and rejects far less often than alpha (documented in overfitting.py)
    p = _null_dsr_p_values(20, 500, seed=1)
    assert (p < 0.05).mean() <= 0.02
    assert 0.4 <= np.median(p) <= 0.6
    assert scipy.stats.kstest(p, "uniform").pvalue < 1e-6  # not uniform: stated, not hidden


def test_dsr_finds_a_real_edge_among_noise():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(50):
        m = rng.normal(size=(1000, 20))
        m[:, 3] += 0.25  # daily Sharpe 0.25 (about 4 annualised) for trial 3 only
        d = deflated_sharpe_from_trials(pd.DataFrame(m, columns=[f"trial{j}" for j in range(20)]))
        hits += d.selected == "trial3" and d.p_value < 0.05
    assert hits >= 45


def test_dsr_from_trials_fields_and_flat_trials():
    rng = np.random.default_rng(3)
    m = rng.normal(0.05, 1.0, (300, 6))
    m[:, 5] = 0.0  # a flat trial: counts as a trial, has no Sharpe
    d = deflated_sharpe_from_trials(m)
    srs = [sharpe_ratio(m[:, j], annualize=False) for j in range(5)]
    assert d.n_trials == 6 and d.n_undefined == 1 and d.n_obs == 300
    assert d.selected == int(np.argmax(srs)) and d.sharpe == pytest.approx(max(srs))
    assert d.var_sharpes == pytest.approx(np.var(srs, ddof=1))
    assert d.sr0 == pytest.approx(expected_max_sharpe(6, np.var(srs, ddof=1)))
    picked = deflated_sharpe_from_trials(m, selected=5)
    assert math.isnan(picked.dsr) and "no variance" in picked.reason
    with pytest.raises(ValueError, match="trial 2"):
        bad = m.copy()
        bad[10, 2] = np.nan
        deflated_sharpe_from_trials(bad)


# ------------------------------------------------------------------------------------- PBO
HAND = np.array([[1.0, 0.0, 2.0],
                 [1.0, 0.0, -2.0],
                 [-1.0, 0.0, 0.0],
                 [0.0, 3.0, 0.0]])


def test_pbo_hand_computed_example():
    # 4 sessions, 3 trials, S = 4 blocks of one session, C(4, 2) = 6 splits, mean P&L (worked out by hand):
    # IS blocks -> IS-best trial -> its OOS rank (ties averaged) -> w = rank / 4
    # (0,1) -> 0 -> rank 1 -> 1/4;  (0,2) -> 2 -> rank 1 -> 1/4;  (0,3) -> 1 -> rank 2.5 -> 5/8
    # (1,2) -> 0 (tie with 1, first) -> rank 1 -> 1/4;  (1,3) -> 1 -> rank 1.5 -> 3/8;  (2,3) -> 1 -> 3/8
    res = pbo_cscv(HAND, n_blocks=4)
    w = np.array([1 / 4, 1 / 4, 5 / 8, 1 / 4, 3 / 8, 3 / 8])
    np.testing.assert_allclose(res.logits, np.log(w / (1 - w)), rtol=1e-12)
    assert res.pbo == pytest.approx(5 / 6)
    np.testing.assert_allclose(res.is_perf, [1, 1, 1.5, 0, 1.5, 1.5])
    np.testing.assert_allclose(res.oos_perf, [-0.5, -1, 0, 0.5, 0, 0])
    assert res.prob_oos_loss == pytest.approx(2 / 6)
    assert res.slope == pytest.approx(-10 / 41)  # OLS by hand: cov -5/12 over var 246/144
    assert res.n_combinations == 6 and res.n_trials == 3


def reference_pbo(m, s, metric):
    """CSCV written plainly from the paper, one split at a time (independent of the vectorised code)."""
    blocks = np.array_split(np.arange(len(m)), s)
    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        is_rows = np.concatenate([blocks[i] for i in combo])
        oos_rows = np.concatenate([blocks[i] for i in range(s) if i not in combo])

        def perf(rows):
            sub = m[rows]
            if metric == "mean":
                return sub.mean(axis=0)
            sd = sub.std(axis=0, ddof=1)
            return np.where(sd > 0, sub.mean(axis=0) / np.where(sd > 0, sd, 1), 0.0)

        p_is, p_oos = perf(is_rows), perf(oos_rows)
        best = int(np.argmax(p_is))
        rank = scipy.stats.rankdata(p_oos, method="average")[best]
        w = rank / (m.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    return np.array(logits)


@pytest.mark.parametrize("metric", ["mean", "sharpe"])
def test_pbo_matches_a_plain_reference_loop(metric):
    rng = np.random.default_rng(4)
    m = rng.normal(0, 1, (83, 7)) + rng.normal(0, 0.1, 7)
    res = pbo_cscv(m, n_blocks=8, metric=metric)
    np.testing.assert_allclose(res.logits, reference_pbo(m, 8, metric), rtol=1e-9, atol=1e-12)


def test_pbo_near_one_half_under_the_null():
    rng = np.random.default_rng(5)
    pbos = [pbo_cscv(rng.normal(size=(240, 16)), n_blocks=16).pbo for _ in range(16)]
    assert 0.38 <= np.mean(pbos) <= 0.62
    # odd N: the IS-best is at or below the OOS median with probability ((N + 1) / 2) / N = 0.6 for N = 5
    pbos5 = [pbo_cscv(rng.normal(size=(120, 5)), n_blocks=8).pbo for _ in range(40)]
    assert 0.5 <= np.mean(pbos5) <= 0.7


def test_pbo_low_with_a_real_edge():
    rng = np.random.default_rng(6)
    for _ in range(5):
        m = rng.normal(size=(240, 16))
        m[:, 9] += 0.3  # one trial with a real edge
        res = pbo_cscv(pd.DataFrame(m), n_blocks=16)
        assert res.pbo < 0.1
        assert res.prob_oos_loss < 0.1


def test_pbo_argument_checks():
    m = np.zeros((20, 3))
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(m, n_blocks=5)
    with pytest.raises(ValueError, match="2 trials"):
        pbo_cscv(np.zeros((20, 1)))
    with pytest.raises(ValueError, match="fewer blocks"):
        pbo_cscv(m, n_blocks=22)
    flat = pbo_cscv(m, n_blocks=4)  # every trial flat: all tied, the IS-best sits at the OOS median
    assert flat.pbo == 1.0 and math.isnan(flat.slope)
