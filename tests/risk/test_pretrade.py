"""Pre-trade checks: each rule with an order that passes and one it cuts or refuses (expected sizes
computed by hand from the limits), the kill switch, the stale-feed halt, and properties: an accepted
order never breaches a limit, never exceeds the request, and a reduction is never cut by an exposure rule.
"""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intradayjules.config import EnvConfig, MarketConfig, RiskConfig
from intradayjules.market import Order
from intradayjules.risk import pretrade as pt
from intradayjules.risk.pretrade import PreTradeChecker, PreTradeLimits, RiskState

E0 = 1_000_000.0
NOW = 10_000.0
# generous limits: each test tightens the one it is about
LOOSE = PreTradeLimits(max_position=10.0, max_gross_exposure=100.0, max_order_notional=math.inf,
                       max_adv_participation=1.0, max_bar_participation=1.0, allow_illiquid=True,
                       hourly_turnover=1e6, daily_turnover=1e6, daily_drawdown=0.5, stale_bars=3)


def state(**positions) -> RiskState:
    s = RiskState()
    s.start_day(E0, t=NOW)
    # A: 100 USD, liquid; B: 50 USD, mid; IL: 10 USD, illiquid
    s.on_bar("A", 100.0, 1_000_000.0, NOW, adv_usd=1e9, tier="liquid")
    s.on_bar("B", 50.0, 100_000.0, NOW, adv_usd=5e7, tier="mid")
    s.on_bar("IL", 10.0, 20_000.0, NOW, adv_usd=2e6, tier="illiquid")
    for sym, q in positions.items():
        s.on_fill(sym, q)
    return s


def check(limits: PreTradeLimits, order: Order, s: RiskState):
    return PreTradeChecker(limits).check(order, s)


def lim(**kw) -> PreTradeLimits:
    return PreTradeLimits(**{**LOOSE.__dict__, **kw})


# ------------------------------------------------------------------------------------------ per rule
def test_max_position():
    L = lim(max_position=0.25)  # 250k USD = 2,500 sh of A
    s = state(A=1_000.0)
    d = check(L, Order("A", 1_500.0), s)
    assert d.ok and d.accepted == 1_500.0
    d = check(L, Order("A", 2_000.0), s)
    assert d.rules == (pt.MAX_POSITION,) and d.accepted == 1_500.0
    # a short flips up to the limit on the other side: 1,000 to close + 2,500
    d = check(L, Order("A", -5_000.0), s)
    assert d.rules == (pt.MAX_POSITION,) and d.accepted == -3_500.0


def test_max_position_never_blocks_a_reduction():
    L = lim(max_position=0.25)
    s = state(A=4_000.0)  # 400k USD: above the 250k limit (say after a price move)
    d = check(L, Order("A", -1_000.0), s)
    assert d.ok and d.accepted == -1_000.0
    d = check(L, Order("A", 1.0), s)
    assert d.rules == (pt.MAX_POSITION,) and d.accepted == 0.0


def test_max_gross_exposure():
    L = lim(max_gross_exposure=1.0)  # 1M USD; B holds 10,000 x 50 = 500k
    s = state(B=10_000.0)
    assert check(L, Order("A", 5_000.0), s).ok
    d = check(L, Order("A", 5_001.0), s)
    assert d.rules == (pt.MAX_GROSS,) and d.accepted == 5_000.0
    d = check(L, Order("B", 1.0), s)  # B itself: 500k + 50 of 1M is fine
    assert d.ok


def test_illiquid_tier():
    s = state(IL=500.0)
    d = check(lim(allow_illiquid=False), Order("IL", 100.0), s)
    assert d.rules == (pt.ILLIQUID,) and d.accepted == 0.0
    d = check(lim(allow_illiquid=False), Order("IL", -800.0), s)  # reduce to 0, not beyond
    assert d.rules == (pt.ILLIQUID,) and d.accepted == -500.0
    assert check(lim(allow_illiquid=False), Order("IL", -500.0), s).ok
    assert check(lim(allow_illiquid=True), Order("IL", 100.0), s).ok


def test_max_order_notional():
    L = lim(max_order_notional=50_000.0)  # 500 sh of A
    s = state()
    assert check(L, Order("A", -500.0), s).ok
    d = check(L, Order("A", -501.0), s)
    assert d.rules == (pt.MAX_ORDER_NOTIONAL,) and d.accepted == -500.0


def test_max_adv_participation_counts_the_day():
    L = lim(max_adv_participation=0.01)  # B: 1 % of 5e7 = 500k USD = 10,000 sh a day
    s = state()
    d = check(L, Order("B", 6_000.0), s)
    assert d.ok
    s.record(d)
    d = check(L, Order("B", -6_000.0), s)  # 300k used: 200k = 4,000 sh left, in either direction
    assert d.rules == (pt.ADV_PARTICIPATION,) and d.accepted == -4_000.0
    s.symbols["B"].adv_usd = math.nan
    d = check(L, Order("B", 1.0), s)
    assert d.rules == (pt.ADV_PARTICIPATION,) and d.accepted == 0.0


def test_max_bar_participation():
    L = lim(max_bar_participation=0.1)  # B's last bar traded 100,000 sh
    s = state()
    assert check(L, Order("B", 10_000.0), s).ok
    d = check(L, Order("B", 10_001.0), s)
    assert d.rules == (pt.BAR_PARTICIPATION,) and d.accepted == 10_000.0
    s.on_bar("B", 50.0, 0.0, NOW)  # a bar without a trade allows nothing
    d = check(L, Order("B", 1.0), s)
    assert d.rules == (pt.BAR_PARTICIPATION,) and d.accepted == 0.0


def test_hourly_turnover_rolls_off():
    L = lim(hourly_turnover=0.5)  # 500k USD an hour = 5,000 sh of A
    s = state()
    d = check(L, Order("A", 4_000.0), s)
    assert d.ok
    s.record(d, t=NOW)
    d = check(L, Order("A", 2_000.0), s)
    assert d.rules == (pt.HOURLY_TURNOVER,) and d.accepted == 1_000.0
    s.now = NOW + 3_599.0
    s.on_bar("A", 100.0, 1_000_000.0, s.now)
    assert check(L, Order("A", 2_000.0), s).rules == (pt.HOURLY_TURNOVER,)
    s.now = NOW + 3_600.0  # the first order left the window (t - 3600 is excluded)
    s.on_bar("A", 100.0, 1_000_000.0, s.now)
    assert check(L, Order("A", 5_000.0), s).ok


def test_daily_turnover():
    L = lim(daily_turnover=1.0)  # 1M USD a day = 10,000 sh of A
    s = state()
    for k in range(3):  # 3 x 3,000 sh, two hours apart
        s.now = NOW + 7_200.0 * k
        s.on_bar("A", 100.0, 1_000_000.0, s.now)
        d = check(L, Order("A", 3_000.0 * (-1) ** k), s)
        assert d.ok
        s.record(d)
    d = check(L, Order("A", 3_000.0), s)
    assert d.rules == (pt.DAILY_TURNOVER,) and d.accepted == 1_000.0
    s.start_day(E0, t=s.now)  # a new day
    assert check(L, Order("A", 3_000.0), s).ok


def test_kill_switch_stops_everything_but_flattening(caplog):
    L = lim(daily_drawdown=0.02)
    s = state(A=1_000.0, B=-500.0)
    assert not s.mark(1_010_000.0, L)  # new peak
    assert not s.mark(990_000.0, L)  # 1.98 % below 1.01M
    with caplog.at_level(logging.WARNING, logger="intradayjules.risk.pretrade"):
        assert s.mark(989_800.0, L)  # 2.0 %: on
    assert "kill switch" in caplog.text
    chk = PreTradeChecker(L)
    for q in (1.0, -1.0):
        d = chk.check(Order("A", q), s)
        assert d.rules == (pt.KILL_SWITCH,) and d.accepted == 0.0
    assert s.mark(1_050_000.0, L)  # recovering does not switch it off ...
    flat = chk.flatten_orders(s)
    assert [(o.symbol, o.qty, o.must_complete) for o in flat] == [("A", -1_000.0, True), ("B", 500.0, True)]
    assert all(chk.check(o, s).ok for o in flat)
    s.start_day(1_050_000.0)  # ... the next day does
    assert chk.check(Order("A", 1.0), s).ok


def test_must_complete_only_closes():
    s = state(A=1_000.0)
    chk = PreTradeChecker(lim())
    d = chk.check(Order("A", -1_500.0, must_complete=True), s)
    assert d.rules == (pt.BAD_ORDER,) and d.accepted == 0.0
    d = chk.check(Order("A", 10.0, must_complete=True), s)
    assert d.rules == (pt.BAD_ORDER,)


def test_stale_feed_halt():
    L = lim(stale_bars=3, bar_seconds=300.0)
    s = state()
    s.now = NOW + 900.0  # last bar closed exactly 3 bars ago: still fresh
    assert check(L, Order("A", 1.0), s).ok
    s.now = NOW + 901.0
    d = check(L, Order("A", 1.0), s)
    assert d.rules == (pt.STALE_FEED,) and d.accepted == 0.0
    s.on_bar("A", 100.0, 1e6, s.now)  # a fresh bar lifts it for that symbol only
    assert check(L, Order("A", 1.0), s).ok
    assert check(L, Order("B", 1.0), s).rules == (pt.STALE_FEED,)


def test_unknown_symbol_and_bad_quantity():
    s = state()
    assert check(LOOSE, Order("ZZZ", 1.0), s).rules == (pt.NO_DATA,)
    assert check(LOOSE, Order("A", math.nan), s).rules == (pt.BAD_ORDER,)
    assert check(LOOSE, Order("A", 0.0), s).rules == (pt.BAD_ORDER,)


def test_several_rules_cut_one_order_and_every_one_is_listed(caplog):
    L = lim(max_position=0.1, max_order_notional=20_000.0, max_bar_participation=0.001)
    s = state()  # A: position cap 1,000 sh, order notional 200 sh, bar 1,000 sh
    with caplog.at_level(logging.WARNING, logger="intradayjules.risk.pretrade"):
        d = check(L, Order("A", 5_000.0), s)
    assert set(d.rules) == {pt.MAX_POSITION, pt.MAX_ORDER_NOTIONAL, pt.BAR_PARTICIPATION}
    assert d.accepted == 200.0
    for r in d.rules:
        assert r in caplog.text


def test_cut_orders_round_down_to_lots():
    L = lim(max_order_notional=12_345.0, lot=100.0)  # 123.45 sh -> 100
    d = check(L, Order("A", 1_000.0), state())
    assert d.accepted == 100.0


def test_limits_from_config():
    L = PreTradeLimits.from_config(RiskConfig(daily_drawdown_limit=0.03, mask_illiquid=True),
                                   EnvConfig(position_size=0.2, max_gross_exposure=1.5, initial_cash=2e6),
                                   MarketConfig(participation_cap=0.05), stale_bars=5)
    assert (L.daily_drawdown, L.hourly_turnover, L.daily_turnover) == (0.03, 5.0, 20.0)
    assert (L.max_position, L.max_gross_exposure, L.max_order_notional) == (0.2, 1.5, 3e6)
    assert (L.max_bar_participation, L.allow_illiquid, L.stale_bars) == (0.05, False, 5)
    with pytest.raises(ValueError, match="max_position"):
        PreTradeLimits(max_position=0.0)
    with pytest.raises(ValueError, match="stale_bars"):
        PreTradeLimits(stale_bars=0)


# ------------------------------------------------------------------------------------------ properties
SLACK = 1e-6


def breaches(L: PreTradeLimits, s: RiskState, sym: str, q: float) -> list[str]:
    """Independent re-statement of every limit, evaluated after the order. Exposure limits count as
    breached only if the order increased that exposure."""
    v = s.symbols[sym]
    p = v.price
    pos = s.positions.get(sym, 0.0)
    new = pos + q
    out = []
    E = s.equity
    if abs(new) * p > L.max_position * E * (1 + SLACK) + 1e-6 and abs(new) > abs(pos):
        out.append(pt.MAX_POSITION)
    gross_before = sum(abs(x) * s.symbols[k].price for k, x in s.positions.items())
    gross_after = gross_before - abs(pos) * p + abs(new) * p
    if gross_after > L.max_gross_exposure * E * (1 + SLACK) + 1e-6 and gross_after > gross_before:
        out.append(pt.MAX_GROSS)
    if v.tier == "illiquid" and not L.allow_illiquid and abs(new) > abs(pos):
        out.append(pt.ILLIQUID)
    if pos * new < 0 and abs(new) > 0 and abs(new) * p > L.max_position * E * (1 + SLACK) + 1e-6:
        out.append(pt.MAX_POSITION)  # a flip beyond the limit on the other side
    n = abs(q) * p
    if n > L.max_order_notional * (1 + SLACK):
        out.append(pt.MAX_ORDER_NOTIONAL)
    if s.day_symbol_notional.get(sym, 0.0) + n > L.max_adv_participation * v.adv_usd * (1 + SLACK) + 1e-6:
        out.append(pt.ADV_PARTICIPATION)
    if abs(q) > L.max_bar_participation * v.volume * (1 + SLACK):
        out.append(pt.BAR_PARTICIPATION)
    hour = sum(x for t, x in s._hour if t > s.now - 3600.0)
    if hour + n > L.hourly_turnover * s.start_equity * (1 + SLACK) + 1e-6:
        out.append(pt.HOURLY_TURNOVER)
    if s.day_notional + n > L.daily_turnover * s.start_equity * (1 + SLACK) + 1e-6:
        out.append(pt.DAILY_TURNOVER)
    return out


limits_st = st.builds(
    PreTradeLimits,
    max_position=st.floats(0.01, 2.0), max_gross_exposure=st.floats(0.1, 3.0),
    max_order_notional=st.one_of(st.just(math.inf), st.floats(1e3, 1e6)),
    max_adv_participation=st.floats(1e-4, 0.5), max_bar_participation=st.floats(1e-3, 1.0),
    allow_illiquid=st.booleans(), hourly_turnover=st.floats(0.05, 5.0), daily_turnover=st.floats(0.1, 20.0),
    daily_drawdown=st.floats(0.005, 0.1), stale_bars=st.integers(1, 5), lot=st.sampled_from([1.0, 100.0]))
qty_st = st.floats(-50_000.0, 50_000.0).filter(lambda x: abs(x) >= 1.0).map(round)
orders_st = st.lists(st.tuples(st.sampled_from(["A", "B", "IL"]), qty_st, st.integers(0, 3)), min_size=1,
                     max_size=40)


@settings(max_examples=300, deadline=None)
@given(L=limits_st, orders=orders_st, pa=st.floats(-20_000, 20_000).map(round),
       pb=st.floats(-20_000, 20_000).map(round), eq=st.floats(2e5, 3e6))
def test_accepted_orders_never_breach_a_limit(L, orders, pa, pb, eq):
    s = state(A=float(pa), B=float(pb))
    s.start_day(E0, t=NOW)
    s.equity = eq  # marked without the kill switch: equity is just a number here
    chk = PreTradeChecker(L, logger=logging.getLogger("test.quiet"))
    for sym, q, minutes in orders:
        s.now += 60.0 * 5 * minutes
        for k in ("A", "B", "IL"):
            v = s.symbols[k]
            s.on_bar(k, v.price, v.volume, s.now)
        d = chk.check(Order(sym, float(q)), s)
        assert d.accepted * q >= 0 and abs(d.accepted) <= abs(q)  # same side, never more
        assert (d.accepted == q) == d.ok
        if d.accepted:
            assert breaches(L, s, sym, d.accepted) == [], (d, s.positions)
        else:
            assert d.rejections
        s.record(d)
        s.on_fill(sym, d.accepted)
    assert s.day_notional <= L.daily_turnover * E0 * (1 + SLACK) + 1e-6


@settings(max_examples=300, deadline=None)
@given(L=limits_st, pos=st.floats(-30_000, 30_000).filter(lambda x: abs(x) >= 1).map(round),
       frac=st.floats(0.01, 1.0))
def test_reductions_are_never_cut_by_exposure_rules(L, pos, frac):
    s = state(A=float(pos), B=20_000.0)  # B alone may already break gross or position limits
    q = -pos * frac
    d = PreTradeChecker(L, logger=logging.getLogger("test.quiet")).check(Order("A", q), s)
    assert not {pt.MAX_POSITION, pt.MAX_GROSS, pt.ILLIQUID} & set(d.rules)
