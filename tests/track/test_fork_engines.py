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
