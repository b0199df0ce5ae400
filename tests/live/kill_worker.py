"""A small paper-trading loop for the kill test (test_journal.py): feed -> broker executions -> online
features -> a rule policy -> pre-trade checks -> journal -> broker, resuming from its journal.

Usage: python kill_worker.py JOURNAL BARS_PARQUET RUN [PAUSE_S]
Prints ``ready N`` (N = steps already journaled) once it has resumed, then runs to the end of the bars
and exits 0. ``PAUSE_S`` sleeps that long after each batch (spreads the kill points over the run).

The loop follows the journal protocol of ``intradayjules.live.journal``: everything a batch changes is
journaled in one transaction before any of its orders is sent, order ids are deterministic, and a
restart rebuilds features, market state, account and risk state from the journal alone.
"""

from __future__ import annotations

import logging
import math
import sys
import time

from intradayjules.config import FeaturesConfig, MarketConfig, TierConfig
from intradayjules.features.online import OnlineFeatures
from intradayjules.live.broker import BrokerOrder, SimulatedBroker, client_order_id
from intradayjules.live.feed import ReplayFeed
from intradayjules.live.journal import Journal
from intradayjules.market import Order
from intradayjules.risk.pretrade import PreTradeChecker, PreTradeLimits, RiskState

CASH = 1_000_000.0
LIMITS = PreTradeLimits(max_position=0.2, max_gross_exposure=0.8, max_adv_participation=0.02,
                        max_bar_participation=0.2, allow_illiquid=False, hourly_turnover=0.6, daily_turnover=1.5,
                        daily_drawdown=0.003, stale_bars=3)
TIERS = TierConfig(adv_window_days=2)
MARKET = MarketConfig()


def target(values, warm: bool, names: list[str], equity: float, price: float) -> float:
    """Long below RSI 45, short above 55, flat otherwise: 20 % of equity, whole shares."""
    if warm:
        return 0.0
    rsi = values[names.index("rsi_14")]
    side = 1.0 if rsi < 45 else (-1.0 if rsi > 55 else 0.0)
    return side * math.floor(0.2 * equity / price)


def main(journal_path: str, bars_path: str, run: str, pause: float = 0.0) -> None:
    logging.getLogger("intradayjules.risk.pretrade").setLevel(logging.ERROR)  # rejections are journaled
    j = Journal(journal_path, run=run)
    rs = j.resume()
    engine = OnlineFeatures(FeaturesConfig())
    names = engine.names
    broker = SimulatedBroker(MARKET, TIERS, initial_cash=CASH)
    risk = RiskState()
    risk.start_day(CASH)
    checker = PreTradeChecker(LIMITS)

    def see(bar) -> tuple:
        values, warm = engine.update_bar(bar)
        st = broker.book.state(bar.symbol)
        risk.on_bar(bar.symbol, bar.close, bar.volume, bar.end / 1e9, st.adv_usd, st.tier)
        return values, warm

    # ---- resume: rebuild everything from the journal
    for batch in j.bar_batches():
        for bar in batch:
            broker.book.on_bar(bar)
            see(bar)
    session = None
    if rs.last_ts is not None:
        broker.restore(rs.cash, rs.positions, rs.open_orders, rs.seen_ids, rs.last_close)
        session = rs.session
        risk.start_day(rs.day_start_equity)
        risk.peak_equity, risk.equity, risk.killed = rs.peak_equity, rs.equity, rs.killed
        for end_ns, sym, notional in rs.turnover:
            risk.record_notional(sym, notional, end_ns / 1e9)
        for o in rs.unsent:  # journaled, maybe never sent: send again (a known id is ignored)
            broker.submit(o)
        j.mark_submitted([o.client_id for o in rs.unsent])
    print(f"ready {rs.n_steps}", flush=True)

    for batch in ReplayFeed(bars_path, start_after=rs.last_ts):
        ts, end = batch[0].ts, batch[0].end
        now = end / 1e9
        execs = broker.on_bars(batch)
        feats = {bar.symbol: see(bar) for bar in batch}
        risk.now = now
        risk.positions = broker.positions()
        equity = broker.equity()
        if batch[0].session != session:
            session = batch[0].session
            risk.start_day(equity, t=now)
        risk.mark(equity, LIMITS, t=now)
        new: list[BrokerOrder] = []
        with j.step(ts, end) as tx:
            tx.bars(batch)
            tx.executions(execs)
            if risk.killed:
                working = {o.symbol for o in broker.open_orders()}
                for o in checker.flatten_orders(risk):
                    if o.symbol not in working:
                        new.append(BrokerOrder(client_order_id(run, ts, o.symbol, "kill"), o.symbol, o.qty,
                                               must_complete=True, decision_ts=ts))
            else:
                for bar in batch:
                    values, warm = feats[bar.symbol]
                    tgt = target(values, warm, names, equity, bar.close)
                    q = tgt - risk.positions.get(bar.symbol, 0.0)
                    if q == 0:
                        continue
                    d = checker.check(Order(bar.symbol, q), risk)
                    tx.decision(bar.symbol, tgt, q, d.accepted, bar.close, [(r.rule, r.detail) for r in d.rejections])
                    if d.accepted:
                        risk.record(d)
                        new.append(BrokerOrder(client_order_id(run, ts, bar.symbol), bar.symbol, d.accepted,
                                               decision_ts=ts))
            for o in new:
                tx.order(o)
            tx.snapshot(session, broker.cash(), broker.positions(), broker.last_prices(), risk.start_equity,
                        risk.peak_equity, risk.killed)
        for o in new:
            broker.submit(o)
        j.mark_submitted([o.client_id for o in new])
        if pause:
            time.sleep(pause)
    j.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
