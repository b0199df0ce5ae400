"""Risk limits: daily drawdown 2 %, hourly turnover 5x, daily turnover 20x (hand-built sequences)."""

from __future__ import annotations

import pytest

from intradayjules.config import RiskConfig
from intradayjules.risk.limits import DAILY_DRAWDOWN, DAILY_TURNOVER, HOURLY_TURNOVER, RiskLimits


def info(equity, notional=0.0):
    return {"equity": equity, "traded_notional": notional}


def test_defaults_from_config():
    lim = RiskLimits.from_config(RiskConfig())
    assert (lim.daily_drawdown, lim.hourly_turnover, lim.daily_turnover) == (0.02, 5.0, 20.0)


def test_daily_drawdown_from_running_peak():
    lim = RiskLimits()
    lim.start_day(100.0)
    assert lim.update(info(105.0)) == ()
    assert lim.update(info(103.0)) == ()  # 1.9 % below the 105 peak
    assert lim.update(info(102.8)) == (DAILY_DRAWDOWN,)  # 2.1 %
    assert lim.breaches[DAILY_DRAWDOWN] == 1
    lim.start_day(100.0)  # a new day: fresh peak
    assert lim.update(info(99.0)) == ()
    assert lim.update(info(98.0)) == (DAILY_DRAWDOWN,)  # exactly 2 % (from the day's start) breaches


def test_hourly_turnover_rolls_off_after_an_hour():
    lim = RiskLimits(hourly_turnover=5.0, daily_turnover=100.0)
    lim.start_day(1_000.0)
    # 5-min steps, 450 USD each = 0.45x; 12 steps (one hour) = 5.4x > 5x, 11 steps = 4.95x
    got = [lim.update(info(1_000.0, 450.0)) for _ in range(12)]
    assert got[:11] == [()] * 11 and got[11] == (HOURLY_TURNOVER,)
    assert lim.hourly == pytest.approx(5.4)
    # a quiet step: the first fill (t=300 s) leaves the window (t - 3600 = 300 is excluded)
    assert lim.update(info(1_000.0, 0.0)) == ()
    assert lim.hourly == pytest.approx(11 * 0.45)
    for _ in range(11):
        lim.update(info(1_000.0, 0.0))
    assert lim.hourly == 0.0
    assert lim.daily == pytest.approx(5.4)


def test_explicit_times_and_daily_turnover():
    lim = RiskLimits(hourly_turnover=50.0, daily_turnover=20.0)
    lim.start_day(100.0)
    # 1,000 USD (10x) at 09:30 and 11:00 and 12:31: hourly never more than 10x; the day reaches 30x
    assert lim.update(info(100.0, 1_000.0), t=0) == ()
    assert lim.update(info(100.0, 1_000.0), t=5_400) == ()
    assert lim.hourly == pytest.approx(10.0)
    assert lim.update(info(100.0, 1_000.0), t=10_860) == (DAILY_TURNOVER,)
    assert lim.breaches[DAILY_TURNOVER] == 1


def test_bad_inputs():
    with pytest.raises(ValueError, match="daily_drawdown"):
        RiskLimits(daily_drawdown=0)
    lim = RiskLimits()
    with pytest.raises(ValueError, match="start-of-day equity"):
        lim.start_day(0.0)
    with pytest.raises(KeyError, match="traded_notional"):
        lim.update({"equity": 1.0})
