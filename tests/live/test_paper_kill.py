"""Kill the real paper loop (``intradayjules paper``'s ``PaperLoop``) at random points and at chosen
crash points, restart it from its journal, and require the journal of an uninterrupted run: no order
lost or doubled, the same fills, positions, P&L and policy state."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from intradayjules.live.journal import read_table

from .test_journal import crash_copy

WORKER = Path(__file__).with_name("paper_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"
TABLES = ["steps", "bars", "decisions", "orders", "fills", "positions", "pnl", "policy"]
SPEED = 150_000.0  # a 5-minute bar every 2 ms once trading starts
DD = 0.002  # the kill switch fires on some days


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _spawn(deployed, journal: Path, speed: float = SPEED) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(deployed.bundle), str(deployed.bars), str(journal),
                             str(speed), str(DD)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())


def _finish(p: subprocess.Popen) -> None:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]


def _dump(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(str(path))
    try:
        return {t: read_table(con, t) for t in TABLES}
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(deployed, tmp_path_factory):
    path = tmp_path_factory.mktemp("paper-ref") / "journal.db"
    p = _spawn(deployed, path)
    assert p.stdout.readline().startswith("ready 0")
    t0 = time.monotonic()
    _finish(p)
    ref = _dump(path)
    assert len(ref["orders"]) > 100 and len(ref["fills"]) > 100
    assert any(r[-1] for r in ref["pnl"])  # the kill switch went off
    return path, ref, time.monotonic() - t0


def _check_same_journal(ref: dict, got: dict) -> None:
    for t in TABLES:
        assert len(got[t]) == len(ref[t]), t
        assert got[t] == ref[t], t


def _kill_and_restart(deployed, path: Path, seed: int, kills: int, loop_s: float) -> list[int]:
    rng = np.random.default_rng(seed)
    at: list[int] = []
    while True:
        p = _spawn(deployed, path)
        line = p.stdout.readline()
        assert line.startswith("ready"), p.stderr.read()[-3000:]
        if len(at) == kills:
            _finish(p)
            return at
        time.sleep(rng.uniform(0.0, loop_s))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=600)
        if p.returncode == 0:
            return at
        assert p.returncode == -signal.SIGKILL, err[-3000:]
        con = sqlite3.connect(str(path))
        at.append(con.execute("SELECT COUNT(*) FROM steps").fetchone()[0])
        con.close()


def test_killed_paper_loop_resumes_to_the_uninterrupted_journal(deployed, reference, tmp_path):
    _, ref, loop_s = reference
    at = _kill_and_restart(deployed, tmp_path / "journal.db", seed=1, kills=3, loop_s=loop_s)
    assert any(0 < k < len(ref["steps"]) for k in at), at
    _check_same_journal(ref, _dump(tmp_path / "journal.db"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_paper_kill_more_seeds(deployed, reference, tmp_path, seed):
    _, ref, loop_s = reference
    _kill_and_restart(deployed, tmp_path / "journal.db", seed=seed, kills=4, loop_s=loop_s)
    _check_same_journal(ref, _dump(tmp_path / "journal.db"))


def test_restart_at_chosen_points(deployed, reference, tmp_path):
    """Restart exactly as a kill after these steps leaves the journal: orders journaled but not sent,
    the step the kill switch went on, the step whose orders close the session, a step with a cut."""
    path, ref, _ = reference
    pnl = {r[0]: r for r in ref["pnl"]}
    steps = [r[0] for r in ref["steps"]]
    closes = sorted({r[5] for r in ref["orders"] if r[3] == "close"})
    markets = sorted({r[5] for r in ref["orders"] if r[3] == "market"})
    cut = sorted({r[0] for r in ref["decisions"] if r[6] != "[]"})
    killed = [t for t in steps if pnl[t][-1]]
    points = {"unsent": (markets[len(markets) // 2], True), "kill switch on": (killed[0], False),
              "session close orders": (closes[1], False), "after a cut": (cut[len(cut) // 3], False)}
    for name, (k, unsent) in points.items():
        dst = tmp_path / f"{name.replace(' ', '_')}.db"
        crash_copy(path, dst, k, unsent)
        con = sqlite3.connect(str(dst))
        con.execute("DELETE FROM policy WHERE ts > ?", (k,))
        con.commit()
        con.close()
        p = _spawn(deployed, dst, speed=0.0)
        assert p.stdout.readline().startswith("ready"), name
        _finish(p)
        try:
            _check_same_journal(ref, _dump(dst))
        except AssertionError as e:
            raise AssertionError(f"restart after step {k} ({name}): {e}") from None
