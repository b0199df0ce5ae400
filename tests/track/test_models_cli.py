"""``intradayjules models ...`` (the sub-app, as the CLI will mount it) and rerun from lineage."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from intradayjules.cli import models_cmd
from intradayjules.config import ExperimentConfig
from intradayjules.track import IntegrityError, Lineage, LineageMismatchError, plan_rerun, register_model, rerun_version

from .conftest import artifact_file_on_disk, free_port

runner = CliRunner()


def _invoke(target, *args):
    return runner.invoke(models_cmd.app, [*args, "--tracking-uri", target.uri], catch_exceptions=False,
                         env={"MLFLOW_TRACKING_URI": ""})


def _file_fingerprint(cfg, data_path=None) -> str:
    return hashlib.sha256((data_path or cfg.data.path).read_bytes()).hexdigest()


@pytest.fixture
def registered(tracker, tmp_path, cartpole_zip):
    """A version trained 'on' a data file, with that file's sha256 as its data fingerprint."""
    data = tmp_path / "bars.csv"
    data.write_text("timestamp,symbol,open,high,low,close,volume\n2025-01-02T14:30:00Z,AAA,1,1,1,1,100\n")
    cfg = ExperimentConfig(name="rerun-me", data={"source": "path", "path": str(data)})
    cfg.tracking.experiment = tracker.target.experiment
    lineage = Lineage.collect(cfg, data_fingerprint=_file_fingerprint(cfg), feature_version="1")
    run = tracker.start_run("train", tags=lineage.tags())
    run.end()
    v = register_model(tracker, run.run_id, cartpole_zip, lineage=lineage)
    return cfg, v, data, run


def test_list_show_promote_register(tracker, target, registered, cartpole_zip):
    cfg, v1, data, run = registered
    name = v1.name
    r = _invoke(target, "list")
    assert r.exit_code == 0 and name in r.output and "champion->v1" in r.output
    r = _invoke(target, "show", name, "@champion", "--json")
    assert r.exit_code == 0
    shown = json.loads(r.output)
    assert (shown["version"], shown["run_id"], shown["aliases"]) == ("1", run.run_id, ["champion"])
    assert shown["tags"]["intradayjules.model_sha256"] == hashlib.sha256(cartpole_zip.read_bytes()).hexdigest()
    # register the same run's model again, without moving the alias, then promote it
    r = _invoke(target, "register", run.run_id, "--name", name, "--alias", "-")
    assert r.exit_code == 0 and f"registered {name} v2" in r.output
    assert str(tracker.client.get_model_version_by_alias(name, "champion").version) == "1"
    r = _invoke(target, "promote", name, "2", "--alias", "champion")
    assert r.exit_code == 0 and f"{name}@champion -> v2" in r.output
    assert str(tracker.client.get_model_version_by_alias(name, "champion").version) == "2"
    r = _invoke(target, "list", name)
    assert r.exit_code == 0 and "champion" in r.output
    r = _invoke(target, "show", name, "7")
    assert r.exit_code == 1 and "not found" in r.output
    empty = tracker.start_run("no-model")
    empty.end()
    r = _invoke(target, "register", empty.run_id)
    assert r.exit_code == 1 and "no intradayjules SB3 model" in r.output


def test_unreachable_server_fails_fast_with_exit_2():
    dead = f"http://127.0.0.1:{free_port()}"
    r = runner.invoke(models_cmd.app, ["list", "--tracking-uri", dead])
    assert r.exit_code == 2 and "unreachable" in r.output and dead in r.output


def test_rerun_checks_fingerprint_then_retrains(tracker, target, registered, monkeypatch):
    cfg, v, data, run = registered
    ref = f"{v.name}@champion"
    calls = []
    plan, result = rerun_version(tracker, ref, retrain=lambda c, lin: calls.append((c, lin)) or "retrained",
                                 fingerprint=_file_fingerprint)
    assert result == "retrained" and len(calls) == 1
    got_cfg, got_lineage = calls[0]
    assert got_cfg.model_dump(mode="json") == cfg.model_dump(mode="json")
    assert got_lineage.data_fingerprint == _file_fingerprint(cfg) and got_lineage.feature_version == "1"

    # the CLI with hooks plugged in
    monkeypatch.setattr(models_cmd, "RETRAIN_HOOK", lambda c, lin: f"trained {c.name}")
    monkeypatch.setattr(models_cmd, "FINGERPRINT_HOOK", _file_fingerprint)
    r = _invoke(target, "rerun", ref)
    assert r.exit_code == 0 and "fingerprint matches" in r.output and "trained rerun-me" in r.output

    # the data changes: refused, naming the version, both fingerprints and the data
    old = _file_fingerprint(cfg)
    data.write_text(data.read_text() + "2025-01-02T14:35:00Z,AAA,1,1,1,1,100\n")
    with pytest.raises(LineageMismatchError, match="data no longer matches") as e:
        plan_rerun(tracker, f"models:/{v.name}@champion", fingerprint=_file_fingerprint)
    assert old in str(e.value) and _file_fingerprint(cfg) in str(e.value) and str(data) in str(e.value)
    r = _invoke(target, "rerun", ref)
    assert r.exit_code == 1 and "data no longer matches" in r.output and "trained" not in r.output


def test_rerun_refuses_tampered_config(tracker, target, backend, registered, request):
    cfg, v, data, run = registered
    server = request.getfixturevalue("mlflow_server") if backend == "server" else None
    conf = artifact_file_on_disk(backend, tracker, run.run_id, "lineage/config.json", server)
    raw = json.loads(conf.read_text())
    raw["agent"]["learning_rate"] = 0.5
    conf.write_text(json.dumps(raw, sort_keys=True, indent=1))
    with pytest.raises(IntegrityError, match="config.json"):
        plan_rerun(tracker, f"{v.name}@champion", fingerprint=_file_fingerprint)
