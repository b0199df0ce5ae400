"""RiskTracker: incremental updates against an independent batch (numpy/pandas) recomputation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intradayjules.risk.metrics import RiskInputError, RiskTracker


def make_info(equity, notional=0.0, tier="liquid", spread=0.0, impact=0.0, commission=0.0,
              stale=False, secs=0.0, participation=0.0, adv_participation=0.0, n_fills=None):
    by_tier = {"liquid": 0.0, "mid": 0.0, "illiquid": 0.0}
    return {
        "equity": equity, "cash": equity, "positions": np.zeros(1), "exposure": 0.0, "drawdown": 0.0,
        "step_pnl": 0.0, "traded_notional": notional, "traded_notional_by_symbol": {"X": notional},
        "traded_notional_by_tier": by_tier | {tier: notional},
        "costs": {"spread": spread, "impact": impact, "commission": commission},
        "costs_by_tier": by_tier | {tier: spread + impact + commission},
        "participation": participation, "adv_participation": adv_participation, "unfilled_notional": 0.0,
        "stale_decision": stale, "stale_share": float(stale), "secs_since_trade": secs,
        "n_fills": int(notional > 0) if n_fills is None else n_fills, "session": "2025-01-02",
        "tiers": (tier,),
    }


def batch(infos, initial_equity, window):
    """Independent reference: vectorised recomputation of one episode."""
    eq = np.array([i["equity"] for i in infos], dtype=float)
    peak = np.maximum.accumulate(np.concatenate([[initial_equity], eq]))[1:]
    dd = np.clip(1.0 - eq / peak, 0.0, 1.0)
    ulcer = np.sqrt(pd.Series(dd**2).rolling(window, min_periods=1).mean().to_numpy())
    notional = np.array([i["traded_notional"] for i in infos])
    impact = np.array([i["costs"]["impact"] for i in infos])
    ill = np.array([i["traded_notional_by_tier"]["illiquid"] for i in infos])
    stale = np.array([i["stale_decision"] for i in infos], dtype=float)
    tot = notional.sum()
    return {
        "drawdown": dd, "ulcer": ulcer, "max_drawdown": dd.max(), "mean_ulcer_index": ulcer.mean(),
        "impact_bps": impact.sum() / tot * 1e4 if tot > 0 else 0.0,
        "illiquid_share": ill.sum() / tot if tot > 0 else 0.0, "stale_share": stale.mean(),
    }


def test_hand_computed_episode():
    # equity 100 -> 110 -> 99 -> 88 -> 121 (initial 100), window 2
    t = RiskTracker(ulcer_window=2)
    t.start_episode(100.0)
    seen = []
    for e in (110.0, 99.0, 88.0, 121.0):
        t.update(make_info(e))
        seen.append((t.drawdown, t.ulcer_index, t.drawdown_increase))
    # drawdowns 0, 0.1, 0.2, 0 (peaks 110, 110, 110, 121)
    assert [round(s[0], 12) for s in seen] == [0.0, 0.1, 0.2, 0.0]
    # ulcer over the last 2 squared drawdowns: sqrt(0/1), sqrt(.01/2), sqrt(.05/2), sqrt(.04/2)
    assert seen[0][1] == 0.0
    assert seen[1][1] == pytest.approx(math.sqrt(0.01 / 2))
    assert seen[2][1] == pytest.approx(math.sqrt(0.05 / 2))
    assert seen[3][1] == pytest.approx(math.sqrt(0.04 / 2))
    assert [round(s[2], 12) for s in seen] == [0.0, 0.1, 0.1, 0.0]
    assert t.max_drawdown == pytest.approx(0.2)


def test_costs_staleness_liquidity_by_hand():
    t = RiskTracker()
    t.start_episode(1e6)
    t.update(make_info(1e6, notional=10_000, tier="liquid", impact=1.0, spread=0.5, stale=False, secs=0,
                       participation=0.01, adv_participation=1e-5))
    t.update(make_info(1e6, notional=30_000, tier="illiquid", impact=9.0, spread=9.0, stale=True, secs=900,
                       participation=0.05, adv_participation=1.5e-2))
    t.update(make_info(1e6, secs=float("nan")))  # no trade; NaN secs (before a first trade) ignored
    s = t.snapshot()
    assert s["impact_bps"] == pytest.approx(10.0 / 40_000 * 1e4)  # 2.5 bps
    assert s["spread_bps"] == pytest.approx(9.5 / 40_000 * 1e4)
    assert s["illiquid_share"] == pytest.approx(0.75)
    assert s["stale_share"] == pytest.approx(1 / 3)
    assert s["secs_since_trade"] == 900 and s["max_secs_since_trade"] == 900
    assert s["mean_participation"] == pytest.approx(0.03)  # over the 2 steps with fills
    assert s["max_participation"] == pytest.approx(0.05)
    assert s["adv_participation"] == pytest.approx(1.5e-2 + 1e-5)  # one episode
    assert t.step_illiquid_cost == 0.0 and t.step_impact_cost == 0.0  # last step traded nothing


finite_equity = st.floats(min_value=1e-2, max_value=1e7, allow_nan=False, allow_infinity=False)
step = st.fixed_dictionaries({
    "equity": finite_equity,
    "notional": st.one_of(st.just(0.0), st.floats(1.0, 1e6)),
    "tier": st.sampled_from(["liquid", "mid", "illiquid"]),
    "impact": st.floats(0.0, 100.0),
    "stale": st.booleans(),
})


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=120), window=st.integers(1, 30),
       initial=st.one_of(st.none(), finite_equity))
def test_incremental_equals_batch(steps, window, initial):
    infos = [make_info(s["equity"], notional=s["notional"], tier=s["tier"], impact=s["impact"], stale=s["stale"])
             for s in steps]
    t = RiskTracker(ulcer_window=window)
    t.start_episode(initial)
    dds, ulcers = [], []
    for info in infos:
        t.update(info)
        dds.append(t.drawdown)
        ulcers.append(t.ulcer_index)
        assert 0.0 <= t.drawdown <= 1.0
        assert t.ulcer_index >= 0.0
        assert t.ulcer_index <= t.episode_max_drawdown + 1e-12  # rms of values <= their max
    ref = batch(infos, initial if initial is not None else infos[0]["equity"], window)
    np.testing.assert_allclose(dds, ref["drawdown"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ulcers, ref["ulcer"], rtol=1e-9, atol=1e-12)
    s = t.snapshot()
    for key in ("max_drawdown", "mean_ulcer_index", "impact_bps", "illiquid_share", "stale_share"):
        assert s[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key


def test_no_drift_over_long_run():
    """100k steps: the running sum of squares is re-summed every window, so it matches batch exactly."""
    rng = np.random.default_rng(0)
    eq = 1e6 * np.exp(np.cumsum(rng.normal(0, 0.002, 100_000)))
    t = RiskTracker(ulcer_window=78)
    t.start_episode(1e6)
    info = make_info(1e6)
    for e in eq:
        info["equity"] = float(e)
        t.update(info)
    peak = np.maximum.accumulate(np.concatenate([[1e6], eq]))[1:]
    dd = 1 - eq / peak
    assert t.ulcer_index == pytest.approx(math.sqrt(np.mean(dd[-78:] ** 2)), rel=1e-10)
    assert t.max_drawdown == pytest.approx(dd.max(), rel=1e-12)


def test_ulcer_returns_to_exactly_zero_after_recovery():
    """After a deep drawdown and 2 windows at new peaks the ulcer index is exactly 0, not a residue."""
    rng = np.random.default_rng(1)
    t = RiskTracker(ulcer_window=10)
    t.start_episode(1e6)
    for e in 1e6 * (1 - rng.uniform(0.05, 0.6, 37)):
        t.update(make_info(float(e)))
    assert t.ulcer_index > 0.05
    for k in range(20):
        t.update(make_info(2e6 + k))
    assert t.drawdown == 0.0 and t.ulcer_index == 0.0


def test_episode_reset_vs_cumulative():
    t = RiskTracker(ulcer_window=10)
    t.start_episode(100.0)
    for e in (100.0, 80.0, 90.0):  # max dd 0.2
        t.update(make_info(e, notional=100.0, impact=1.0))
    t.start_episode(100.0)  # new session: fresh peak
    assert t.drawdown == 0.0 and t.ulcer_index == 0.0 and t.episode_max_drawdown == 0.0
    t.update(make_info(95.0, notional=300.0, impact=1.0))
    t.start_episode(100.0)  # an auto-reset that is never stepped
    s = t.snapshot()
    assert s["episodes"] == 2
    assert s["max_drawdown"] == pytest.approx(0.2)  # cumulative over episodes
    assert s["episode_max_drawdown"] == 0.0
    assert s["impact_bps"] == pytest.approx(4.0 / 600.0 * 1e4)  # pooled over both episodes
    t.clear()
    assert t.snapshot()["steps"] == 0 and t.max_drawdown == 0.0 and t.notional == 0.0


def test_without_initial_equity_first_equity_is_the_peak():
    t = RiskTracker()
    t.start_episode()
    t.update(make_info(90.0))
    assert t.drawdown == 0.0
    t.update(make_info(81.0))
    assert t.drawdown == pytest.approx(0.1)


def test_small_equity_values():
    t = RiskTracker()
    t.start_episode(1.0)
    for e in (1.5, 1.2):
        t.update(make_info(e))
    assert t.drawdown == pytest.approx(0.2)


def test_total_loss_is_drawdown_one():
    t = RiskTracker()
    t.start_episode(100.0)
    t.update(make_info(-5.0))
    assert t.drawdown == 1.0


def test_missing_field_is_named():
    t = RiskTracker()
    info = make_info(100.0)
    del info["costs"]
    with pytest.raises(RiskInputError, match="'costs'"):
        t.update(info)
    info = make_info(100.0)
    info["equity"] = "lots"
    with pytest.raises(RiskInputError, match="wrong type"):
        t.update(info)


def test_bad_window():
    with pytest.raises(ValueError, match="ulcer_window"):
        RiskTracker(ulcer_window=0)
