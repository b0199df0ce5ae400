"""Block bootstraps: index structure, agreement with the `arch` package, automatic block length, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from arch.bootstrap import CircularBlockBootstrap, StationaryBootstrap
from arch.bootstrap import optimal_block_length as arch_optimal_block_length

from intradayjules.evaluate.bootstrap import (bootstrap_distribution, circular_block_indices, interval_p_value,
                                              optimal_block_length, percentile_interval, resample_chunks,
                                              stationary_indices)
from intradayjules.evaluate.sharpe import rowwise_sharpe


def ar1(n, rho, seed, mu=0.0):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + e[t]
    return x + mu


def row_means(m):
    return m.mean(axis=1)


def test_stationary_indices_continue_blocks_with_probability_one_minus_one_over_length():
    n, b, length = 500, 400, 4.0
    idx = stationary_indices(n, b, length, rng=3)
    assert idx.shape == (b, n) and idx.min() >= 0 and idx.max() < n
    cont = idx[:, 1:] == (idx[:, :-1] + 1) % n
    # a new block starts with p = 1/L; it continues the old one by chance only with probability 1/n
    assert cont.mean() == pytest.approx(1 - 1 / length, abs=0.01)
    # every day equally likely: chi-square of the index counts against uniform
    counts = np.bincount(idx.ravel(), minlength=n)
    chi2 = ((counts - counts.mean()) ** 2 / counts.mean()).sum()
    assert chi2 < n - 1 + 5 * np.sqrt(2 * (n - 1))
    # block length 1 = iid bootstrap: continuations only by chance
    iid = stationary_indices(n, b, 1.0, rng=3)
    assert (iid[:, 1:] == (iid[:, :-1] + 1) % n).mean() < 0.01


def test_circular_blocks_have_exact_length_and_wrap():
    n, size = 23, 5
    idx = circular_block_indices(n, 300, size, rng=0)
    assert idx.shape == (300, n)
    pos = np.arange(1, n)
    inside = pos % size != 0  # positions that continue a block
    assert ((idx[:, 1:] == (idx[:, :-1] + 1) % n)[:, inside]).all()
    assert (idx == n - 1).any() and ((idx[:, 1:] == 0) & (idx[:, :-1] == n - 1)).any()  # wraps


def test_same_seed_same_resamples_and_chunks_cover_all():
    a = np.concatenate(list(resample_chunks(250, 10_000, block_length=3.0, seed=7)))
    b = np.concatenate(list(resample_chunks(250, 10_000, block_length=3.0, seed=7)))
    c = np.concatenate(list(resample_chunks(250, 10_000, block_length=3.0, seed=8)))
    assert a.shape == (10_000, 250) and (a == b).all() and not (a == c).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="block_length"):
        stationary_indices(10, 5, 0.5)
    with pytest.raises(ValueError, match="method"):
        next(resample_chunks(10, 5, method="moving"))
    with pytest.raises(ValueError, match="level"):
        percentile_interval(np.arange(10.0), 1.5)


@pytest.mark.parametrize("method,arch_cls", [("stationary", StationaryBootstrap),
                                             ("circular", CircularBlockBootstrap)])
@pytest.mark.parametrize("stat", ["mean", "sharpe"])
def test_intervals_match_arch_within_monte_carlo_error(method, arch_cls, stat):
    x = ar1(250, 0.5, seed=11, mu=0.3)
    length, reps = 6, 10_000
    ours_fn = row_means if stat == "mean" else rowwise_sharpe
    arch_fn = np.mean if stat == "mean" else (lambda v: v.mean() / v.std(ddof=1))
    draws, _ = bootstrap_distribution(x, ours_fn, n_resamples=reps, method=method, block_length=length, seed=1)
    ours = np.array(percentile_interval(draws, 0.95))
    theirs = arch_cls(length, x, seed=2).conf_int(arch_fn, reps=reps, method="percentile").ravel()
    sigma = draws.std()
    # quantile error of one 10k-draw interval end ~0.03 sigma; both sides: allow ~5 of its sd
    assert np.abs(ours - theirs).max() < 0.2 * sigma, (ours, theirs, sigma)
    # the check can fail: ignoring dependence (block 1) on this AR(0.5) series gives a much narrower interval
    iid_draws, _ = bootstrap_distribution(x, ours_fn, n_resamples=reps, method=method, block_length=1, seed=1)
    iid = np.array(percentile_interval(iid_draws, 0.95))
    assert np.abs(iid - theirs).max() > 0.5 * sigma


def test_optimal_block_length_matches_arch_except_on_borderline_lags():
    # arch normalises the autocorrelation at lag k by sums over n - k - 1 terms, the standard sample ACF (ours,
    # as R's np::b.star) by the lag-0 sum; the two pick a different m only when an autocorrelation sits on the
    # +-2 sqrt(log10(n)/n) band, so they must agree exactly on the large majority of series.
    agree, total = 0, 0
    for seed in range(4):
        for rho in (0.0, 0.2, 0.5, 0.8):
            for n in (60, 250, 1000):
                x = ar1(n, rho, seed=seed * 1000 + int(rho * 10) + n)
                ref = arch_optimal_block_length(x).iloc[0]
                got = optimal_block_length(x)
                same = (got.stationary == pytest.approx(ref["stationary"], rel=1e-9)
                        and got.circular == pytest.approx(ref["circular"], rel=1e-9))
                agree += same
                total += 1
    assert agree >= 0.9 * total, f"{agree} of {total} agree"


def test_optimal_block_length_grows_with_dependence_and_handles_flat():
    lengths = [np.median([optimal_block_length(ar1(500, rho, seed=s)).stationary for s in range(5)])
               for rho in (0.0, 0.5, 0.9)]
    assert lengths[0] < lengths[1] < lengths[2]
    assert optimal_block_length(np.zeros(100)).stationary == 1.0


def test_interval_p_value_agrees_with_interval():
    rng = np.random.default_rng(0)
    for shift in np.linspace(-4, 4, 33):
        draws = rng.normal(shift, 1.0, 4000)
        lo, hi = percentile_interval(draws, 0.95)
        p = interval_p_value(draws)
        if lo > 0.02 or hi < -0.02:  # clearly outside (away from quantile interpolation at the edge)
            assert p < 0.05
        elif lo < -0.02 and hi > 0.02:
            assert p > 0.05


def test_ten_thousand_resamples_of_250_days_well_under_a_second():
    x = np.random.default_rng(0).normal(size=250)
    bootstrap_distribution(x, row_means, n_resamples=100, seed=0)  # warm-up
    t = time.process_time()  # CPU time: insensitive to other load on the machine
    bootstrap_distribution(x, rowwise_sharpe, n_resamples=10_000, seed=0)
    assert time.process_time() - t < 1.0
