"""The trading journal: one SQLite file (WAL) holding every bar seen, decision, order, fill, position
and P&L, written so that a process killed at any point restarts with no order lost or doubled.

Protocol (what a loop does per batch of closed bars; ``tests/live/kill_worker.py`` is a complete one):

1. Bars arrive; the broker reports executions (a simulated broker fills pending orders on them).
2. Features, policy and pre-trade checks decide; new orders get **deterministic** client order ids
   (``broker.client_order_id(run, decision bar, symbol, kind)``).
3. ``with journal.step(ts, end) as tx:`` records the bars, executions, decisions, new orders (status
   ``new``) and the account snapshot: **one transaction**. Either all of the batch is in the journal or
   none of it is.
4. After the commit, the orders go to the broker, then ``journal.mark_submitted(ids)``.

A kill before (3) commits leaves the journal at the previous batch: the restarted loop replays this
batch and, being deterministic, decides the same orders with the same ids. A kill between (3) and (4)
leaves orders ``new``: ``resume()`` returns them among the open orders, and submitting them again is
harmless because brokers ignore a client id they already have. An order id can enter the journal only
once (primary key); the same id with different content raises ``JournalError`` (a loop that is not
deterministic).

``resume()`` -> ``ResumeState``: the last committed batch time, cash, positions, last prices, the day's
risk figures, open orders (``new``, ``submitted``, ``partial``) and every client id ever used.
``bar_batches()`` replays the journaled bars (to rebuild feature and market state).

Durability: WAL with ``synchronous=NORMAL`` (default) survives a killed process (what the kill test
checks); ``synchronous="FULL"`` also survives power loss, at the cost of an fsync per batch.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IntradayJulesError
from .broker import BrokerOrder, Execution
from .feed import Bar

SCHEMA_VERSION = 1
OPEN_STATUSES = ("new", "submitted", "partial")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    ts INTEGER PRIMARY KEY, end_ts INTEGER NOT NULL, n_bars INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL, ts INTEGER NOT NULL, end_ts INTEGER NOT NULL, session INTEGER NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (symbol, ts));
CREATE TABLE IF NOT EXISTS decisions (
    ts INTEGER NOT NULL, symbol TEXT NOT NULL, target REAL, requested REAL NOT NULL, accepted REAL NOT NULL,
    price REAL NOT NULL, rejections TEXT NOT NULL, PRIMARY KEY (ts, symbol));
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, qty REAL NOT NULL, kind TEXT NOT NULL,
    must_complete INTEGER NOT NULL, decision_ts INTEGER NOT NULL, status TEXT NOT NULL,
    remaining REAL NOT NULL, updated_ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fills (
    client_id TEXT NOT NULL REFERENCES orders(client_id), ts INTEGER NOT NULL, symbol TEXT NOT NULL,
    qty REAL NOT NULL, price REAL, spread_cost REAL NOT NULL, impact_cost REAL NOT NULL, fees REAL NOT NULL,
    status TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (client_id, ts));
CREATE TABLE IF NOT EXISTS positions (
    ts INTEGER NOT NULL, symbol TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL, PRIMARY KEY (ts, symbol));
CREATE TABLE IF NOT EXISTS pnl (
    ts INTEGER PRIMARY KEY, session INTEGER NOT NULL, cash REAL NOT NULL, equity REAL NOT NULL,
    gross REAL NOT NULL, day_start_equity REAL NOT NULL, peak_equity REAL NOT NULL, killed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS policy (
    ts INTEGER PRIMARY KEY, action INTEGER, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
"""


class JournalError(IntradayJulesError):
    """The journal refused a write that would break its guarantees (names the table, key and rule)."""


@dataclass
class ResumeState:
    """Where a restarted loop continues from (module docstring). Empty journal: ``last_ts`` None."""

    last_ts: int | None = None
    last_end: int | None = None
    session: int | None = None
    cash: float | None = None
    equity: float | None = None
    day_start_equity: float | None = None
    peak_equity: float | None = None
    killed: bool = False
    positions: dict[str, float] = field(default_factory=dict)
    last_close: dict[str, float] = field(default_factory=dict)
    open_orders: list[BrokerOrder] = field(default_factory=list)
    unsent: list[BrokerOrder] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    # today's accepted orders: (decision bar's end, int64 ns; symbol; notional USD at the decision price)
    turnover: list[tuple[int, str, float]] = field(default_factory=list)
    n_steps: int = 0
    policy_state: dict | None = None  # the policy's own state after the last step (``StepWriter.policy``)


class Journal:
    """``Journal(path)`` opens (creating if needed) a journal file; ``run`` labels it (checked on reopen)."""

    def __init__(self, path: str | Path, run: str | None = None, synchronous: str = "NORMAL",
                 checkpoint_every: int = 200):
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL (got {synchronous!r})")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute(f"PRAGMA synchronous={synchronous}")
        # WAL checkpoints (copy + fsync) cost milliseconds: never inside a step's commit, only after
        # the orders are out (``mark_submitted``), every ``checkpoint_every`` steps
        self.con.execute("PRAGMA wal_autocheckpoint=0")
        self.checkpoint_every = int(checkpoint_every)
        self._since_checkpoint = 0
        self.con.execute("PRAGMA foreign_keys=ON")
        self.con.executescript(_SCHEMA)
        self._meta_init(run)
        self._in_tx = False

    def _meta_init(self, run: str | None) -> None:
        meta = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
        if "schema_version" in meta and int(meta["schema_version"]) != SCHEMA_VERSION:
            raise JournalError(f"{self.path}: schema version {meta['schema_version']}, this code writes "
                               f"{SCHEMA_VERSION}")
        if run is not None and "run" in meta and meta["run"] != run:
            raise JournalError(f"{self.path}: journal of run {meta['run']!r}, not {run!r} (rule: one run per journal)")
        self.con.execute("BEGIN IMMEDIATE")
        self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        if run is not None:
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('run', ?)", (run,))
        self.con.execute("COMMIT")
        self.run = run if run is not None else meta.get("run")

    def set_meta(self, key: str, value) -> None:
        """Store a JSON-serialisable value (e.g. the resolved config) once; a different value later is refused."""
        text = json.dumps(value, sort_keys=True)
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] != text:
            raise JournalError(f"{self.path}: meta {key!r} already holds a different value")
        self.con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, text))

    def meta(self, key: str):
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def close(self) -> None:
        self.checkpoint()
        self.con.close()

    # ------------------------------------------------------------------------------------ writing
    @contextmanager
    def step(self, ts: int, end_ts: int) -> Iterator["StepWriter"]:
        """One batch as one transaction (committed on exit, rolled back on an exception)."""
        if self._in_tx:
            raise JournalError("journal.step: steps do not nest")
        row = self.con.execute("SELECT MAX(ts) FROM steps").fetchone()
        if row[0] is not None and ts <= row[0]:
            raise JournalError(f"{self.path}: step {ts} is not after the last journaled step {row[0]} "
                               "(rule: each batch is journaled once, in time order)")
        self._in_tx = True
        self.con.execute("BEGIN IMMEDIATE")
        try:
            w = StepWriter(self.con, ts)
            yield w
            self.con.execute("INSERT INTO steps VALUES (?, ?, ?)", (ts, end_ts, w.n_bars))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self._in_tx = False

    def mark_submitted(self, client_ids: Iterable[str]) -> None:
        """After a step's orders went to the broker (call it even when there were none): marks them
        ``submitted`` and, every ``checkpoint_every`` calls, checkpoints the WAL (off the order path)."""
        ids = [(c,) for c in client_ids]
        if ids:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.executemany("UPDATE orders SET status = 'submitted' WHERE client_id = ? AND status = 'new'", ids)
            self.con.execute("COMMIT")
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.checkpoint_every:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file (``PRAGMA wal_checkpoint(PASSIVE)``)."""
        self.con.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._since_checkpoint = 0

    # ------------------------------------------------------------------------------------ reading
    def resume(self) -> ResumeState:
        c = self.con
        rs = ResumeState()
        last = c.execute("SELECT ts, end_ts FROM steps ORDER BY ts DESC LIMIT 1").fetchone()
        rs.seen_ids = {r[0] for r in c.execute("SELECT client_id FROM orders")}
        rs.n_steps = c.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        if last is None:
            return rs
        rs.last_ts, rs.last_end = last
        p = c.execute("SELECT ts, session, cash, equity, day_start_equity, peak_equity, killed FROM pnl "
                      "ORDER BY ts DESC LIMIT 1").fetchone()
        if p is not None:
            pts, rs.session, rs.cash, rs.equity, rs.day_start_equity, rs.peak_equity, k = p
            rs.killed = bool(k)
            rs.positions = {s: q for s, q in c.execute(
                "SELECT symbol, qty FROM positions WHERE ts = ? AND qty != 0", (pts,))}
            rs.turnover = c.execute(
                "SELECT s.end_ts, d.symbol, ABS(d.accepted) * d.price FROM decisions d JOIN pnl p ON p.ts = d.ts "
                "JOIN steps s ON s.ts = d.ts WHERE p.session = ? AND d.accepted != 0 ORDER BY d.ts, d.symbol",
                (rs.session,)).fetchall()
        row = c.execute("SELECT state FROM policy ORDER BY ts DESC LIMIT 1").fetchone()
        rs.policy_state = json.loads(row[0]) if row is not None else None
        rs.last_close = {s: px for s, px in c.execute(
            "SELECT b.symbol, b.close FROM bars b JOIN (SELECT symbol, MAX(ts) AS ts FROM bars GROUP BY symbol) m "
            "ON b.symbol = m.symbol AND b.ts = m.ts")}
        rows = c.execute("SELECT client_id, symbol, remaining, kind, must_complete, decision_ts, status FROM orders "
                         f"WHERE status IN {OPEN_STATUSES} ORDER BY rowid").fetchall()
        for cid, sym, rem, kind, must, dts, status in rows:
            o = BrokerOrder(cid, sym, rem, kind, bool(must), dts)
            rs.open_orders.append(o)
            if status == "new":
                rs.unsent.append(o)
        return rs

    def bar_batches(self, after: int | None = None) -> Iterator[list[Bar]]:
        """Journaled bars in the order they were seen, one list per step."""
        q = ("SELECT symbol, ts, end_ts, session, open, high, low, close, volume FROM bars "
             + ("WHERE ts > ? " if after is not None else "") + "ORDER BY ts, symbol")
        batch: list[Bar] = []
        for r in self.con.execute(q, (after,) if after is not None else ()):
            b = Bar(*r)
            if batch and b.ts != batch[0].ts:
                yield batch
                batch = []
            batch.append(b)
        if batch:
            yield batch

    def table(self, name: str) -> list[tuple]:
        """All rows of a journal table in key order (for reports and tests)."""
        return read_table(self.con, name)


_TABLE_KEYS = {"bars": "ts, symbol", "steps": "ts", "decisions": "ts, symbol", "orders": "decision_ts, client_id",
               "fills": "ts, client_id", "positions": "ts, symbol", "pnl": "ts", "meta": "key", "policy": "ts"}


def read_table(con: sqlite3.Connection, name: str) -> list[tuple]:
    """All rows of journal table ``name`` in key order, from any connection to a journal file."""
    if name not in _TABLE_KEYS:
        raise ValueError(f"unknown journal table {name!r}; tables: {sorted(_TABLE_KEYS)}")
    return con.execute(f"SELECT * FROM {name} ORDER BY {_TABLE_KEYS[name]}").fetchall()


class StepWriter:
    """Writes one batch's records inside ``Journal.step`` (every method is one or a few INSERTs)."""

    def __init__(self, con: sqlite3.Connection, ts: int):
        self.con = con
        self.ts = ts
        self.n_bars = 0

    def bars(self, bars: list[Bar]) -> None:
        self.con.executemany("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [tuple(b) for b in bars])
        self.n_bars += len(bars)

    def executions(self, execs: list[Execution]) -> None:
        for e in execs:
            cur = self.con.execute("UPDATE orders SET status = ?, remaining = ?, updated_ts = ? WHERE client_id = ?",
                                   (e.status, e.remaining, e.ts, e.client_id))
            if cur.rowcount != 1:
                raise JournalError(f"fills: execution for order {e.client_id} that the journal does not hold "
                                   "(rule: every order is journaled before it is sent)")
            self.con.execute("INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (e.client_id, e.ts, e.symbol, e.qty, None if math.isnan(e.price) else e.price,
                              e.spread_cost, e.impact_cost, e.fees, e.status, e.reason))

    def decision(self, symbol: str, target: float | None, requested: float, accepted: float, price: float,
                 rejections: Iterable[tuple[str, str]] = ()) -> None:
        self.con.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (self.ts, symbol, target, requested, accepted, price,
                          json.dumps([[r, d] for r, d in rejections])))

    def order(self, o: BrokerOrder) -> None:
        row = (o.client_id, o.symbol, o.qty, o.kind, int(o.must_complete), o.decision_ts)
        try:
            self.con.execute("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?)", (*row, o.qty, self.ts))
        except sqlite3.IntegrityError:
            old = self.con.execute("SELECT client_id, symbol, qty, kind, must_complete, decision_ts FROM orders "
                                   "WHERE client_id = ?", (o.client_id,)).fetchone()
            raise JournalError(f"orders: client id {o.client_id} is already journaled as {old}, now {row} "
                               "(rule: a client order id is used once)") from None

    def policy(self, action: int | None, state: dict) -> None:
        """The policy's action at this step (None: no decision) and its state after it (JSON), so a
        restart resumes the policy where it was (its targets, as the env keeps them)."""
        self.con.execute("INSERT INTO policy VALUES (?, ?, ?)", (self.ts, action, json.dumps(state, sort_keys=True)))

    def snapshot(self, session: int, cash: float, positions: dict[str, float], prices: dict[str, float],
                 day_start_equity: float, peak_equity: float, killed: bool) -> float:
        """Positions at ``prices`` and the P&L row; returns equity = cash + sum(qty * price)."""
        eq = cash
        gross = 0.0
        rows = []
        for s in sorted(positions):
            q = positions[s]
            if q:
                px = prices[s]
                eq += q * px
                gross += abs(q) * px
                rows.append((self.ts, s, q, px))
        self.con.executemany("INSERT INTO positions VALUES (?, ?, ?, ?)", rows)
        self.con.execute("INSERT INTO pnl VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (self.ts, session, cash, eq, gross, day_start_equity, peak_equity, int(killed)))
        return eq
