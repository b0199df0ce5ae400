"""Fixtures for tracking tests: a real ``mlflow server`` on 127.0.0.1, a small SB3 DQN on CartPole-v1,
and a tracking target per backend (sqlite file, server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(autouse=True)
def _model_cache(tmp_path, monkeypatch):
    """Registry downloads without an explicit destination go to a per-test cache, not ~/.cache."""
    monkeypatch.setenv("INTRADAYJULES_MODEL_CACHE", str(tmp_path / "model-cache"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MlflowServer:
    uri: str
    pid: int
    artifacts_dir: Path
    db: Path
    log: Path


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the server's process group by its pid: SIGTERM, then SIGKILL after 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # uvicorn's worker may outlive the parent for a moment
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> MlflowServer:
    """A real ``mlflow server`` (1 worker, job execution off, sqlite backend, proxied artifacts in tmp),
    ready when GET /health answers; stopped by process group at the end of the session."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    db = root / "server.db"
    artifacts = root / "artifacts"
    log = root / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--backend-store-uri", f"sqlite:///{db}",
           "--artifacts-destination", str(artifacts)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            _stop_group(proc)
            pytest.fail(f"mlflow server not healthy after 90 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)
    try:
        yield MlflowServer(uri=uri, pid=proc.pid, artifacts_dir=artifacts, db=db, log=log)
    finally:
        _stop_group(proc)


@pytest.fixture(scope="session")
def cartpole_zip(tmp_path_factory) -> Path:
    """A Stable-Baselines3 DQN trained for 300 steps on CartPole-v1 (seed 0), saved as a zip."""
    import gymnasium as gym

    from intradayjules.agents.export import save_model
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_starts=50, buffer_size=1_000, seed=0,
                policy_kwargs={"net_arch": [32]}, device="cpu")
    model.learn(300)
    path = tmp_path_factory.mktemp("cartpole") / "dqn.zip"
    save_model(model, path)  # signed zip + dqn.bundle/ beside it, as the trainer writes them
    return path


@pytest.fixture(params=["sqlite", "server"])
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An empty, fully migrated MLflow sqlite database (creating one costs ~4 s; copying it ~0)."""
    from intradayjules.track import Tracker, TrackingTarget

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    Tracker(TrackingTarget(uri=f"sqlite:///{db}", artifact_location=None)).client.search_experiments()
    return db


@pytest.fixture
def target(backend, tmp_path, monkeypatch, request):
    """A TrackingTarget on the parametrised backend; a fresh experiment per test on the shared server."""
    from intradayjules.config import ExperimentConfig
    from intradayjules.track import resolve_tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = ExperimentConfig(workdir=tmp_path / "work")
    if backend == "sqlite":
        import shutil

        (tmp_path / "work").mkdir()
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "work" / "mlflow.db")
    if backend == "server":
        server = request.getfixturevalue("mlflow_server")
        cfg.tracking.uri = server.uri
        cfg.tracking.experiment = f"test-{uuid.uuid4().hex[:10]}"
        cfg.tracking.registered_model = f"dqn-{uuid.uuid4().hex[:10]}"
    return resolve_tracking(cfg)


@pytest.fixture
def tracker(target):
    from intradayjules.track import make_tracker

    return make_tracker(target)


def artifact_file_on_disk(backend: str, tracker, run_id: str, rel: str, server: MlflowServer | None) -> Path:
    """Where the artifact store keeps ``rel`` of ``run_id`` on local disk (to tamper with it)."""
    uri = tracker.client.get_run(run_id).info.artifact_uri
    if backend == "sqlite":
        assert uri.startswith("file://")
        return Path(uri[len("file://"):]) / rel
    assert uri.startswith("mlflow-artifacts:/"), uri
    return server.artifacts_dir / uri[len("mlflow-artifacts:/"):].lstrip("/") / rel
