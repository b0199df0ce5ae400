"""The journal: one transaction per batch, idempotent client ids, resume; and the kill test: a loop
process SIGKILLed at random points and restarted ends with exactly the journal of an uninterrupted run
(no order lost, none doubled, same fills, positions and P&L)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from intradayjules.config import SyntheticConfig
from intradayjules.data.synthetic import generate
from intradayjules.live.broker import BrokerOrder, Execution
from intradayjules.live.feed import Bar
from intradayjules.live.journal import Journal, JournalError, read_table

WORKER = Path(__file__).with_name("kill_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"
TABLES = ["steps", "bars", "decisions", "orders", "fills", "positions", "pnl"]


def bar(sym, ts, close=10.0):
    return Bar(sym, ts, ts + 300, 0, close, close, close, close, 100.0)


def ex(cid, sym, ts, qty, status="filled"):
    return Execution(cid, sym, ts, qty, 10.0, 0.1, 0.2, 0.3, qty, 0.0, status)


def test_a_step_is_all_or_nothing(tmp_path):
    j = Journal(tmp_path / "j.db", run="r")
    assert j.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(RuntimeError):
        with j.step(1, 301) as tx:
            tx.bars([bar("A", 1)])
            tx.order(BrokerOrder("o1", "A", 5.0, decision_ts=1))
            raise RuntimeError("killed mid-step")
    assert all(j.table(t) == [] for t in TABLES)
    assert j.resume().last_ts is None
    with j.step(1, 301) as tx:
        tx.bars([bar("A", 1)])
        tx.order(BrokerOrder("o1", "A", 5.0, decision_ts=1))
        tx.snapshot(0, 1000.0, {}, {"A": 10.0}, 1000.0, 1000.0, False)
    assert len(j.table("orders")) == 1 and j.table("steps") == [(1, 301, 1)]


def test_ids_and_steps_are_used_once(tmp_path):
    j = Journal(tmp_path / "j.db", run="r")
    with j.step(1, 301) as tx:
        tx.order(BrokerOrder("o1", "A", 5.0, decision_ts=1))
    with pytest.raises(JournalError, match="is not after the last journaled step"):
        with j.step(1, 301):
            pass
    with pytest.raises(JournalError, match="client id o1 is already journaled"):
        with j.step(2, 302) as tx:
            tx.order(BrokerOrder("o1", "A", 5.0, decision_ts=2))
    with pytest.raises(JournalError, match="does not hold"):
        with j.step(2, 302) as tx:
            tx.executions([ex("ghost", "A", 2, 1.0)])
    assert len(j.table("orders")) == 1 and len(j.table("steps")) == 1
    j.close()
    with pytest.raises(JournalError, match="one run per journal"):
        Journal(tmp_path / "j.db", run="other")


def test_resume_returns_account_open_and_unsent_orders(tmp_path):
    j = Journal(tmp_path / "j.db", run="r")
    with j.step(1, 301) as tx:
        tx.bars([bar("A", 1), bar("B", 1, close=20.0)])
        tx.decision("A", 5.0, 5.0, 5.0, 10.0)
        tx.decision("B", -3.0, -3.0, -3.0, 20.0, [("max_position", "cut")])
        tx.order(BrokerOrder("a1", "A", 5.0, decision_ts=1))
        tx.order(BrokerOrder("b1", "B", -3.0, decision_ts=1))
        tx.snapshot(7, 1000.0, {}, {"A": 10.0, "B": 20.0}, 1000.0, 1000.0, False)
    j.mark_submitted(["a1"])
    with j.step(2, 302) as tx:
        tx.bars([bar("A", 2, close=11.0), bar("B", 2, close=19.0)])
        tx.executions([ex("a1", "A", 2, 5.0), Execution("b1", "B", 2, -1.0, 19.0, 0, 0, 0, -3.0, -2.0, "partial")])
        tx.order(BrokerOrder("c1", "A", 0.0, "close", decision_ts=2))
        eq = tx.snapshot(7, 1000.0 - 50.0 + 19.0, {"A": 5.0, "B": -1.0}, {"A": 11.0, "B": 19.0}, 1000.0, 1004.0, True)
    assert eq == pytest.approx(969.0 + 55.0 - 19.0)
    rs = j.resume()
    assert (rs.last_ts, rs.last_end, rs.session, rs.n_steps) == (2, 302, 7, 2)
    assert rs.cash == 969.0 and rs.positions == {"A": 5.0, "B": -1.0} and rs.killed
    assert rs.last_close == {"A": 11.0, "B": 19.0} and rs.peak_equity == 1004.0
    assert [(o.client_id, o.qty, o.kind) for o in rs.open_orders] == [("b1", -2.0, "market"), ("c1", 0.0, "close")]
    assert [o.client_id for o in rs.unsent] == ["c1"]
    assert rs.seen_ids == {"a1", "b1", "c1"}
    assert rs.turnover == [(301, "A", 50.0), (301, "B", 60.0)]
    assert [len(b) for b in j.bar_batches()] == [2, 2] and [len(b) for b in j.bar_batches(after=1)] == [2]


# ------------------------------------------------------------------------------------------- kill test
@pytest.fixture(scope="module")
def bars_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("killbars")
    return generate(SyntheticConfig(n_symbols=3, days=6, seed=5)).write(out)["bars"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _spawn(journal: Path, bars: Path, pause: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(journal), str(bars), "kill-test", str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _finish(p: subprocess.Popen) -> None:
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]


def _dump(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(str(path))
    try:
        return {t: read_table(con, t) for t in TABLES}
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(bars_file, tmp_path_factory):
    """An uninterrupted run: its journal file, its tables, and how long its loop took."""
    path = tmp_path_factory.mktemp("ref") / "journal.db"
    p = _spawn(path, bars_file, PAUSE)
    assert p.stdout.readline().startswith("ready 0")
    t0 = time.monotonic()
    _finish(p)
    loop_s = time.monotonic() - t0
    ref = _dump(path)
    assert len(ref["steps"]) > 400 and len(ref["orders"]) > 100 and len(ref["fills"]) > 100
    assert any(r[-1] for r in ref["pnl"])  # the kill switch went off
    rules = {rule for r in ref["decisions"] for rule, _ in json.loads(r[6])}
    # every limit the worker sets bound at least once, so a restart that forgets one shows
    assert {"daily_turnover", "hourly_turnover", "illiquid_tier", "max_adv_participation",
            "max_bar_participation"} <= rules
    return path, ref, loop_s


PAUSE = 0.001


def kill_and_restart(bars_file, path: Path, seed: int, kills: int, loop_s: float) -> list[int]:
    """Run the worker on ``path``, SIGKILL it ``kills`` times at random points, then let it finish.
    Returns the number of journaled steps at each kill."""
    rng = np.random.default_rng(seed)
    at: list[int] = []
    while True:
        p = _spawn(path, bars_file, PAUSE)
        line = p.stdout.readline()
        assert line.startswith("ready"), p.stderr.read()[-3000:]
        if len(at) == kills:
            _finish(p)
            return at
        time.sleep(rng.uniform(0.0, loop_s))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        out, err = p.communicate(timeout=300)
        if p.returncode == 0:  # it finished before the kill landed
            return at
        assert p.returncode == -signal.SIGKILL, err[-3000:]
        con = sqlite3.connect(str(path))
        at.append(con.execute("SELECT COUNT(*) FROM steps").fetchone()[0])
        con.close()


def _check_same_journal(ref: dict, got: dict) -> None:
    for t in TABLES:
        assert len(got[t]) == len(ref[t]), t
        assert got[t] == ref[t], t
    ids = [r[0] for r in got["orders"]]
    assert len(ids) == len(set(ids))


def test_killed_and_restarted_loop_matches_uninterrupted_run(bars_file, reference, tmp_path):
    _, ref, loop_s = reference
    at = kill_and_restart(bars_file, tmp_path / "journal.db", seed=1, kills=3, loop_s=loop_s)
    n = len(ref["steps"])
    assert any(0 < k < n for k in at), at  # at least one kill landed mid-run
    _check_same_journal(ref, _dump(tmp_path / "journal.db"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4, 5, 6])
def test_kill_test_more_seeds(bars_file, reference, tmp_path, seed):
    _, ref, loop_s = reference
    kill_and_restart(bars_file, tmp_path / "journal.db", seed=seed, kills=5, loop_s=loop_s)
    _check_same_journal(ref, _dump(tmp_path / "journal.db"))


def test_the_comparison_sees_a_doubled_or_lost_order(reference):
    """The kill test's comparison is not blind: one extra or one missing order fails it."""
    _, ref, _ = reference
    doubled = {**ref, "orders": ref["orders"] + [("dup",) + ref["orders"][0][1:]]}
    with pytest.raises(AssertionError):
        _check_same_journal(ref, doubled)
    lost = {**ref, "orders": ref["orders"][1:]}
    with pytest.raises(AssertionError):
        _check_same_journal(ref, lost)


def crash_copy(src: Path, dst: Path, k: int, unsent: bool) -> None:
    """``dst`` = the journal as a kill right after step ``k`` committed leaves it: later steps absent,
    orders decided at ``k`` working (``unsent``: still ``new``, the kill came before they were sent)."""
    with sqlite3.connect(str(src)) as a, sqlite3.connect(str(dst)) as b:
        a.backup(b)
    con = sqlite3.connect(str(dst))
    for t in ("fills", "steps", "bars", "decisions", "positions", "pnl"):
        con.execute(f"DELETE FROM {t} WHERE ts > ?", (k,))
    con.execute("DELETE FROM orders WHERE decision_ts > ?", (k,))
    con.execute("UPDATE orders SET status = 'submitted', remaining = qty, updated_ts = decision_ts "
                "WHERE updated_ts > ?", (k,))
    if unsent:
        con.execute("UPDATE orders SET status = 'new' WHERE decision_ts = ?", (k,))
    con.commit()
    con.close()


def crash_points(ref: dict) -> dict[str, tuple[int, bool]]:
    """Steps after which a restart has the most to get right."""
    steps = [r[0] for r in ref["steps"]]
    pnl = {r[0]: r for r in ref["pnl"]}
    held = {r[0] for r in ref["positions"]}
    killed = [t for t in steps if pnl[t][-1]]
    flat_after_held = [t for i, t in enumerate(steps[1:], 1) if t not in held and steps[i - 1] in held]
    turnover = [r[0] for r in ref["decisions"] if "hourly_turnover" in r[6] or "daily_turnover" in r[6]]
    with_orders = sorted({r[5] for r in ref["orders"]})
    last_of_day = [t for i, t in enumerate(steps[:-1]) if pnl[steps[i + 1]][1] != pnl[t][1] and t in held]
    prev = {t: steps[i - 1] for i, t in enumerate(steps) if i}
    return {"kill switch on": (killed[0], False), "just before the kill switch": (prev[killed[0]], False),
            "flat after holding": (flat_after_held[len(flat_after_held) // 2], False),
            "before a turnover cut": (prev[turnover[len(turnover) // 2]], False),
            "orders journaled, not sent": (with_orders[len(with_orders) // 2], True),
            "end of a day": (last_of_day[0], False)}


def test_restart_after_chosen_crash_points(bars_file, reference, tmp_path):
    """Deterministic complement to the random kills: restart from the journal exactly as a kill after
    each chosen step leaves it; every restarted run must end with the reference journal."""
    path, ref, _ = reference
    for name, (k, unsent) in crash_points(ref).items():
        dst = tmp_path / f"{name.replace(' ', '_').replace(',', '')}.db"
        crash_copy(path, dst, k, unsent)
        p = _spawn(dst, bars_file, 0.0)
        line = p.stdout.readline()
        assert line.startswith("ready"), (name, p.stderr.read()[-3000:])
        _finish(p)
        try:
            _check_same_journal(ref, _dump(dst))
        except AssertionError as e:
            raise AssertionError(f"restart after step {k} ({name}): {e}") from None
