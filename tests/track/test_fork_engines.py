"""A forked tuning worker does not reuse the parent's pooled MLflow database connections (SQLite across
fork is unsafe): track.mlflow_tracking disposes the inherited engines in the child."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("mlflow")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connections(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    import intradayjules.track.mlflow_tracking  # noqa: F401 - registers the at-fork hook

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("fork")
    engine = SqlAlchemyStore._engine_map[uri]
    assert engine.pool.checkedin() > 0  # the parent holds pooled connections
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if the pool is fresh and a run can be written
        code = 3
        try:
            if SqlAlchemyStore._engine_map[uri].pool.checkedin() == 0:
                mlflow.MlflowClient(tracking_uri=uri).create_run(exp)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(client.search_runs([exp])) == 1
    assert engine.pool.checkedin() > 0  # the parent's connections were left alone


STORE_SCRIPT = r"""
import os, sys
import mlflow
from intradayjules.track.mlflow_tracking import make_tracker

root = sys.argv[1]
t = make_tracker(None, enabled=True, workdir=os.path.join(root, "a"), check=False)
db = t.target.uri[len("sqlite:///"):]
assert not os.path.exists(db)
assert t.start_store() and t._creating not in (None, os.getpid())  # a child creates it
with t.start_run("r") as run:  # the first use waits for the child
    run.log_metrics({"m": 1.0}, step=1)
assert t._creating is None and os.path.exists(db)
assert [r.data.metrics["m"] for r in t.client.search_runs([t.experiment_id])] == [1.0]
again = make_tracker(None, enabled=True, workdir=os.path.join(root, "a"), check=False)
assert not again.start_store()  # an existing database: nothing to create

# the child fails: this process creates the store itself, as it would have without start_store
b = make_tracker(None, enabled=True, workdir=os.path.join(root, "b"), check=False)
real = mlflow.MlflowClient
class Boom:
    def __init__(self, *a, **k):
        raise RuntimeError("boom")
mlflow.MlflowClient = Boom
started = b.start_store()
mlflow.MlflowClient = real
assert started
b._wait_store()
db_b = b.target.uri[len("sqlite:///"):]
assert not os.path.exists(db_b)
assert b.client.search_experiments() is not None and os.path.exists(db_b)
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_new_sqlite_store_is_created_in_a_child_while_the_job_goes_on(tmp_path):
    """``Tracker.start_store`` (the main job calls it before preparing the data): a fresh interpreter, since
    threads left by earlier tests make forking here unsafe (and ``start_store`` then declines)."""
    import subprocess
    import sys
    from pathlib import Path

    import intradayjules

    env = {**os.environ, "PYTHONPATH": str(Path(intradayjules.__file__).parents[1]), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run([sys.executable, "-c", STORE_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
