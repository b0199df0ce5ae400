"""The API as the trainer, evaluator and CLI call it: make_tracker(cfg), tracker.run(name, cfg, lineage
mapping), a whole run directory uploaded, `models register RUN_ID`, resolve_model_uri, and rerun checked
with the data layer's real fingerprint function."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from intradayjules.agents.bundle import bundle_path_for
from intradayjules.config import ExperimentConfig, SyntheticConfig, dump_config
from intradayjules.track import (LineageMismatchError, NoOpTracker, TrackingUnreachableError, make_tracker,
                                 plan_rerun, register_model, resolve_model_uri)

from .conftest import free_port


def test_make_tracker_from_config(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = ExperimentConfig(workdir=tmp_path)
    assert isinstance(make_tracker(cfg, enabled=False), NoOpTracker)
    cfg.tracking.uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingUnreachableError):
        make_tracker(cfg)
    with NoOpTracker().run("x", cfg, {"data_fingerprint": "f"}) as run:
        run.log_metrics({"a": 1.0}, step=1)
        assert run.log_artifacts(tmp_path) == {}


def test_run_dir_upload_register_resolve_and_rerun_with_real_fingerprint(tracker, target, tmp_path, monkeypatch,
                                                                         cartpole_zip):
    from intradayjules.data.fingerprint import experiment_fingerprint
    from intradayjules.data.synthetic import generate

    monkeypatch.setenv("INTRADAYJULES_CACHE", str(tmp_path / "cache"))
    data_dir = tmp_path / "market"
    generate(SyntheticConfig(n_symbols=3, days=3, seed=3)).write(data_dir)
    cfg = ExperimentConfig(name="pipe", workdir=tmp_path / "work",
                           data={"source": "path", "path": str(data_dir)})
    cfg.tracking = cfg.tracking.model_copy(update={
        "uri": target.uri, "experiment": target.experiment, "registered_model": target.registered_model})
    fp = experiment_fingerprint(cfg)
    lineage = {"data_fingerprint": fp, "feature_key": "fkey", "feature_version": "fv1", "package_version": "0.1.0",
               "data_source": "synthetic", "symbols": "A,B,C"}
    out = tmp_path / "work" / "pipe"
    out.mkdir(parents=True)
    (out / "model.zip").write_bytes(cartpole_zip.read_bytes())
    shutil.copytree(bundle_path_for(cartpole_zip), out / "model.bundle")  # what the trainer writes beside it
    (out / "config.yaml").write_text(dump_config(cfg))
    (out / "metrics.json").write_text("{}")
    with tracker.run("pipe", cfg, lineage) as run:
        for step in (100, 200):
            run.log_metrics({"risk/composite": step / 1000, "risk/stopped": step > 150, "note": "text"}, step=step)
        run.log_artifacts(out)
    r = tracker.client.get_run(run.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.tags["intradayjules.data_fingerprint"] == fp
    assert r.data.tags["intradayjules.feature_store_key"] == "fkey"
    assert r.data.tags["intradayjules.symbols"] == "A,B,C"
    assert len(r.data.tags["intradayjules.git_commit"]) == 40
    assert r.data.params["data.path"] == str(data_dir)
    assert [m.step for m in tracker.client.get_metric_history(run.run_id, "risk/composite")] == [100, 200]
    assert [m.value for m in tracker.client.get_metric_history(run.run_id, "risk/stopped")] == [0.0, 1.0]
    assert "note" not in r.data.metrics  # not a number: skipped with a warning, training goes on

    # `models register RUN_ID` on a run that uploaded its run directory (model.zip and model.bundle/)
    v = register_model(tracker, run.run_id)
    assert v.tags["intradayjules.bundle_sha256"] == hashlib.sha256(
        (out / "model.bundle" / "manifest.json").read_bytes()).hexdigest()
    assert v.aliases == ["champion"] and v.tags["intradayjules.data_fingerprint"] == fp
    # evaluate --model models:/NAME@champion: the evaluator's call
    zip_path = resolve_model_uri(f"models:/{v.name}@champion", cfg=cfg)
    assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == hashlib.sha256(cartpole_zip.read_bytes()).hexdigest()

    # rerun: same data -> allowed (default fingerprint = the data layer's experiment_fingerprint)
    plan = plan_rerun(tracker, f"{v.name}@champion")
    assert plan.current_fingerprint == fp and plan.config.data.path == data_dir
    # the data changes (one bar dropped) -> refused
    bars = pd.read_parquet(data_dir / "bars.parquet")
    bars.iloc[:-1].to_parquet(data_dir / "bars.parquet", index=False)
    with pytest.raises(LineageMismatchError, match="data no longer matches"):
        plan_rerun(tracker, f"{v.name}@champion")
