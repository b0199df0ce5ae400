"""The paper-trading loop: feed -> features -> policy -> pre-trade checks -> journal -> broker.

``PaperLoop(policy, broker, journal, limits, run=..., trade_from=...)``; ``resume()`` rebuilds every
piece of state from the journal, ``run(feed)`` processes batches until the feed ends. Per batch of
closed bars (time t, the bundle's symbols, in the bundle's order):

1. ``broker.on_bars``: orders decided at the previous bar fill (market orders at this bar's open,
   ``close`` orders at its close); the features, the market state and the risk state see the bars.
2. A new session starts the risk day (``RiskState.start_day`` at the account's equity) and resets the
   policy's targets (the env starts every session flat); with ``members`` (session -> symbols), the
   policy refuses orders in symbols outside that session's universe (``DeployedPolicy.set_members``).
3. From ``trade_from`` on, on every bar but the session's last (the calendar's close), the loop marks
   the equity: when the drawdown from the day's peak reaches ``limits.daily_drawdown`` (or the kill
   switch was pressed, ``request_kill``) it places no order and closes every position (``close`` orders
   at the next bar's close; a manual kill uses ``must_complete`` market orders at the next open) and
   stops for the day (for a manual kill: for the run). Otherwise the policy acts, every order passes
   ``PreTradeChecker.check`` (each cut is journaled with its rules and logged), and when the next bar
   is the session's last, every position is closed at its close (``close`` orders: the env's
   end-of-session flatten).
4. ``journal.step``: bars, executions, decisions, orders, the policy's state and the account, in one
   transaction; then the orders go to the broker and ``mark_submitted``.

This is the env's timing and rule set (``env/simulator.py`` with ``env.pretrade_limits``: orders fill at
the next bar's open, the session ends flat at its last close, the kill switch closes out at the next
bar's close), so on a replay with the simulated broker a backtest of the same bundle on the same bars
gives the same fills, positions and daily P&L (``live/reconcile.py``). Equity is summed in the bundle's
symbol order, as the env sums it.

Not covered: ``market.unfilled = carry`` (a working order would have to be re-checked and replaced at
every bar; refused at construction), and a symbol missing from a batch (the env would see a stale bar:
the loop keeps its last close and a zero feature row, but the broker fills a working order on the
symbol's next bar that arrives).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from collections.abc import Callable, Collection
from typing import Any

from ..market import Order
from ..risk.pretrade import PreTradeChecker, PreTradeLimits, RiskState
from .broker import Broker, BrokerOrder, client_order_id
from .feed import Bar, Feed
from .journal import Journal
from .market_state import MarketStateBook
from .policy import DeployedPolicy

log = logging.getLogger(__name__)
MANUAL_KILL = "manual kill switch"


@dataclass
class Stats:
    steps: int = 0
    decisions: int = 0
    orders: int = 0
    fills: int = 0
    rejections: int = 0
    # with ``keep_latency``, per traded batch (ns): batch in -> decisions made (features, market state,
    # policy, pre-trade checks), batch in -> orders out (+ journal commit and broker submit), and the
    # thread's CPU time of the latter (no preemption)
    decide_ns: list[int] = field(default_factory=list)
    latency_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)
    decide_cpu_ns: list[int] = field(default_factory=list)


class PaperLoop:
    """The paper loop (module docstring). ``record``: keep each decision's observation (tests)."""

    def __init__(self, policy: DeployedPolicy, broker: Broker, journal: Journal, limits: PreTradeLimits, *,
                 run: str, trade_from: int | None = None, record: bool = False, keep_latency: bool = False,
                 members: Callable[[int], Collection[str] | None] | None = None):
        if policy.carry:
            raise ValueError("the paper loop does not support market.unfilled = carry yet (module docstring)")
        self.policy, self.broker, self.journal, self.limits, self.run_id = policy, broker, journal, limits, run
        self.checker = PreTradeChecker(limits)
        self.book: MarketStateBook = getattr(broker, "book", None) or MarketStateBook(policy.cfg.market,
                                                                                      policy.cfg.data.tiers)
        self._own_book = getattr(broker, "book", None) is None
        self.risk = RiskState()
        self.trade_from = trade_from
        self.members = members  # session (int ns) -> the symbols that may be held (known at its open)
        self.session: int | None = None
        self.stopped = False  # no more decisions today (kill switch)
        self.manual_kill = bool(journal.meta("manual_kill"))
        self._kill_request: str | None = None
        self.stats = Stats()
        self.record = record
        self.keep_latency = keep_latency
        self.observations: dict[int, Any] = {}
        self.rejections: deque = deque(maxlen=50)  # (ts, symbol, requested, accepted, rules) for the service
        self.last_ts: int | None = None
        self.lock = threading.Lock()

    # ------------------------------------------------------------------------------------- control
    def request_kill(self, reason: str = MANUAL_KILL) -> None:
        """Kill switch (thread-safe): at the next batch every position is closed and no order follows
        for the rest of the run (a restarted loop stays killed: the journal records it)."""
        self._kill_request = reason

    @property
    def trading(self) -> bool:
        """Whether the last bar was in a session the loop trades (from ``trade_from`` on)."""
        return self.session is not None and (self.trade_from is None or self.session >= self.trade_from)

    @property
    def symbols(self) -> list[str]:
        return self.policy.symbols

    def positions(self) -> list[float]:
        held = self.broker.positions()
        return [float(held.get(s, 0.0)) for s in self.policy.symbols]

    def equity(self) -> float:
        """``cash + sum position * close`` in the bundle's symbol order (the env's order)."""
        eq = float(self.broker.cash())
        for p, c in zip(self.positions(), self.policy.close.tolist()):
            if p:
                eq += p * c
        return eq

    # -------------------------------------------------------------------------------------- resume
    def resume(self) -> int:
        """Rebuild features, market state, account, risk state and the policy's targets from the journal;
        resend orders journaled but maybe never sent. Returns the number of journaled steps."""
        rs = self.journal.resume()
        for batch in self.journal.bar_batches():
            batch = self._ordered(batch)
            for bar in batch:
                self.book.on_bar(bar)
            self._see(batch)
        if rs.last_ts is None:
            return 0
        if hasattr(self.broker, "restore"):
            self.broker.restore(rs.cash, rs.positions, rs.open_orders, rs.seen_ids, rs.last_close)
        self.session = rs.session
        self.risk.start_day(rs.day_start_equity)
        self.risk.peak_equity, self.risk.equity, self.risk.killed = rs.peak_equity, rs.equity, rs.killed
        self.stopped = rs.killed or self.manual_kill
        for end_ns, sym, notional in rs.turnover:
            self.risk.record_notional(sym, notional, end_ns / 1e9)
        if rs.policy_state is not None:
            self.policy.restore(rs.policy_state)
        for o in rs.unsent:  # journaled, maybe never sent: send again (a known id is ignored)
            self.broker.submit(o)
        self.journal.mark_submitted([o.client_id for o in rs.unsent])
        self.last_ts = rs.last_ts
        self.stats.steps = rs.n_steps
        return rs.n_steps

    # ---------------------------------------------------------------------------------------- run
    def run(self, feed: Feed) -> Stats:
        try:
            for batch in feed:
                self.on_batch(batch)
        finally:
            feed.close()
        return self.stats

    def _ordered(self, batch: list[Bar]) -> list[Bar]:
        ix = self.policy.index
        return sorted((b for b in batch if b.symbol in ix), key=lambda b: ix[b.symbol])

    def _see(self, batch: list[Bar]) -> None:
        self.policy.update(batch)
        for bar in batch:
            st = self.book.state(bar.symbol)
            self.risk.on_bar(bar.symbol, bar.close, bar.volume, bar.end / 1e9, st.adv_usd, st.tier)

    def on_batch(self, batch: list[Bar]) -> None:
        """One batch of closed bars (module docstring)."""
        t0 = time.perf_counter_ns()
        c0 = time.thread_time_ns()
        batch = self._ordered(batch)
        if not batch:
            return
        with self.lock:
            self._step(batch, t0, c0)

    def _step(self, batch: list[Bar], t0: int, c0: int) -> None:
        pol, risk, lim = self.policy, self.risk, self.limits
        ts, end, session = int(batch[0].ts), int(batch[0].end), int(batch[0].session)
        now = end / 1e9
        execs = self.broker.on_bars(batch)
        if self._own_book:
            for bar in batch:
                self.book.on_bar(bar)
        self._see(batch)
        pos = self.positions()
        cash = float(self.broker.cash())
        equity = self.equity()
        if session != self.session:
            if self.session is not None:
                pol.end_session()
            self.session = session
            if self.members is not None:
                pol.set_members(self.members(session))
            risk.start_day(equity if equity > 0 else 1e-9, t=now)
            self.stopped = self.manual_kill
        risk.now = now
        risk.positions = {s: p for s, p in zip(pol.symbols, pos) if p}
        close_ns = pol.clock.bounds(session)[1]
        trading = self.trade_from is None or session >= self.trade_from
        last_bar = end >= close_ns
        new: list[BrokerOrder] = []
        decisions: list[tuple] = []
        action = None
        if self._kill_request is not None and not self.manual_kill:
            self.manual_kill = self.stopped = True
            risk.killed, risk.kill_detail = True, self._kill_request
            self.journal.set_meta("manual_kill", {"ts": ts, "reason": self._kill_request})
            working = {o.symbol for o in self.broker.open_orders()}
            for o in self.checker.flatten_orders(risk):
                if o.symbol not in working:
                    new.append(BrokerOrder(client_order_id(self.run_id, ts, o.symbol, "kill"), o.symbol, o.qty,
                                           must_complete=True, decision_ts=ts))
            log.warning("kill switch pressed (%s): closing %d position(s) at the next bar", self._kill_request,
                        len(new))
        elif trading and not last_bar and not self.stopped:
            if risk.mark(equity, lim, t=now):
                self.stopped = True
                new += self._close_all(ts, pos, "kill")
            else:
                act = pol.act(None, cash, pos)
                action = act.action
                self.stats.decisions += 1
                if self.record:
                    self.observations[ts] = act.observation
                accepted = list(act.intent.orders)
                for k in [k for k, r in enumerate(act.intent.refused) if r]:
                    log.info("refused: %s is not in the universe this session", pol.symbols[k])
                for k, q in enumerate(act.intent.orders):
                    if q == 0:
                        continue
                    sym = pol.symbols[k]
                    d = self.checker.check(Order(sym, q), risk)
                    accepted[k] = d.accepted
                    decisions.append((sym, act.intent.new_target[k], q, d.accepted, float(pol.close[k]),
                                      [(r.rule, r.detail) for r in d.rejections]))
                    if d.rejections:
                        self.stats.rejections += 1
                        self.rejections.append((ts, sym, q, d.accepted, d.rules))
                    if d.accepted:
                        risk.record(d)
                        new.append(BrokerOrder(client_order_id(self.run_id, ts, sym), sym, d.accepted, decision_ts=ts))
                pol.commit(act, accepted)
                if end + pol.bar_ns >= close_ns:  # the next bar is the session's last: end flat at its close
                    new += self._close_all(ts, pos, "close", accepted)
        t_decided, c_decided = time.perf_counter_ns(), time.thread_time_ns()
        with self.journal.step(ts, end) as tx:
            tx.bars(batch)
            tx.executions(execs)
            for row in decisions:
                tx.decision(*row)
            for o in new:
                tx.order(o)
            tx.policy(action, pol.state())
            held = self.broker.positions()
            tx.snapshot(session, cash, held, {s: float(pol.close[pol.index[s]]) for s in held}, risk.start_equity,
                        risk.peak_equity, risk.killed)
        for o in new:
            self.broker.submit(o)
        if self.keep_latency and action is not None:
            self.stats.latency_ns.append(time.perf_counter_ns() - t0)
            self.stats.cpu_ns.append(time.thread_time_ns() - c0)
            self.stats.decide_ns.append(t_decided - t0)
            self.stats.decide_cpu_ns.append(c_decided - c0)
        self.journal.mark_submitted([o.client_id for o in new])
        self.stats.steps += 1
        self.stats.orders += len(new)
        self.stats.fills += sum(1 for e in execs if e.qty)
        self.last_ts = ts

    def _close_all(self, ts: int, pos: list[float], tag: str, orders: list[float] | None = None) -> list[BrokerOrder]:
        """``close`` orders (the whole position at the next bar's close, no cap, whatever the open fills
        left) for every symbol held now or ordered now."""
        orders = orders or [0.0] * len(pos)
        return [BrokerOrder(client_order_id(self.run_id, ts, s, tag), s, -(p + q), kind="close", decision_ts=ts)
                for s, p, q in zip(self.policy.symbols, pos, orders) if (p != 0 or q != 0) and math.isfinite(p)]
