"""Orphaned MLflow runs (track/orphans.py): a run whose process was killed with SIGKILL stays RUNNING until
the next start in the same run directory marks it KILLED; live runs and other hosts' runs are left alone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from intradayjules import rundir
from intradayjules.track import Tracker, TrackingTarget
from intradayjules.track.orphans import TAG_ORPHANED, reap_orphaned_runs

# a process that takes the run directory's lock, starts a tracked run (and a trial-like child), says the
# ids, then waits to be killed
VICTIM = textwrap.dedent("""
    import sys, time
    from intradayjules import rundir
    from intradayjules.track import Tracker, TrackingTarget
    uri, art, run_dir = sys.argv[1:4]
    t = Tracker(TrackingTarget(uri=uri, artifact_location=art, experiment="orphans"))
    with rundir.lock(run_dir):
        run = t.start_run("victim")
        child = t.start_run("trial-0", parent_run_id=run.run_id, tags={"intradayjules.trial_key": "0"})
        print(run.run_id, child.run_id, flush=True)
        time.sleep(600)
""")


@pytest.fixture
def tracked(tmp_path, sqlite_template):
    shutil.copyfile(sqlite_template, tmp_path / "mlflow.db")
    uri, art = f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "mlartifacts").as_uri()
    return uri, art, Tracker(TrackingTarget(uri=uri, artifact_location=art, experiment="orphans"))


def start_victim(tmp_path, uri, art, run_dir) -> tuple[subprocess.Popen, list[str]]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([sys.executable, "-c", VICTIM, uri, art, str(run_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"victim did not start: {proc.stderr.read()[-3000:]}")
    return proc, line.split()


def test_sigkilled_run_is_marked_killed_on_the_next_start(tracked, tmp_path):
    uri, art, tracker = tracked
    run_dir = tmp_path / "runs" / "job"
    proc, (run_id, child_id) = start_victim(tmp_path, uri, art, run_dir)
    try:
        # while it lives, its runs are RUNNING and nothing reaps them
        assert tracker.client.get_run(run_id).info.status == "RUNNING"
        assert reap_orphaned_runs(tracker) == []
        with pytest.raises(rundir.RunDirLocked):  # and it holds the run directory
            with rundir.lock(run_dir):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert tracker.client.get_run(run_id).info.status == "RUNNING"  # the fault: nobody ended it
    # a live run of this process (another job in the same experiment) must survive the reaping
    live = tracker.start_run("alive")
    with rundir.lock(run_dir):  # the next start in that run directory
        stale = rundir.stale_holder(run_dir)
        assert stale is not None and stale["pid"] == proc.pid
        lines = reap_orphaned_runs(tracker, stale)
    assert len(lines) == 2 and all("marked KILLED" in ln for ln in lines)
    for rid in (run_id, child_id):
        r = tracker.client.get_run(rid)
        assert r.info.status == "KILLED" and r.info.end_time is not None
        assert f"pid {proc.pid}" in r.data.tags[TAG_ORPHANED]
    assert tracker.client.get_run(child_id).data.tags["intradayjules.trial_state"] == "killed"
    assert tracker.client.get_run(live.run_id).info.status == "RUNNING"
    live.end()
    # a clean release leaves no stale record behind
    with rundir.lock(run_dir):
        assert rundir.stale_holder(run_dir) is None


def test_other_hosts_runs_are_reaped_only_when_the_stale_lock_names_them(tracked):
    _, _, tracker = tracked
    dead_elsewhere = tracker.start_run("a", tags={"intradayjules.worker_host": "node-b",
                                                  "intradayjules.worker_pid": "4242"})
    other = tracker.start_run("b", tags={"intradayjules.worker_host": "node-b", "intradayjules.worker_pid": "4243"})
    assert reap_orphaned_runs(tracker) == []  # another host's pid means nothing here
    lines = reap_orphaned_runs(tracker, {"pid": 4242, "host": "node-b"})
    assert len(lines) == 1 and dead_elsewhere.run_id in lines[0] and "run directory lock" in lines[0]
    assert tracker.client.get_run(dead_elsewhere.run_id).info.status == "KILLED"
    assert tracker.client.get_run(other.run_id).info.status == "RUNNING"
    other.end()
