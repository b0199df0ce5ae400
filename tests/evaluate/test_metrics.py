"""Evaluation statistics: return statistics against empyrical-reloaded, trade statistics by hand."""

from __future__ import annotations

import json
import math

import empyrical
import empyrical.stats
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intradayjules.errors import DataError
from intradayjules.evaluate.metrics import (daily_returns, json_safe, performance, return_stats, round_trips,
                                            trade_stats)


def same(a, b, rel=1e-9):
    if math.isnan(b):
        return math.isnan(a)
    if math.isinf(b):
        return a == b
    return a == pytest.approx(b, rel=rel, abs=1e-12)


def check_against_empyrical(r):
    r = np.asarray(r, dtype=float)
    got = return_stats(r)
    if len(r) >= 2 and r.max() == r.min():  # the one convention: no variance -> NaN (empyrical: +-inf or NaN)
        assert math.isnan(got["sharpe"])
    else:
        assert same(got["sharpe"], empyrical.sharpe_ratio(r))
    assert same(got["sortino"], empyrical.sortino_ratio(r))
    assert same(got["calmar"], empyrical.calmar_ratio(r), rel=1e-7)  # 1/drawdown amplifies rounding
    assert same(got["max_drawdown"], -empyrical.max_drawdown(r))
    assert same(got["annual_return"], empyrical.annual_return(r))
    assert same(got["total_return"], empyrical.cum_returns_final(r))
    dd = -np.asarray(empyrical.stats.drawdown_series(r))  # empyrical's drawdowns, negated
    assert same(got["ulcer_index"], float(np.sqrt(np.mean(dd**2))))


@pytest.mark.parametrize("seed", range(5))
def test_matches_empyrical_on_random_daily_returns(seed):
    rng = np.random.default_rng(seed)
    check_against_empyrical(rng.normal(0.0005, 0.01, 252))


def test_matches_empyrical_on_edge_series():
    check_against_empyrical([0.01, 0.02, 0.005])  # no drawdown: calmar NaN, sortino inf
    check_against_empyrical([0.0, 0.0, 0.0])  # flat: sharpe NaN
    check_against_empyrical([-0.01, -0.01, -0.01])  # constant loss: sharpe NaN (empyrical: -inf)
    check_against_empyrical([0.01, -0.02])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-0.2, 0.2, allow_nan=False).filter(lambda x: x == 0 or abs(x) > 1e-6), min_size=2,
                max_size=60))
def test_matches_empyrical_property(r):
    # (returns below 1e-6 in size are excluded: there the two implementations' rounding, not their formulas, differ)
    check_against_empyrical(r)


def test_daily_returns_from_intraday_equity():
    idx = pd.DatetimeIndex(["2025-01-02 14:35", "2025-01-02 20:55", "2025-01-03 14:35", "2025-01-03 20:55"],
                           tz="UTC")
    eq = pd.Series([101.0, 102.0, 99.0, 96.9], index=idx)
    r = daily_returns(eq, initial_equity=100.0)
    assert list(r.index.astype(str)) == ["2025-01-02", "2025-01-03"]
    np.testing.assert_allclose(r.to_numpy(), [0.02, 96.9 / 102.0 - 1])
    r2 = daily_returns(eq, initial_equity=100.0, reset_daily=True)
    np.testing.assert_allclose(r2.to_numpy(), [0.02, -0.031])
    # explicit session labels
    r3 = daily_returns(eq.reset_index(drop=True), 100.0, sessions=["a", "a", "b", "b"])
    np.testing.assert_allclose(r3.to_numpy(), r.to_numpy())
    with pytest.raises(DataError, match="line 2"):
        daily_returns(pd.Series([1.0, np.nan]), 1.0)


def trades_frame(rows):
    return pd.DataFrame(rows, columns=["step", "symbol", "qty", "price", "spread_cost", "impact_cost",
                                       "commission", "tier", "participation"])


def test_round_trips_by_hand():
    t = trades_frame([
        # A: buy 10 @ 100 (cost 1), sell 10 @ 103 (cost 1): +30 - 2 = +28, held 5 bars
        (0, "A", 10, 100.0, 0.5, 0.5, 0.0, "liquid", 0.01),
        (5, "A", -10, 103.0, 0.5, 0.5, 0.0, "liquid", 0.01),
        # B: short 4 @ 50, flip with buy 12 @ 52 (cost 3): closes the short (-8 - 1), opens long 8 (cost 2)
        (2, "B", -4, 50.0, 0.0, 0.0, 0.0, "illiquid", 0.2),
        (6, "B", 12, 52.0, 1.5, 1.5, 0.0, "illiquid", 0.4),
        # ... then sell 8 @ 51 in two pieces: -8 - 2 (rest of flip cost) ... = 8*(51-52) - 2 = -10
        (8, "B", -5, 51.0, 0.0, 0.0, 0.0, "illiquid", 0.1),
        (9, "B", -3, 51.0, 0.0, 0.0, 0.0, "illiquid", 0.1),
        # C: opened and never closed
        (3, "C", 7, 20.0, 0.0, 0.0, 0.1, "mid", 0.05),
    ])
    rt = round_trips(t).sort_values(["symbol", "open_step"]).reset_index(drop=True)
    assert list(rt["symbol"]) == ["A", "B", "B"]
    np.testing.assert_allclose(rt["pnl"], [28.0, -9.0, -10.0])
    assert list(rt["holding_bars"]) == [5, 4, 3]
    assert rt.attrs["open_trades"] == 1
    s = trade_stats(t)
    assert s["n_trades"] == 7 and s["n_round_trips"] == 3 and s["open_trades"] == 1
    assert s["win_rate"] == pytest.approx(1 / 3)
    assert s["profit_factor"] == pytest.approx(28.0 / 19.0)
    assert s["avg_holding_bars"] == pytest.approx(4.0)
    notional = 1000 + 1030 + 200 + 624 + 255 + 153 + 140
    assert s["traded_notional"] == pytest.approx(notional)
    assert s["illiquid_trade_share"] == pytest.approx((200 + 624 + 255 + 153) / notional)
    assert s["costs"]["spread"] == pytest.approx(2.5 / notional * 1e4)
    assert s["costs"]["impact"] == pytest.approx(2.5 / notional * 1e4)
    assert s["costs"]["commission"] == pytest.approx(0.1 / notional * 1e4)
    assert s["avg_participation"] == pytest.approx((0.01 + 0.01 + 0.2 + 0.4 + 0.1 + 0.1 + 0.05) / 7)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.floats(1.0, 200.0), st.floats(0.0, 5.0)), min_size=1,
                max_size=40))
def test_round_trip_pnl_adds_up_to_the_cash_flow_of_a_closed_book(fills):
    """Independent identity: when the book ends flat, round-trip P&L sums to all cash flows."""
    rows = [(i, "X", q, px, c, 0.0, 0.0, "mid", 0.0) for i, (q, px, c) in enumerate(fills) if q != 0]
    pos = sum(r[2] for r in rows)
    if pos != 0:
        rows.append((len(fills), "X", -pos, 100.0, 0.0, 0.0, 0.0, "mid", 0.0))
    if not rows:
        return
    t = trades_frame(rows)
    rt = round_trips(t)
    cash = float((-t["qty"] * t["price"] - t["spread_cost"]).sum())
    assert rt["pnl"].sum() == pytest.approx(cash, rel=1e-9, abs=1e-6)
    assert rt.attrs["open_trades"] == 0
    assert (rt["holding_bars"] >= 0).all()


def test_performance_end_to_end_and_json():
    rng = np.random.default_rng(3)
    idx = pd.date_range("2025-01-02 14:30", periods=78 * 5, freq="5min", tz="UTC")
    idx = idx[(idx.hour >= 14) & (idx.hour < 21)]  # bars of five days, grouped by New York date
    eq = pd.Series(1e6 * np.exp(np.cumsum(rng.normal(0, 1e-4, len(idx)))), index=idx)
    t = trades_frame([(0, "A", 100, 50.0, 1.0, 2.0, 0.5, "liquid", 0.01),
                      (10, "A", -100, 51.0, 1.0, 2.0, 0.5, "liquid", 0.01)])
    out = performance(eq, t, initial_equity=1e6)
    r = daily_returns(eq, 1e6).to_numpy()
    assert out["n_days"] == len(r) and out["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-9)
    assert out["max_intraday_drawdown"] >= out["max_drawdown"]
    assert out["turnover"] == pytest.approx((5000 + 5100) / eq.mean() / len(r))
    for key in ("total_return", "sharpe", "sortino", "calmar", "max_drawdown", "ulcer_index", "turnover",
                "n_trades", "win_rate", "profit_factor", "avg_holding_bars", "costs", "illiquid_trade_share",
                "avg_participation"):
        assert key in out, key
    text = json.dumps(json_safe(out), allow_nan=False)  # strict JSON
    assert json.loads(text)["n_trades"] == 2
    assert json_safe({"a": [float("inf"), np.float64(1.5), np.int64(2)]}) == {"a": [None, 1.5, 2]}


def test_no_trades():
    s = trade_stats(None)
    assert s["n_trades"] == 0 and math.isnan(s["win_rate"]) and s["illiquid_trade_share"] == 0.0


def test_bad_trade_list_names_column_and_row():
    t = trades_frame([(0, "A", 1, 10.0, 0.0, 0.0, 0.0, "liquid", 0.0), (1, "A", -1, -3.0, 0.0, 0.0, 0.0,
                                                                         "liquid", 0.0)])
    with pytest.raises(DataError, match=r"line 2.*'price'"):
        trade_stats(t)
    with pytest.raises(DataError, match="impact_cost"):
        trade_stats(t.drop(columns=["impact_cost"]))
    fees = t.rename(columns={"commission": "fees"})
    fees.loc[1, "price"] = 10.0
    assert trade_stats(fees)["n_trades"] == 2  # 'fees' (the flat model's cost) is accepted
