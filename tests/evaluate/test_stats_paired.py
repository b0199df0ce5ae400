"""Paired comparison of daily P&L: against scipy's t-test and arch's bootstrap, size and power by simulation."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from arch.bootstrap import StationaryBootstrap

from intradayjules.evaluate._distributions import betainc, student_t_sf
from intradayjules.evaluate.paired import paired_comparison, paired_t_test

DATES = pd.bdate_range("2024-01-02", periods=250)


def series(values):
    return pd.Series(values, index=DATES[: len(values)])


@pytest.mark.parametrize("df", [1, 2.5, 9, 30, 249])
@pytest.mark.parametrize("t", [-3.2, -0.4, 0.0, 0.7, 1.96, 5.0])
def test_student_t_tail_matches_scipy(t, df):
    assert student_t_sf(t, df) == pytest.approx(scipy.stats.t.sf(t, df), rel=1e-9, abs=1e-15)


def test_betainc_matches_scipy():
    for a, b, x in [(0.5, 0.5, 0.3), (2.0, 5.0, 0.9), (10.0, 0.5, 0.01), (125.0, 0.5, 0.97)]:
        assert betainc(a, b, x) == pytest.approx(scipy.special.betainc(a, b, x), rel=1e-10)


def test_t_test_p_value_matches_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.1, 1, 60), rng.normal(0.0, 1, 60)
    assert paired_t_test(a - b) == pytest.approx(scipy.stats.ttest_rel(a, b).pvalue, rel=1e-9)
    c = paired_comparison(a, b, n_resamples=2000)
    assert c.p_value_t == pytest.approx(scipy.stats.ttest_rel(a, b).pvalue, rel=1e-9)


def test_interval_matches_arch_on_the_daily_difference():
    rng = np.random.default_rng(5)
    common = rng.normal(0, 30, 250)  # the market moves both policies: pairing removes it
    a = common + rng.normal(1.0, 8, 250)
    b = common + rng.normal(0.0, 8, 250)
    c = paired_comparison(series(a), series(b), block_length=4, seed=3)
    ref = StationaryBootstrap(4, a - b, seed=9).conf_int(np.mean, reps=10_000, method="percentile").ravel()
    sigma = (c.ci_high - c.ci_low) / (2 * 1.96)
    assert abs(c.ci_low - ref[0]) < 0.2 * sigma and abs(c.ci_high - ref[1]) < 0.2 * sigma
    assert c.mean_diff == pytest.approx(np.mean(a - b))
    assert c.block_length == 4 and c.n == 250 and c.ci_low < c.mean_diff < c.ci_high
    # pairing matters: the unpaired spread of a and b is ~4x larger than the paired one
    assert (c.ci_high - c.ci_low) < 0.5 * 1.96 * 2 * np.sqrt((a.var() + b.var()) / 250)


def test_pairs_by_session_not_by_position():
    rng = np.random.default_rng(1)
    a, b = series(rng.normal(1, 5, 100)), series(rng.normal(0, 5, 100))
    shuffled = b.sample(frac=1.0, random_state=0)
    x, y = paired_comparison(a, b, seed=2), paired_comparison(a, shuffled, seed=2)
    assert (x.mean_diff, x.ci_low, x.ci_high, x.p_value) == (y.mean_diff, y.ci_low, y.ci_high, y.p_value)


def test_mismatched_sessions_raise_naming_one():
    a, b = series(np.ones(10)), series(np.ones(10))
    b.index = b.index.shift(1, freq="B")
    with pytest.raises(ValueError, match="2024-01-02.*in model but not in flat"):
        paired_comparison(a, b, name_a="model", name_b="flat")
    with pytest.raises(ValueError, match="10 vs 9 sessions"):
        paired_comparison(np.ones(10), np.ones(9))
    with pytest.raises(ValueError, match="position 3"):
        paired_comparison(series([1.0, 2.0, 3.0, np.inf]), series([0.0] * 4))


def test_degenerate_differences():
    flat = series(np.zeros(50))
    same = paired_comparison(flat, flat, name_b="flat")
    assert same.identical and same.mean_diff == 0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0
    shifted = paired_comparison(flat + 2.0, flat)
    assert not shifted.identical and shifted.ci_low == shifted.ci_high == 2.0 and shifted.p_value < 0.001
    assert math.isnan(shifted.p_value_t)
    short = paired_comparison([1.0], [0.0])
    assert short.reason == "fewer than 2 sessions" and math.isnan(short.mean_diff)


def _null_rejections(reps, n, rho, seed):
    rng = np.random.default_rng(seed)
    boot = ttest = 0
    for i in range(reps):
        e = rng.normal(size=n)
        d = np.empty(n)
        d[0] = e[0]
        for k in range(1, n):
            d[k] = rho * d[k - 1] + e[k]
        c = paired_comparison(d, np.zeros(n), n_resamples=999, seed=i)
        boot += c.ci_low > 0 or c.ci_high < 0
        ttest += c.p_value_t < 0.05
    return boot / reps, ttest / reps


def test_type_one_error_near_five_percent_under_the_null():
    # 200 iid null comparisons of 250 days: the 95 % interval excludes 0 about 5 % of the time
    # (binomial sd 1.5 %); the t-test too
    boot, ttest = _null_rejections(200, 250, 0.0, seed=123)
    assert 0.015 <= boot <= 0.10, boot
    assert 0.015 <= ttest <= 0.10, ttest


def test_block_bootstrap_rejects_less_than_the_t_test_under_autocorrelation():
    # AR(1) daily differences with rho = 0.4 (far more dependence than daily P&L shows): the iid t-test
    # rejects a true null ~20 % of the time (the sd of the mean is 1.5x what it assumes); the stationary
    # bootstrap with the automatic block length ~10 %: better, not exact at 250 days (docs/statistics.md)
    boot, ttest = _null_rejections(300, 250, 0.4, seed=7)
    assert boot <= 0.13, boot
    assert ttest >= 0.14, ttest
    assert ttest - boot >= 0.05


def test_power_against_a_real_edge():
    rng = np.random.default_rng(9)
    hits = 0
    for i in range(30):
        a = rng.normal(0.3, 1.0, 250)  # +0.3 sd per day
        c = paired_comparison(a, np.zeros(250), n_resamples=999, seed=i)
        hits += c.ci_low > 0 and c.p_value < 0.05
    assert hits >= 29


def test_paired_comparison_is_fast():
    a, b = np.random.default_rng(0).normal(size=(2, 250))
    paired_comparison(a, b, n_resamples=100)
    t = time.process_time()
    paired_comparison(a, b)  # 10,000 resamples
    assert time.process_time() - t < 1.0
