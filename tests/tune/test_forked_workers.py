"""Forked Optuna workers (issue 16): the trial function's ``warm`` runs once in the coordinator and every
worker starts with its result in memory; with ``INTRADAYJULES_TUNE_START=spawn`` workers are fresh
interpreters that never see it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna

from intradayjules.config import config_from_dict
from intradayjules.tune.optuna_backend import START_ENV, open_storage, run_optuna

OBJ = Path(__file__).resolve().parent / "objectives.py"


def _run(tmp_path, monkeypatch, start: str):
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("IJ_TEST_LOG", str(log))
    monkeypatch.setenv(START_ENV, start)
    cfg = config_from_dict({"workdir": str(tmp_path / "runs"), "tune": {"trial_fn": f"{OBJ}:warmed"}})
    res = run_optuna(cfg, workers=2, n_trials=4, pruner="none", study="w", progress=False)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    st = open_storage(f"journal:{tmp_path / 'runs' / 'tune' / 'w' / 'journal.log'}")
    trials = optuna.load_study(study_name="w", storage=st).get_trials()
    return res, events, trials


COORDINATOR = """
import json, os, sys
from intradayjules.config import config_from_dict
from intradayjules.tune.optuna_backend import run_optuna
cfg = config_from_dict({"workdir": sys.argv[1], "tune": {"trial_fn": sys.argv[2]}})
res = run_optuna(cfg, workers=2, n_trials=4, pruner="none", study="w", progress=False)
print(json.dumps({"pid": os.getpid(), "complete": res.n_complete}))
"""


def test_forked_workers_share_the_coordinators_warm_data(tmp_path):
    """Run in a fresh coordinator process: in the test session, threads left by earlier tests (MLflow's
    artifact pools) would make the backend spawn, as it must (tested below)."""
    import subprocess
    import sys

    import intradayjules

    log = tmp_path / "events.jsonl"
    env = {**os.environ, "IJ_TEST_LOG": str(log), START_ENV: "fork",
           "PYTHONPATH": str(Path(intradayjules.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", COORDINATOR, str(tmp_path / "runs"), f"{OBJ}:warmed"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    coord = json.loads(out.stdout.strip().splitlines()[-1])
    assert coord["complete"] == 4
    events = [json.loads(line) for line in log.read_text().splitlines()]
    st = open_storage(f"journal:{tmp_path / 'runs' / 'tune' / 'w' / 'journal.log'}")
    trials = optuna.load_study(study_name="w", storage=st).get_trials()
    warms = [e for e in events if e["event"] == "warm"]
    runs = [e for e in events if e["event"] == "trial"]
    assert [w["pid"] for w in warms] == [coord["pid"]]  # once, in the coordinator
    assert len(runs) == 4 and all(r["warm_pid"] == coord["pid"] != r["pid"] for r in runs)
    assert len({r["pid"] for r in runs}) <= 2
    startups = [t.user_attrs["worker_startup_s"] for t in trials if "worker_startup_s" in t.user_attrs]
    assert 1 <= len(startups) <= 2 and all(0 <= s < 30 for s in startups)


def test_spawned_workers_do_not_get_it(tmp_path, monkeypatch):
    res, events, trials = _run(tmp_path, monkeypatch, "spawn")
    assert res.n_complete == 4
    assert not [e for e in events if e["event"] == "warm"]
    assert all(e["warm_pid"] is None for e in events if e["event"] == "trial")


def test_a_coordinator_with_other_threads_spawns(monkeypatch):
    import threading

    from intradayjules.tune.optuna_backend import use_fork

    monkeypatch.delenv(START_ENV, raising=False)
    assert use_fork(0) is (threading.active_count() == 1)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert use_fork(0) is False
    finally:
        stop.set()
        t.join()
    assert use_fork(1) is False  # GPUs per trial: fresh interpreters
