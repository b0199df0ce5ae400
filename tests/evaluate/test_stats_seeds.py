"""Seed-aware comparisons (evaluate/seeds.py) against closed forms and simulations.

* The two-level bootstrap's variance (block length 1: i.i.d. draws of seeds and of sessions) equals its
  closed form ``trace(E[uu'] X E[vv'] X') - mean^2`` with the multinomial moments ``E[u_s u_s'] =
  (1 - 1/S + [s = s']) / S^2``, for one arm and for a two-arm contrast that shares the session draws.
* Coverage: with seed effects, the two-level interval covers the true contrast at about the nominal rate,
  and a session-only bootstrap of seed-averaged P&L does not (shown, so the test can fail).
"""

from __future__ import annotations

import numpy as np
import pytest

from intradayjules.evaluate.paired import paired_comparison
from intradayjules.evaluate.seeds import (arm_summary, difference, main_effect_weights, ratio_contrast,
                                          resampled_means)


def second_moment(n: int) -> np.ndarray:
    return (np.full((n, n), 1.0 - 1.0 / n) + np.eye(n)) / n**2


def closed_form_var(x: np.ndarray) -> float:
    s, t = x.shape
    return float(np.trace(second_moment(s) @ x @ second_moment(t) @ x.T) - x.mean() ** 2)


def test_one_arm_bootstrap_variance_matches_the_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (4, 15)) + rng.normal(0, 2, (4, 1))
    draws = resampled_means({"a": {"x": x}}, n_resamples=60_000, block_length=1.0, seed=3)["a"]["x"]
    assert draws.mean() == pytest.approx(x.mean(), abs=0.02)
    assert draws.var() == pytest.approx(closed_form_var(x), rel=0.03)


def test_contrast_variance_matches_the_closed_form_with_shared_sessions():
    rng = np.random.default_rng(2)
    day = rng.normal(0, 1.5, 12)  # a common day effect: the session draw is shared
    a = rng.normal(0, 1, (3, 12)) + day
    b = rng.normal(0, 1, (5, 12)) + day
    means = resampled_means({"a": {"x": a}, "b": {"x": b}}, n_resamples=80_000, block_length=1.0, seed=4)
    d = means["a"]["x"] - means["b"]["x"]
    cov = float(a.mean(0) @ second_moment(12) @ b.mean(0) - a.mean() * b.mean())
    expected = closed_form_var(a) + closed_form_var(b) - 2 * cov
    assert d.var() == pytest.approx(expected, rel=0.03)
    # sharing the session draw matters here: independent session draws would give a larger variance
    assert expected < closed_form_var(a) + closed_form_var(b) - 0.1


def test_point_estimates_summaries_and_weights_by_hand():
    a = np.array([[1.0, 3.0, 5.0], [3.0, 5.0, 7.0]])  # seed means 3 and 5
    b = np.array([[0.0, 0.0, 3.0]])
    c = difference(a, b, name_a="a", name_b="b", n_resamples=2000)
    assert c.estimate == pytest.approx(4.0 - 1.0)
    assert c.arms["a"].per_seed == (3.0, 5.0) and c.arms["a"].sd == pytest.approx(np.sqrt(2.0))
    assert np.isnan(c.arms["b"].sd)
    assert c.ci_low <= c.estimate <= c.ci_high
    s = arm_summary(a)
    assert (s.mean, s.describe()) == (4.0, "4.00 +- 1.41 (seeds: 3.00, 5.00)")
    cells = {"c00": {"f": 0, "g": 0}, "c01": {"f": 0, "g": 1}, "c10": {"f": 1, "g": 0}, "c11": {"f": 1, "g": 1}}
    assert main_effect_weights(cells, "f", 1) == {"c10": 0.5, "c11": 0.5, "c00": -0.5, "c01": -0.5}
    with pytest.raises(ValueError, match="same sessions"):
        difference(a, np.ones((2, 4)))
    with pytest.raises(ValueError, match="seed row 0, session 1 is nan"):
        arm_summary(np.array([[1.0, np.nan]]))


def test_ratio_contrast_point_and_zero_denominator():
    num = {"a": np.array([[1.0, 1.0], [0.0, 2.0]]), "b": np.zeros((2, 2))}
    den = {"a": np.array([[2.0, 2.0], [2.0, 2.0]]), "b": np.zeros((2, 2))}  # b never traded: share 0
    c = ratio_contrast(num, den, {"a": 1.0, "b": -1.0}, n_resamples=2000, block_length=1.0)
    assert c.estimate == pytest.approx(4.0 / 8.0)
    assert c.arms["a"].per_seed == (0.5, 0.5) and c.arms["b"].mean == 0.0


@pytest.mark.slow
def test_two_level_interval_covers_where_a_session_only_bootstrap_does_not():
    rng = np.random.default_rng(7)
    seeds, days, true = 8, 40, 0.5
    hit_two, hit_sessions, n = 0, 0, 150
    for i in range(n):
        day = rng.normal(0, 2, days)  # common to both arms (paired days)
        a = true + rng.normal(0, 1, (seeds, 1)) + day + rng.normal(0, 2, (seeds, days))
        b = rng.normal(0, 1, (seeds, 1)) + day + rng.normal(0, 2, (seeds, days))
        c = difference(a, b, n_resamples=2000, seed=i, block_length=1.0)
        hit_two += c.ci_low <= true <= c.ci_high
        p = paired_comparison(a.mean(0), b.mean(0), n_resamples=2000, seed=i, block_length=1.0)
        hit_sessions += p.ci_low <= true <= p.ci_high
    assert hit_two / n >= 0.85
    assert hit_sessions / n <= 0.82  # the seed spread is invisible to a session-only bootstrap
