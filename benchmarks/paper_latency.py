"""Benchmark: paper-trading latency from a closed bar batch to orders out, K = 6 symbols.
Target (issue 17): p99 <= 1 ms for features + policy + pre-trade checks.

Per batch (one bar per symbol, all closed at the same time), timed with ``perf_counter_ns``:

* ``features``: ``OnlineFeatures.update`` for the 6 bars;
* ``+ checks``: plus risk state updates (``on_bar``, ``mark``) and a ``PreTradeChecker.check`` (and
  ``record``) of one order per symbol: the part this branch delivers (the policy is added later);
* ``+ journal``: plus the batch's journal transaction (bars, decisions, orders, snapshot; SQLite WAL,
  synchronous=NORMAL, on local disk) and ``SimulatedBroker.submit``: the whole path to "order out" in
  the journal protocol (orders are journaled before they are sent), still without a policy.

Wall-clock times include preemption by other processes; the thread CPU time (``thread_time_ns``)
of the same stages shows what the code costs on a core of its own. Bars: 6 real symbols from the shared 5-minute set (``--data``), else the synthetic market (2/2/2
tiers). The first ``--warm`` sessions warm the engines up untimed; the next ``--sessions`` are timed.
Orders: a fixed target per symbol flipping sign every 6 bars, so checks see position and turnover
limits bind. Record results in benchmarks/README.md with the machine and its load (``uptime``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from intradayjules.config import FeaturesConfig, MarketConfig, SyntheticConfig, TierConfig
from intradayjules.data import load_bars
from intradayjules.data.synthetic import generate
from intradayjules.features.online import OnlineFeatures
from intradayjules.live.broker import BrokerOrder, SimulatedBroker, client_order_id
from intradayjules.live.feed import ReplayFeed
from intradayjules.live.journal import Journal
from intradayjules.market import Order
from intradayjules.risk.pretrade import PreTradeChecker, PreTradeLimits, RiskState

REAL = ["AAPL", "MSFT", "SPY", "QQQ", "JNUG", "WEBL"]


def bars(data: str | None):
    if data and Path(data).is_dir():
        f = load_bars(data).frame
        return f[f["symbol"].isin(REAL)].reset_index(drop=True), f"real {REAL}"
    return generate(SyntheticConfig(n_symbols=6, days=40, seed=0)).bars.frame, "synthetic 6 symbols (2/2/2 tiers)"


def pct(x: list[int]) -> str:
    a = np.asarray(x) / 1e3
    return f"{np.percentile(a, 50):8.1f}{np.percentile(a, 99):8.1f}{a.max():9.1f}"


def main(data: str | None, warm: int, sessions: int) -> None:
    frame, label = bars(data)
    days = np.sort(frame["session"].unique())
    frame = frame[frame["session"].isin(days[: warm + sessions])].reset_index(drop=True)
    first_timed = days[warm]
    engine = OnlineFeatures(FeaturesConfig())
    limits = PreTradeLimits(max_position=0.25, max_gross_exposure=1.0, max_order_notional=5e5, allow_illiquid=True)
    checker = PreTradeChecker(limits, logger=__import__("logging").getLogger("bench.quiet"))
    __import__("logging").getLogger("bench.quiet").disabled = True
    broker = SimulatedBroker(MarketConfig(), TierConfig())
    risk = RiskState()
    risk.start_day(1e6)
    tmp = tempfile.mkdtemp(prefix="paper_latency_")
    journal = Journal(Path(tmp) / "journal.db", run="bench")
    t_feat, t_check, t_all, c_check, c_all = [], [], [], [], []
    session = None
    n = 0
    for batch in ReplayFeed(frame):
        timed = batch[0].session >= int(first_timed.astype("datetime64[ns]").astype("int64"))
        broker.on_bars(batch)  # the simulated exchange: not part of the decision path
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        feats = [engine.update_bar(b) for b in batch]
        t1 = time.perf_counter_ns()
        now = batch[0].end / 1e9
        risk.now = now
        for b in batch:
            st = broker.book.state(b.symbol)
            risk.on_bar(b.symbol, b.close, b.volume, now, st.adv_usd, st.tier)
        if batch[0].session != session:
            session = batch[0].session
            risk.start_day(1e6, t=now)
        risk.mark(1e6, limits, t=now)
        orders = []
        side = 1.0 if (n // 6) % 2 == 0 else -1.0
        for b, (values, warm_) in zip(batch, feats):
            tgt = side * np.floor(0.2e6 / b.close)
            q = tgt - risk.positions.get(b.symbol, 0.0)
            if q:
                d = checker.check(Order(b.symbol, q), risk)
                orders.append((b, q, d))
                if d.accepted:
                    risk.record(d)
                    risk.on_fill(b.symbol, d.accepted)  # as if filled: keeps positions moving
        t2 = time.perf_counter_ns()
        c2 = time.thread_time_ns()
        out = []
        with journal.step(batch[0].ts, batch[0].end) as tx:
            tx.bars(batch)
            for b, q, d in orders:
                tx.decision(b.symbol, None, q, d.accepted, b.close, [(r.rule, r.detail) for r in d.rejections])
                if d.accepted:
                    o = BrokerOrder(client_order_id("bench", b.ts, b.symbol), b.symbol, d.accepted, decision_ts=b.ts)
                    tx.order(o)
                    out.append(o)
            tx.snapshot(session, 1e6, {}, {}, 1e6, 1e6, False)
        for o in out:
            broker.submit(o)
        t3 = time.perf_counter_ns()
        c3 = time.thread_time_ns()
        journal.mark_submitted([o.client_id for o in out])  # after the order is out
        n += 1
        if timed:
            t_feat.append(t1 - t0)
            t_check.append(t2 - t0)
            t_all.append(t3 - t0)
            c_check.append(c2 - c0)
            c_all.append(c3 - c0)
    journal.close()
    print(f"paper latency per batch, K = 6, {label}; {len(t_all)} timed batches ({sessions} sessions after "
          f"{warm} warm-up); load {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}")
    print(f"{'stage (cumulative from batch arrival)':<44}{'p50 us':>8}{'p99 us':>8}{'max us':>9}")
    print(f"{'online features (6 bars)':<44}{pct(t_feat)}")
    print(f"{'+ risk updates and 6 pre-trade checks':<44}{pct(t_check)}")
    print(f"{'+ journal transaction + broker submit':<44}{pct(t_all)}")
    print(f"{'CPU time of this thread (no preemption):':<44}")
    print(f"{'  features + risk + checks':<44}{pct(c_check)}")
    print(f"{'  + journal + submit':<44}{pct(c_all)}")
    print("target: p99 <= 1000 us for features + policy + checks (policy not included here)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("INTRADAYJULES_SHARED_DATA"), help="shared 5-min bar folder")
    ap.add_argument("--warm", type=int, default=21, help="untimed warm-up sessions")
    ap.add_argument("--sessions", type=int, default=20, help="timed sessions")
    a = ap.parse_args()
    main(a.data, a.warm, a.sessions)
