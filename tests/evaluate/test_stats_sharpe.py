"""The Sharpe convention, against empyrical-reloaded; Lo (2002) standard errors against simulation."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from intradayjules.evaluate.sharpe import (NO_VARIANCE, TOO_SHORT, TRADING_DAYS, lo_se_hac, lo_se_iid, moments,
                                           rowwise_sharpe, sharpe_estimate, sharpe_ratio, sharpe_reason)


@pytest.mark.parametrize("seed", range(5))
def test_sharpe_matches_empyrical(seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0004, 0.01, 250)
    assert sharpe_ratio(r) == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-12)
    assert sharpe_ratio(r, annualize=False) == pytest.approx(empyrical.sharpe_ratio(r, annualization=1), rel=1e-12)
    bps = pd.Series(r * 1e4, index=pd.bdate_range("2024-01-02", periods=250))
    assert sharpe_ratio(bps) == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-12)  # scale-free


def test_rowwise_sharpe_equals_sharpe_per_row():
    m = np.random.default_rng(0).normal(0.1, 1.0, (7, 50))
    m[3] = 0.0
    got = rowwise_sharpe(m)
    want = [sharpe_ratio(row, annualize=False) for row in m]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert math.isnan(got[3])


def test_no_variance_convention_is_nan_with_a_reason():
    flat = np.zeros(250)
    assert math.isnan(sharpe_ratio(flat)) and sharpe_reason(flat) == NO_VARIANCE
    # a constant non-zero P&L has no variance either: NaN here (empyrical returns inf), the one convention
    const = np.full(20, 3.0)
    assert math.isinf(empyrical.sharpe_ratio(const))
    assert math.isnan(sharpe_ratio(const)) and sharpe_reason(const) == NO_VARIANCE
    assert sharpe_reason([1.0]) == TOO_SHORT and math.isnan(sharpe_ratio([1.0]))
    est = sharpe_estimate(flat)
    assert est.reason == NO_VARIANCE and math.isnan(est.sharpe) and math.isnan(est.ci_low) and est.n == 250
    assert sharpe_reason([0.0, 1.0]) == ""


def test_non_finite_input_names_the_session():
    s = pd.Series([1.0, np.nan, 2.0], index=["2024-01-02", "2024-01-03", "2024-01-04"])
    with pytest.raises(ValueError, match="position 1.*2024-01-03"):
        sharpe_ratio(s)


def test_moments_match_scipy():
    x = np.random.default_rng(1).standard_t(5, 400)
    skew, kurt = moments(x)
    assert skew == pytest.approx(scipy.stats.skew(x, bias=True), rel=1e-10)
    assert kurt == pytest.approx(scipy.stats.kurtosis(x, fisher=False, bias=True), rel=1e-10)


@pytest.mark.parametrize("sr_daily", [0.1, 0.5])
def test_lo_iid_standard_error_matches_simulation(sr_daily):
    # Lo (2002), eq. for iid normal returns: Var(SR_hat) ~ (1 + SR^2/2) / T. Direct simulation: the sd of the
    # estimate over 20,000 samples of T = 250 iid normal returns (relative MC error ~0.5 %).
    t, reps = 250, 20_000
    rng = np.random.default_rng(42)
    x = rng.normal(sr_daily, 1.0, (reps, t))
    simulated = rowwise_sharpe(x).std()
    paper = math.sqrt((1 + sr_daily**2 / 2) / t)
    assert lo_se_iid(sr_daily, t) == pytest.approx(paper, rel=1e-12)
    assert lo_se_iid(sr_daily, t) == pytest.approx(simulated, rel=0.03)
    if sr_daily == 0.5:  # the SR^2/2 term matters here (6 %): the check can tell it is there
        assert abs(math.sqrt(1 / t) / simulated - 1) > 0.04


def test_lo_hac_standard_error_tracks_autocorrelation():
    # AR(1) returns, rho = 0.4: the iid formula understates the sd of SR_hat by ~sqrt((1-rho)/(1+rho)) = 0.65;
    # the GMM/Newey-West version must be close to the simulated sd (Bartlett weights bias it down a few %).
    t, reps, rho, mu = 1000, 4000, 0.4, 0.05
    rng = np.random.default_rng(7)
    e = rng.normal(size=(reps, t))
    x = np.empty((reps, t))
    x[:, 0] = e[:, 0] / math.sqrt(1 - rho**2)
    for k in range(1, t):
        x[:, k] = rho * x[:, k - 1] + e[:, k]
    x += mu
    simulated = rowwise_sharpe(x).std()
    hac = np.mean([lo_se_hac(row) for row in x[:300]])
    iid = np.mean([lo_se_iid(sharpe_ratio(row, annualize=False), t) for row in x[:300]])
    assert hac == pytest.approx(simulated, rel=0.12)
    assert iid < 0.75 * simulated
    # without dependence the two agree
    z = rng.normal(mu, 1.0, 2000)
    assert lo_se_hac(z) == pytest.approx(lo_se_iid(sharpe_ratio(z, annualize=False), 2000), rel=0.1)


def test_sharpe_estimate_fields_and_interval():
    rng = np.random.default_rng(3)
    x = pd.Series(rng.normal(2.0, 20.0, 250), index=pd.bdate_range("2024-01-02", periods=250))
    est = sharpe_estimate(x, seed=1)
    root = math.sqrt(TRADING_DAYS)
    assert est.sharpe == pytest.approx(empyrical.sharpe_ratio(x.to_numpy()), rel=1e-12)
    assert est.ci_low < est.sharpe < est.ci_high
    # iid normal data: the bootstrap interval is close to +-1.96 Lo SE
    assert (est.ci_high - est.ci_low) == pytest.approx(2 * 1.959964 * est.se_iid, rel=0.15)
    assert est.se_iid == pytest.approx(lo_se_iid(est.sharpe / root, 250) * root, rel=1e-12)
    assert est.mean == pytest.approx(x.mean()) and est.sd == pytest.approx(x.std())
    assert est.n_undefined_resamples == 0 and est.reason == ""
    again = sharpe_estimate(x, seed=1)
    assert (again.ci_low, again.ci_high) == (est.ci_low, est.ci_high)


@pytest.mark.slow
def test_sharpe_interval_coverage_by_simulation():
    # 95 % stationary-bootstrap interval for the Sharpe of 250 iid normal days: coverage near 95 %
    rng = np.random.default_rng(2024)
    true_daily = 0.1
    hits = 0
    reps = 300
    for i in range(reps):
        x = rng.normal(true_daily, 1.0, 250)
        est = sharpe_estimate(x, n_resamples=2000, seed=i)
        hits += est.ci_low <= true_daily * math.sqrt(TRADING_DAYS) <= est.ci_high
    assert 0.90 <= hits / reps <= 0.99
