"""``intradayjules paper`` end to end through the registry: the trained bundle is logged and registered,
``--model models:/NAME@champion`` resolves to it (every part verified), the command trades the held-out
replay, prints a reconciliation that agrees, and files the paper run's metrics under the model version."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from intradayjules.cli import app

runner = CliRunner()


@pytest.fixture()
def registered(deployed, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from intradayjules.config import ExperimentConfig
    from intradayjules.track import log_training_outputs, make_tracker, register_model

    monkeypatch.setenv("INTRADAYJULES_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = ExperimentConfig.model_validate({"name": "paper-cli", "workdir": str(tmp_path / "runs"),
                                           "tracking": {"enabled": True, "registered_model": "paper-demo"}})
    tracker = make_tracker(cfg)
    with tracker.run("train", deployed.cfg) as run:
        log_training_outputs(run, model_zip=deployed.run_dir / "model.zip")
        run_id = run.run_id
    info = register_model(tracker, run_id)
    path = tmp_path / "tracking.yaml"
    path.write_text(yaml.safe_dump({"workdir": str(tmp_path / "runs"), "tracking": {"registered_model": "paper-demo"}}))
    return tracker, info, path


def test_paper_command_on_the_registered_champion(deployed, registered, tmp_path):
    from intradayjules.track import resolve_bundle

    tracker, info, config = registered
    ref = f"models:/{info.name}@champion"
    got = resolve_bundle(ref, tracker=tracker)
    assert got.version == info.version and {"policy.pt", "scaler.json", "config.json"} <= {
        p.name for p in got.path.iterdir()}
    res = runner.invoke(app, ["paper", "--model", ref, "--feed", f"replay:{deployed.bars}", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert re.search(r"(\d+)/\1 sessions agree to the cent", res.output), res.output
    pnl = float(re.search(r"total P&L: paper (-?[\d,\.]+) USD", res.output).group(1).replace(",", ""))
    mv = tracker.client.get_model_version(info.name, info.version)
    run_id = mv.tags["intradayjules.paper_run_id"]
    assert float(mv.tags["intradayjules.paper_pnl"]) == pytest.approx(pnl, abs=0.01)
    run = tracker.client.get_run(run_id)
    assert run.data.tags["intradayjules.paper_of"] == f"{info.name}/{info.version}"
    assert run.data.tags["intradayjules.kind"] == "paper"
    m = run.data.metrics
    assert m["paper/total_pnl"] == pytest.approx(pnl, abs=0.01) and m["paper/reconciliation_ok"] == 1.0
    daily = tracker.client.get_metric_history(run_id, "paper/daily_pnl")
    assert len(daily) == m["paper/sessions"] >= 8
    assert sum(x.value for x in daily) == pytest.approx(pnl, abs=0.01)
    # running it again resumes the finished journal: nothing new is traded
    res = runner.invoke(app, ["paper", "--model", ref, "--feed", f"replay:{deployed.bars}", "--config", str(config),
                              "--no-track"])
    assert res.exit_code == 0 and "resumed after" in res.output and " 0 orders" in res.output, res.output


def test_paper_command_refuses_a_bundle_without_deployment(deployed, tmp_path):
    import shutil

    bad = tmp_path / "net-only.bundle"
    shutil.copytree(deployed.bundle, bad)
    m = json.loads((bad / "manifest.json").read_text())
    del m["deployment"]
    (bad / "manifest.json").write_text(json.dumps(m))
    res = runner.invoke(app, ["paper", "--model", str(bad), "--feed", f"replay:{deployed.bars}", "--no-track",
                              "--journal", str(tmp_path / "j.db")])
    assert res.exit_code == 2 and "no deployment section" in res.output, res.output
