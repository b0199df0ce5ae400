"""Composite, profiles, adaptive threshold and the early-stopping rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intradayjules.config import RISK_PROFILES, RiskConfig, config_from_dict
from intradayjules.errors import ConfigError
from intradayjules.risk.composite import AdaptiveThreshold, EarlyStopRule, RiskComposite, quantile


def snap(max_dd=0.0, ulcer=0.0, impact=0.0, stale=0.0, illiquid=0.0):
    return {"max_drawdown": max_dd, "mean_ulcer_index": ulcer, "impact_bps": impact, "stale_share": stale,
            "illiquid_share": illiquid}


def test_default_weights_are_the_original():
    w = RiskConfig().weights
    assert (w.drawdown, w.ulcer, w.impact, w.staleness, w.liquidity) == (0.30, 0.25, 0.25, 0.20, 0.0)
    r = RiskConfig()
    assert (r.stop_threshold, r.patience, r.illiquid_penalty_multiplier) == (0.75, 5, 3.0)


def test_composite_by_hand():
    s = snap(max_dd=0.01, ulcer=0.02, impact=5.0, stale=0.1, illiquid=0.5)
    # normalised: dd 0.01/0.02 = .5, ulcer 0.02/0.01 -> clipped 1, impact 5/25 = .2, stale .1, liquidity .5
    assert RiskComposite(RiskConfig()).normalised(s) == pytest.approx(
        {"drawdown": 0.5, "ulcer": 1.0, "impact": 0.2, "staleness": 0.1, "liquidity": 0.5})
    assert RiskComposite(RiskConfig()).score(s) == pytest.approx(0.3 * .5 + .25 * 1 + .25 * .2 + .2 * .1)
    cons = RiskComposite(RiskConfig(profile="conservative"))
    assert cons.score(s) == pytest.approx(.25 * .5 + .2 * 1 + .2 * .2 + .15 * .1 + .2 * .5)
    rep = cons.report(s)
    assert rep["risk/composite"] == pytest.approx(cons.score(s)) and rep["risk/liquidity"] == 0.5


def test_composite_extremes():
    c = RiskComposite()
    assert c.score(snap()) == 0.0
    assert c.score(snap(1.0, 1.0, 1e4, 1.0, 1.0)) == pytest.approx(1.0)


@settings(max_examples=200, deadline=None)
@given(vals=st.tuples(*[st.floats(0, 1e6, allow_nan=False)] * 3, st.floats(0, 1), st.floats(0, 1)),
       profile=st.sampled_from(list(RISK_PROFILES)))
def test_composite_in_unit_interval(vals, profile):
    v = RiskComposite(RiskConfig(profile=profile)).score(snap(*vals))
    assert 0.0 <= v <= 1.0 + 1e-12


def test_missing_snapshot_key():
    with pytest.raises(KeyError, match="impact_bps"):
        RiskComposite().score({"max_drawdown": 0, "mean_ulcer_index": 0, "stale_share": 0, "illiquid_share": 0})


def test_profiles_fill_unset_fields_and_explicit_values_win():
    cons = RiskConfig(profile="conservative")
    assert cons.stop_threshold == 0.60 and cons.patience == 3 and cons.illiquid_penalty_multiplier == 5.0
    assert cons.weights.liquidity == 0.20
    mixed = config_from_dict({"risk": {"profile": "conservative", "stop_threshold": 0.7,
                                       "weights": {"drawdown": 1, "ulcer": 0, "impact": 0, "staleness": 0}}})
    assert mixed.risk.stop_threshold == 0.7 and mixed.risk.weights.drawdown == 1.0
    assert mixed.risk.patience == 3
    off = RiskConfig(profile="off")
    assert not off.early_stop and off.drawdown_penalty == off.ulcer_penalty == off.impact_penalty == 0
    assert off.illiquid_penalty_multiplier == 1.0
    # switching profile on an existing config re-applies it to fields not set explicitly
    r = RiskConfig(profile="balanced")
    r.profile = "aggressive"
    assert r.stop_threshold == 0.90 and r.patience == 8


def test_profile_weights_sum_to_one_and_bad_weights_rejected():
    for name in RISK_PROFILES:
        w = RiskConfig(profile=name).weights
        assert w.drawdown + w.ulcer + w.impact + w.staleness + w.liquidity == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="risk.weights: weights must sum to 1"):
        config_from_dict({"risk": {"weights": {"drawdown": 0.5}}})
    with pytest.raises(ConfigError, match="threshold_floor"):
        config_from_dict({"risk": {"stop_threshold": 0.2}})  # floor 0.25 > threshold


@settings(max_examples=200, deadline=None)
@given(xs=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40), q=st.floats(0, 1))
def test_quantile_matches_numpy(xs, q):
    assert quantile(xs, q) == pytest.approx(float(np.quantile(xs, q)), rel=1e-9, abs=1e-6)


def test_adaptive_threshold():
    a = AdaptiveThreshold(0.75, adaptive=True, quantile_q=0.5, warmup=3, floor=0.25)
    # warm-up values are judged against the static threshold
    assert [a.observe(v) for v in (0.2, 0.6, 0.4)] == [0.75, 0.75, 0.75]
    assert a.warmed_up and a.value == pytest.approx(0.4)  # median of the warm-up sample
    assert a.observe(0.9) == pytest.approx(0.4) and a.value == pytest.approx(0.4)  # frozen
    low = AdaptiveThreshold(0.75, adaptive=True, quantile_q=0.9, warmup=2, floor=0.25)
    low.observe(0.01), low.observe(0.02)
    assert low.value == 0.25  # floor
    high = AdaptiveThreshold(0.75, adaptive=True, quantile_q=0.9, warmup=2, floor=0.25)
    high.observe(0.9), high.observe(0.95)
    assert high.value == 0.75  # never looser than static
    static = AdaptiveThreshold(0.75)
    assert [static.observe(v) for v in (0.1, 0.1, 0.1, 0.1)] == [0.75] * 4
    with pytest.raises(ValueError, match="floor"):
        AdaptiveThreshold(0.3, floor=0.5)


def test_early_stop_after_patience_consecutive_violations():
    rule = EarlyStopRule(AdaptiveThreshold(0.75), patience=3)
    seq = [0.8, 0.9, 0.5, 0.8, 0.8]
    assert [rule.update(v) for v in seq] == [False] * 5  # the 0.5 broke the run
    assert rule.update(0.76) is True  # third in a row
    assert rule.update(0.75) is False and rule.violations == 0  # equal is not above
    off = EarlyStopRule(AdaptiveThreshold(0.75), patience=1, enabled=False)
    assert off.update(1.0) is False and off.violations == 1
    assert EarlyStopRule.from_config(RiskConfig(profile="off")).enabled is False
    assert EarlyStopRule.from_config(RiskConfig()).patience == 5
