"""SimulatedBroker against the environment: the same orders, the same fills to the cent; the market
state it prices with against the env's panel; idempotent client ids, the shared cap, carry, rejects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import ExperimentConfig, MarketConfig, SyntheticConfig, TierConfig
from intradayjules.data.synthetic import generate
from intradayjules.env import make_env, prepare
from intradayjules.env.episodes import build_panel
from intradayjules.features.pipeline import compute_features
from intradayjules.live.broker import BrokerOrder, SimulatedBroker, client_order_id
from intradayjules.live.feed import Bar, ReplayFeed
from intradayjules.live.market_state import MarketStateBook

SYMBOLS = ["LQ01", "MD01", "IL01"]
CENT = 0.005  # "to the cent": USD amounts agree to half a cent


@pytest.fixture(scope="module")
def mk():
    return generate(SyntheticConfig(n_symbols=6, days=16, seed=3))


def env_cfg(**market) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.data.tiers.adv_window_days = 5
    cfg.data.splits.train_frac = 0.5
    cfg.data.splits.val_frac = 0.1
    cfg.env.mode = "multi"
    cfg.env.symbols = SYMBOLS
    cfg.env.position_size = 0.3
    cfg.env.max_daily_drawdown = 0.01  # some episodes end early on the drawdown stop
    for k, v in market.items():
        setattr(cfg.market, k, v)
    return cfg


def run_env(mk, cfg, seed):
    """Every test session of the env with random actions: {(session, decision bar): info}."""
    frame = mk.bars.frame
    data = prepare(cfg, frame, mk.universe)
    env = make_env(cfg, frame, mk.universe, "test", data=data)
    rng = np.random.default_rng(seed)
    out = {}
    sessions = [str(pd.Timestamp(s).date()) for s in data.splits["test"]]
    for s in sessions:
        env.reset(options={"session": s})
        while True:
            # mostly changes of target (orders), sometimes no-ops
            _, _, done, _, info = env.step(int(rng.integers(env.action_space.n)))
            out[(s, info["bar"] - 1)] = info
            if done:
                break
    return out, sessions


def replay_broker(mk, cfg, infos):
    """Replay the same bars into a SimulatedBroker, placing the env's orders at the same decision bars.
    Returns {(session, fill bar): {symbol: [executions]}}."""
    frame = mk.bars.frame
    frame = frame[frame["symbol"].isin(SYMBOLS)]
    broker = SimulatedBroker(cfg.market, cfg.data.tiers, universe=mk.universe, initial_cash=cfg.env.initial_cash)
    got: dict = {}
    bar_of_session: dict[str, int] = {}
    for batch in ReplayFeed(frame):
        assert len(batch) == len(SYMBOLS)
        s = str(pd.Timestamp(batch[0].session).date())
        t = bar_of_session.get(s, -1) + 1
        bar_of_session[s] = t
        for ex in broker.on_bars(batch):
            got.setdefault((s, t), {}).setdefault(ex.symbol, []).append(ex)
        info = infos.get((s, t))
        if info is None:
            continue
        for k, sym in enumerate(SYMBOLS):
            q = float(info["order_qty"][k])
            if q != 0:
                assert broker.submit(BrokerOrder(client_order_id("env", batch[0].ts, sym), sym, q,
                                                 decision_ts=batch[0].ts))
            if info["end_reason"] is not None:
                broker.submit(BrokerOrder(client_order_id("env", batch[0].ts, sym, "close"), sym, 0.0, "close"))
    return got, broker


@pytest.mark.parametrize("source", ["universe", "tier", "estimate"])
def test_fills_match_the_env_to_the_cent(mk, source):
    cfg = env_cfg(half_spread_source=source)
    infos, sessions = run_env(mk, cfg, seed=11)
    got, broker = replay_broker(mk, cfg, infos)
    n_orders = n_cut = n_flat = 0
    for (s, t), info in infos.items():
        fill_bar = t + 1
        ex = got.get((s, fill_bar), {})
        for k, sym in enumerate(SYMBOLS):
            mine = ex.get(sym, [])
            mk_ex = [e for e in mine if e.kind == "market"]
            cl_ex = [e for e in mine if e.kind == "close" and e.qty != 0]
            want_q = float(info["fill_qty"][k])
            order_q = float(info["order_qty"][k])
            if order_q == 0:
                assert not mk_ex
            else:
                n_orders += 1
                n_cut += want_q != order_q
                (e,) = mk_ex
                assert e.qty == want_q, (s, t, sym)
                assert e.requested == order_q
                if e.qty:
                    assert e.price == float(info["fill_price"][k])
                c = info["symbol_costs"]["fill"]
                assert abs(e.spread_cost - float(c["spread"][k])) < CENT
                assert abs(e.impact_cost - float(c["impact"][k])) < CENT
                assert abs(e.fees - float(c["commission"][k])) < CENT
            fq = float(info["flatten_qty"][k])
            if fq == 0:
                assert not cl_ex
            else:
                n_flat += 1
                (e,) = cl_ex
                assert e.qty == fq and e.price == float(info["flatten_price"][k])
                c = info["symbol_costs"]["flatten"]
                assert abs(e.total_cost - (float(c["spread"][k]) + float(c["impact"][k]) + float(c["commission"][k]))) < CENT
    # the comparison exercised orders, cap cuts and end-of-episode flattens, on several sessions
    assert len(sessions) >= 3 and n_orders > 50 and n_cut > 0 and n_flat > 0
    assert broker.positions() == {}  # every episode ended flat


def test_market_state_matches_the_env_panel(mk):
    """ADV, sigma and half-spread per (session, symbol), against build_panel's arrays."""
    frame = mk.bars.frame
    frame = frame[frame["symbol"].isin(SYMBOLS)].reset_index(drop=True)
    tiers = TierConfig(adv_window_days=5)
    for source in ("tier", "universe", "estimate"):
        market = MarketConfig(half_spread_source=source, sigma_window_days=6)
        panel = build_panel(frame, compute_features(frame), SYMBOLS, universe=mk.universe, market=market,
                            tiers=tiers, standardize=False)
        book = MarketStateBook(market, tiers, mk.universe)
        seen = {}
        for batch in ReplayFeed(frame):
            for bar in batch:
                st = book.on_bar(bar)
                seen[(bar.session, bar.symbol)] = st
        for i, sess in enumerate(panel.sessions):
            for k, sym in enumerate(SYMBOLS):
                st = seen[(int(sess.astype("datetime64[ns]").astype("int64")), sym)]
                adv = panel.adv[i, k]
                assert (math.isnan(st.adv_usd) and np.isnan(adv)) or st.adv_usd == pytest.approx(adv, rel=1e-12)
                assert st.tier == panel.tier[i, k]
                assert st.sigma_daily == pytest.approx(panel.sigma[i, k], rel=1e-9)
                assert st.half_spread_bps == pytest.approx(panel.half_spread[i, k], rel=1e-9), (source, i, sym)


# ------------------------------------------------------------------------------------------ unit
def bar(sym, t, o=100.0, c=101.0, v=10_000.0, session="2025-01-03"):
    ts = int(pd.Timestamp("2025-01-03 15:00", tz="UTC").value) + t * 300 * 10**9
    return Bar(sym, ts, ts + 300 * 10**9, int(pd.Timestamp(session).value), o, max(o, c), min(o, c), c, v)


def primed(cfg=None):
    """A broker whose book knows an ADV for X (one previous session)."""
    b = SimulatedBroker(cfg or MarketConfig(), TierConfig(adv_window_days=5))
    b.on_bars([bar("X", 0, v=1e6, session="2025-01-02")])
    return b


def test_submit_is_idempotent():
    b = primed()
    o = BrokerOrder("id-1", "X", 100.0)
    assert b.submit(o) and not b.submit(o)
    assert not b.submit(BrokerOrder("id-1", "X", 999.0))  # same id, different content: still not new
    ex = b.on_bars([bar("X", 1)])
    assert [(e.client_id, e.qty) for e in ex] == [("id-1", 100.0)]
    assert not b.submit(o)  # filled ids stay known
    assert b.on_bars([bar("X", 2)]) == []
    assert b.positions() == {"X": 100.0}


def test_shared_cap_and_cancel_or_carry():
    for unfilled, want_open in (("cancel", []), ("carry", [40.0])):
        b = primed(MarketConfig(participation_cap=0.1, unfilled=unfilled))
        b.submit(BrokerOrder("a", "X", 70.0))
        b.submit(BrokerOrder("b", "X", 70.0))
        ex = b.on_bars([bar("X", 1, v=1_000.0)])  # 100 shares for both
        assert [(e.client_id, e.qty, e.status) for e in ex] == [
            ("a", 70.0, "filled"), ("b", 30.0, "cancelled" if unfilled == "cancel" else "partial")]
        assert [o.qty for o in b.open_orders()] == want_open
        ex = b.on_bars([bar("X", 2, v=0.0)])  # a bar without a trade fills nothing
        assert all(e.qty == 0 for e in ex)
    assert b.on_bars([bar("X", 3, v=1_000.0)])[0].qty == 40.0


def test_cash_follows_fills_and_costs():
    cfg = MarketConfig(model="flat", flat_cost_bps=10.0)
    b = SimulatedBroker(cfg, initial_cash=10_000.0)
    b.submit(BrokerOrder("a", "X", 10.0))
    (e,) = b.on_bars([bar("X", 1, o=50.0, c=52.0)])
    assert (e.qty, e.price, e.fees) == (10.0, 50.0, pytest.approx(0.5))  # 10 bps of 500 USD
    assert b.cash() == pytest.approx(10_000.0 - 500.0 - 0.5)
    assert b.equity() == pytest.approx(10_000.0 - 500.0 - 0.5 + 10 * 52.0)


def test_close_order_and_reject_without_adv():
    b = SimulatedBroker(MarketConfig(), TierConfig(adv_window_days=5))
    b.submit(BrokerOrder("a", "Y", 10.0))
    (e,) = b.on_bars([bar("Y", 0)])  # first session: no ADV yet
    assert e.status == "rejected" and "no ADV" in e.reason and b.positions() == {}
    b = primed()
    b.submit(BrokerOrder("a", "X", 50.0))
    b.submit(BrokerOrder("c", "X", 0.0, "close"))
    ex = b.on_bars([bar("X", 1, o=100.0, c=103.0)])
    assert [(e.kind, e.qty, e.price) for e in ex] == [("market", 50.0, 100.0), ("close", -50.0, 103.0)]
    assert b.positions() == {}


def test_order_validation():
    with pytest.raises(ValueError, match="kind"):
        BrokerOrder("a", "X", 1.0, kind="limit")
    with pytest.raises(ValueError, match="non-zero"):
        BrokerOrder("a", "X", 0.0)
    assert client_order_id("r", 1, "X") == client_order_id("r", 1, "X") != client_order_id("r", 2, "X")
