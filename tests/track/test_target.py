"""Where tracking goes, and failing fast when it cannot go there."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intradayjules.config import ExperimentConfig
from intradayjules.track import (NoOpTracker, TrackingError, TrackingUnreachableError, check_reachable,
                                 make_tracker, resolve_tracking)

from .conftest import free_port


def test_default_is_absolute_sqlite_in_workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    t = resolve_tracking(ExperimentConfig(workdir=Path("runs/w")))
    assert t.uri == f"sqlite:///{tmp_path.resolve()}/runs/w/mlflow.db"
    assert t.artifact_location == (tmp_path.resolve() / "runs/w/mlartifacts").as_uri()
    assert t.source == "default" and t.enabled
    assert t.registered_model == "intradayjules-dqn"


def test_env_overrides_default_and_config_overrides_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    cfg = ExperimentConfig(workdir=tmp_path)
    t = resolve_tracking(cfg)
    assert (t.uri, t.artifact_location, t.source) == ("http://127.0.0.1:5999", None, "MLFLOW_TRACKING_URI")
    cfg.tracking.uri = f"sqlite:///{tmp_path}/other.db"
    t = resolve_tracking(cfg)
    assert t.uri == f"sqlite:///{tmp_path}/other.db" and t.source == "config tracking.uri"
    assert t.artifact_location == (tmp_path / "mlartifacts").as_uri()


def test_file_store_and_relative_sqlite_are_rejected(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = ExperimentConfig(workdir=tmp_path)
    cfg.tracking.uri = str(tmp_path / "mlruns")
    with pytest.raises(TrackingError, match="file store"):
        resolve_tracking(cfg)
    cfg.tracking.uri = "sqlite:///relative.db"
    with pytest.raises(TrackingError, match="absolute"):
        resolve_tracking(cfg)


def test_no_track_gives_noop_tracker_without_importing_mlflow(tmp_path):
    code = (
        "import sys\n"
        "from intradayjules.config import ExperimentConfig\n"
        "from intradayjules.track import make_tracker, resolve_tracking\n"
        f"t = make_tracker(resolve_tracking(ExperimentConfig(workdir={str(tmp_path)!r}), enabled=False))\n"
        "with t.start_run('x', params={'a': 1}) as r:\n"
        "    r.log_metrics({'m': 1.0}, step=1)\n"
        "with t.trial(None, 0) as tr:\n"
        "    tr.log_metrics({'m': 2.0}, step=1)\n"
        "print(type(t).__name__, r.run_id, r.ended, 'mlflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["NoOpTracker", "None", "FINISHED", "False"]
    assert not (tmp_path / "mlflow.db").exists()


def test_dead_server_is_a_fast_clear_error(tmp_path, monkeypatch):
    port = free_port()  # nothing listens there: connection refused
    uri = f"http://127.0.0.1:{port}"
    cfg = ExperimentConfig(workdir=tmp_path)
    cfg.tracking.uri = uri
    t0 = time.perf_counter()
    with pytest.raises(TrackingUnreachableError) as e:
        make_tracker(resolve_tracking(cfg))
    assert time.perf_counter() - t0 < 5
    assert uri in str(e.value) and "--no-track" in str(e.value)
    assert isinstance(make_tracker(resolve_tracking(cfg, enabled=False)), NoOpTracker)


def test_server_that_never_answers_times_out():
    with socket.socket() as s:  # accepts connections (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
        t0 = time.perf_counter()
        with pytest.raises(TrackingUnreachableError, match="unreachable"):
            check_reachable(uri, timeout=1.0)
        assert time.perf_counter() - t0 < 4


def test_live_server_passes_check(mlflow_server):
    check_reachable(mlflow_server.uri)
