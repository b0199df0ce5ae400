"""A password in ``tracking.uri`` (the docs' ``scheme://user:PASS@host`` form) appears in no file a run
writes and in nothing it prints: train and tune against a real MLflow server reached through that URI,
then grep every file (work dir, the server's database and artifact store) and the commands' output."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from intradayjules.cli import app

pytestmark = pytest.mark.slow
SECRET = "pw-S3cr3t-9931"
OBJ = Path(__file__).resolve().parents[1] / "tune" / "objectives.py"
runner = CliRunner()


def _config(tmp_path, uri: str) -> Path:
    cfg = {
        "name": "redact", "workdir": str(tmp_path / "runs"),
        "data": {"synthetic": {"n_symbols": 6, "days": 40, "seed": 0}},
        "features": {"store_dir": str(tmp_path / "store")},
        "env": {"mode": "multi"},
        "agent": {"total_timesteps": 600, "learning_starts": 200, "buffer_size": 2000, "checkpoint_freq": 300,
                  "batch_size": 32, "target_update_interval": 200},
        "risk": {"eval_freq": 300, "eval_episodes": 1},
        "tracking": {"uri": uri, "experiment": f"redact-{uuid.uuid4().hex[:8]}",
                     "registered_model": f"redact-{uuid.uuid4().hex[:8]}"},
    }
    p = tmp_path / "input" / "cfg.yaml"  # the user's own input: the only file allowed to hold the password
    p.parent.mkdir()
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_no_file_or_output_of_a_run_carries_the_tracking_password(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    uri = mlflow_server.uri.replace("http://", f"http://tune:{SECRET}@")
    cfg = _config(tmp_path, uri)
    train = runner.invoke(app, ["train", "-c", str(cfg)])
    assert train.exit_code == 0, train.output
    assert "http://tune:***@127.0.0.1" in train.output  # the URI was printed, redacted
    tune = runner.invoke(app, ["tune", "-c", str(cfg), "--trials", "4", "--workers", "1", "--no-progress",
                               "--trial-fn", f"{OBJ}:leaky", "--study", "s"])
    assert tune.exit_code == 0, tune.output
    bad = runner.invoke(app, ["tune", "-c", str(cfg), "--trials", "1", "--study", "s", "--no-progress"])
    assert bad.exit_code != 0  # "already exists ... --resume": an error message that names the storage

    # the run really went to the server, with the config as params (so the grep below is not vacuous)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    exp = client.get_experiment_by_name(yaml.safe_load(cfg.read_text())["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) >= 3  # train, the study's parent run, its trials
    train_run = next(r for r in runs if r.info.run_name == "redact")
    assert train_run.data.params["tracking.uri"].startswith("http://tune:***@127.0.0.1")

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != cfg]
    files += [p for p in mlflow_server.artifacts_dir.rglob("*") if p.is_file()]
    files += [p for p in mlflow_server.db.parent.glob(mlflow_server.db.name + "*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in files) and any(p.name == "worker_0.json" for p in files)
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaks, f"the password was written to {leaks}"
    for out in (train.output, tune.output, bad.output):
        assert SECRET not in out
