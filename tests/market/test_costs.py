"""The market model: hand-computed costs, participation cap, zero volume, flat model, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intradayjules.config import MarketConfig
from intradayjules.market import BarQuote, MarketModel, MarketState, Order

STATE = MarketState(half_spread_bps=5.0, sigma_daily=0.02, adv_usd=1e7, tier="mid")


def test_costs_by_hand():
    # 1,000 shares at $100 = $100,000 notional = 1 % of ADV
    f = MarketModel().fill(Order("X", 1000), BarQuote(open=100.0, volume=50_000), STATE)
    assert f.qty == 1000 and f.price == 100.0
    assert f.spread_cost == pytest.approx(100_000 * 5e-4)  # $50
    assert f.impact_cost == pytest.approx(1.0 * 0.02 * math.sqrt(0.01) * 100_000)  # $200
    assert f.fees == pytest.approx(100_000 * 0.5e-4)  # $5
    assert f.participation == pytest.approx(0.02)


def test_sell_costs_mirror_buy():
    m = MarketModel()
    b = m.fill(Order("X", 700), BarQuote(42.0, 1e6), STATE)
    s = m.fill(Order("X", -700), BarQuote(42.0, 1e6), STATE)
    assert s.qty == -700
    assert (s.spread_cost, s.impact_cost, s.fees) == pytest.approx((b.spread_cost, b.impact_cost, b.fees))


def test_impact_coefficient_scales_impact():
    a = MarketModel(MarketConfig(impact_coef=1.0)).fill(Order("X", 1000), BarQuote(100.0, 1e6), STATE)
    b = MarketModel(MarketConfig(impact_coef=2.5)).fill(Order("X", 1000), BarQuote(100.0, 1e6), STATE)
    assert b.impact_cost == pytest.approx(2.5 * a.impact_cost)
    assert b.spread_cost == a.spread_cost


def test_participation_cap_partial_fill():
    f = MarketModel(MarketConfig(participation_cap=0.10)).fill(Order("X", -10_000), BarQuote(20.0, 54_321), STATE)
    assert f.qty == -5432  # floor(0.10 * 54,321) shares, the rest unfilled
    assert f.unfilled == -10_000 + 5432
    assert f.spread_cost == pytest.approx(5432 * 20.0 * 5e-4)


def test_zero_volume_bar_fills_nothing():
    f = MarketModel().fill(Order("X", 500), BarQuote(10.0, 0.0), STATE)
    assert f.qty == 0 and f.total_cost == 0 and f.unfilled == 500


def test_must_complete_ignores_cap():
    f = MarketModel().fill(Order("X", 10_000, must_complete=True), BarQuote(10.0, 0.0), STATE)
    assert f.qty == 10_000 and f.impact_cost > 0


def test_flat_model_is_5_bps_in_full():
    m = MarketModel(MarketConfig(model="flat"))
    f = m.fill(Order("X", -3000), BarQuote(50.0, 0.0), STATE)
    assert f.qty == -3000
    assert f.fees == pytest.approx(3000 * 50 * 5e-4)
    assert f.spread_cost == 0 and f.impact_cost == 0


@pytest.mark.parametrize("field,state,bar", [
    ("state.adv_usd", MarketState(5.0, 0.02, 0.0), BarQuote(10.0, 100.0)),
    ("state.half_spread_bps", MarketState(float("nan"), 0.02, 1e6), BarQuote(10.0, 100.0)),
    ("bar.open", STATE, BarQuote(-1.0, 100.0)),
    ("bar.volume", STATE, BarQuote(10.0, -5.0)),
])
def test_bad_input_names_the_field(field, state, bar):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        MarketModel().fill(Order("ABC", 10), bar, state)


def test_fill_arrays_agrees_with_fill():
    m = MarketModel()
    rng = np.random.default_rng(0)
    q = rng.integers(-5000, 5000, 50).astype(float)
    p = rng.uniform(5, 300, 50)
    v = rng.choice([0.0, 100.0, 1e4, 1e6], 50)
    hs = rng.uniform(0, 30, 50)
    sg = rng.uniform(0.005, 0.05, 50)
    adv = rng.uniform(1e6, 1e9, 50)
    filled, sp, im, fe = m.fill_arrays(q, p, v, hs, sg, adv)
    for i in range(50):
        f = m.fill(Order("X", q[i]), BarQuote(p[i], v[i]), MarketState(hs[i], sg[i], adv[i]))
        assert (filled[i], sp[i], im[i], fe[i]) == pytest.approx((f.qty, f.spread_cost, f.impact_cost, f.fees))


sizes = st.floats(min_value=0, max_value=1e7, allow_nan=False)
prices = st.floats(min_value=0.5, max_value=5000)
sigmas = st.floats(min_value=0, max_value=0.2)
advs = st.floats(min_value=1e4, max_value=1e11)


@settings(max_examples=200, deadline=None)
@given(q=sizes, extra=st.floats(min_value=1, max_value=1e6), p=prices, s=sigmas, adv=advs,
       side=st.sampled_from([1.0, -1.0]))
def test_impact_grows_with_size_and_is_never_negative(q, extra, p, s, adv, side):
    m = MarketModel()
    st_ = MarketState(5.0, s, adv)  # volume 1e15: no cap
    a = m.fill(Order("X", side * q), BarQuote(p, 1e15), st_)
    b = m.fill(Order("X", side * (q + extra)), BarQuote(p, 1e15), st_)
    assert a.impact_cost >= 0 and a.spread_cost >= 0 and a.fees >= 0
    assert b.impact_cost >= a.impact_cost
    if s >= 1e-6:  # (a subnormal sigma underflows the product to 0)
        assert b.impact_cost > a.impact_cost


@settings(max_examples=100, deadline=None)
@given(p=prices, s=sigmas, adv=advs, v=st.floats(min_value=0, max_value=1e9))
def test_zero_size_costs_nothing(p, s, adv, v):
    f = MarketModel().fill(Order("X", 0.0), BarQuote(p, v), MarketState(30.0, s, adv))
    assert f.qty == 0 and f.impact_cost == 0 and f.total_cost == 0


@settings(max_examples=200, deadline=None)
@given(q=st.floats(min_value=-1e7, max_value=1e7), p=prices, v=st.floats(min_value=0, max_value=1e8),
       cap=st.floats(min_value=0.01, max_value=1.0))
def test_fill_never_exceeds_order_or_cap(q, p, v, cap):
    f = MarketModel(MarketConfig(participation_cap=cap)).fill(Order("X", q), BarQuote(p, v), STATE)
    assert abs(f.qty) <= abs(q)
    assert abs(f.qty) <= cap * v + 1e-9
    assert f.qty == 0 or np.sign(f.qty) == np.sign(q)


@settings(max_examples=100, deadline=None)
@given(q=st.floats(min_value=1, max_value=1e6), p=prices, s=st.floats(min_value=1e-4, max_value=0.2), adv=advs)
def test_impact_is_square_root_law(q, p, s, adv):
    m = MarketModel()
    st_ = MarketState(0.0, s, adv)
    a = m.fill(Order("X", q), BarQuote(p, 1e15), st_).impact_cost
    b = m.fill(Order("X", 4 * q), BarQuote(p, 1e15), st_).impact_cost
    assert b == pytest.approx(8 * a, rel=1e-9)  # notional x sqrt(notional): 4 * sqrt(4)
