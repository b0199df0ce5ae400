"""A work dir moved with ``intradayjules workdir move`` still loads its registered model by alias."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from intradayjules.cli import app
from intradayjules.track import load_model, make_tracker, register_model, resolve_tracking
from intradayjules.track.workdir import LOCATION_COLUMNS, _replace_prefix, move_workdir

runner = CliRunner()


def _workdir_with_champion(root, cartpole_zip, template):
    import shutil

    work = root / "work"
    work.mkdir()
    shutil.copyfile(template, work / "mlflow.db")
    tracker = make_tracker(resolve_tracking(None, work))
    with tracker.start_run("train") as run:
        run.log_metrics({"x": 1.0}, step=1)
    register_model(tracker, run.run_id, cartpole_zip)
    (work / "e2e").mkdir()
    (work / "e2e" / "summary.json").write_text(json.dumps({"run_dir": str(work / "e2e"), "other": "/elsewhere"}))
    return work, tracker, run.run_id


def _locations(db):
    con = sqlite3.connect(db)
    try:
        out = []
        for table, col in LOCATION_COLUMNS:
            cols = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
            if col in cols:
                out += [v for (v,) in con.execute(f'SELECT "{col}" FROM "{table}"') if v]
        return out
    finally:
        con.close()


def test_replace_prefix_respects_path_boundaries():
    old, new = "/tmp/runs", "/data/w"
    assert _replace_prefix("file:///tmp/runs/mlartifacts/1", old, new) == "file:///data/w/mlartifacts/1"
    assert _replace_prefix("/tmp/runs", old, new) == "/data/w"
    assert _replace_prefix("/tmp/runs2/x", old, new) == "/tmp/runs2/x"          # another folder
    assert _replace_prefix("/home/x/tmp/runs/y", old, new) == "/home/x/tmp/runs/y"  # not a prefix
    assert _replace_prefix('{"uri": "file:///tmp/runs/d"}', old, new) == '{"uri": "file:///data/w/d"}'
    assert _replace_prefix("sqlite:////tmp/runs/mlflow.db", old, new) == "sqlite:////data/w/mlflow.db"


def test_moved_workdir_loads_champion_by_alias(tmp_path, cartpole_zip, sqlite_template, monkeypatch):
    from stable_baselines3 import DQN

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work, tracker, run_id = _workdir_with_champion(tmp_path, cartpole_zip, sqlite_template)
    old = str(work)
    assert any(old in v for v in _locations(work / "mlflow.db"))  # MLflow stored absolute paths
    dst = tmp_path / "elsewhere" / "moved"

    res = runner.invoke(app, ["workdir", "move", str(work), str(dst)])
    assert res.exit_code == 0, res.output
    assert not work.exists() and (dst / "mlflow.db").is_file()
    locs = _locations(dst / "mlflow.db")
    assert locs and not any(old + "/" in v or v.endswith(old) for v in locs)
    assert all(str(dst) in v for v in locs if v.startswith("file:"))
    summary = json.loads((dst / "e2e" / "summary.json").read_text())
    assert summary == {"run_dir": str(dst / "e2e"), "other": "/elsewhere"}

    moved = make_tracker(resolve_tracking(None, dst))
    name = moved.target.registered_model
    pyfunc = load_model(moved, f"models:/{name}@champion", tmp_path / "dl")
    obs = np.random.default_rng(0).normal(scale=0.5, size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(pyfunc.predict(obs), DQN.load(cartpole_zip, device="cpu").predict(obs, deterministic=True)[0])
    # the run's metrics and its artifact root moved with it
    info = moved.client.get_run(run_id)
    assert info.data.metrics == {"x": 1.0} and info.info.artifact_uri.startswith(dst.as_uri())


def test_unmoved_paths_break_loading_which_is_why_move_exists(tmp_path, cartpole_zip, sqlite_template, monkeypatch):
    """Control: a plain ``mv`` leaves mlflow.db pointing at the old place, and loading by alias fails."""
    import shutil

    from mlflow.exceptions import MlflowException

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work, _, _ = _workdir_with_champion(tmp_path, cartpole_zip, sqlite_template)
    dst = tmp_path / "plain-mv"
    shutil.move(str(work), str(dst))
    moved = make_tracker(resolve_tracking(None, dst))
    with pytest.raises((MlflowException, OSError)):
        load_model(moved, f"models:/{moved.target.registered_model}@champion", tmp_path / "dl")


def test_dry_run_changes_nothing_and_refusals(tmp_path, cartpole_zip, sqlite_template):
    work, _, _ = _workdir_with_champion(tmp_path, cartpole_zip, sqlite_template)
    before = (work / "mlflow.db").read_bytes()
    rep = move_workdir(work, tmp_path / "new", dry_run=True)
    assert rep.db_rows.get("experiments.artifact_location") == 1
    assert rep.db_rows.get("runs.artifact_uri") == 1 and rep.db_rows.get("model_versions.source") == 1
    assert (work / "mlflow.db").read_bytes() == before and not (tmp_path / "new").exists()
    # refusals name the path
    (tmp_path / "taken").mkdir()
    res = runner.invoke(app, ["workdir", "move", str(work), str(tmp_path / "taken")])
    assert res.exit_code == 1 and "already exists" in res.output
    res = runner.invoke(app, ["workdir", "move", str(tmp_path / "taken"), str(tmp_path / "x")])
    assert res.exit_code == 1 and "no mlflow.db" in res.output
    # a writer holding the database: refused before anything moves
    con = sqlite3.connect(work / "mlflow.db", isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    try:
        res = runner.invoke(app, ["workdir", "move", str(work), str(tmp_path / "y")])
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert res.exit_code == 1 and "cannot lock" in res.output and work.exists()
