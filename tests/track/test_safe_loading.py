"""Loading a model never runs code from it: a zip whose pickle writes a marker file when unpickled is
refused on every path (evaluate with a file, a run directory, the registry), and the marker never
appears. The same paths load the policy bundle, unpickling nothing, with the SB3 model's actions."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from intradayjules.agents.bundle import bundle_path_for
from intradayjules.cli import app
from intradayjules.config import ExperimentConfig
from intradayjules.track import IntegrityError, load_policy, register_model, resolve_model
from intradayjules.track.lineage import TAG_MODEL_SHA256
from intradayjules.track.registry import LOADER_MODULE, MODEL_ARTIFACT, SB3_DATA_DIR

from .conftest import artifact_file_on_disk

runner = CliRunner()
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the server backend adds nothing here


def _config(tmp_path, target=None) -> Path:
    cfg = ExperimentConfig(name="safe", workdir=tmp_path / "work")
    if target is not None:
        cfg.tracking = cfg.tracking.model_copy(update={"uri": target.uri, "experiment": target.experiment,
                                                       "registered_model": target.registered_model})
    else:
        cfg.tracking.enabled = False
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return p


def _evaluate(ref, config, *extra):
    return runner.invoke(app, ["evaluate", "-m", str(ref), "-c", str(config), "--json", *extra],
                         env={"MLFLOW_TRACKING_URI": ""})


def test_evaluate_refuses_a_malicious_zip_file(backend, tmp_path, cartpole_zip, malicious):
    evil = malicious.sb3_zip(cartpole_zip, tmp_path / "model.zip")
    cfg = _config(tmp_path)
    r = _evaluate(evil, cfg)
    assert r.exit_code != 0 and "--trust-pickle" in r.output, r.output
    # a .sha256 sidecar that does not match: refused with --trust-pickle too (it used to load anyway)
    (tmp_path / "model.zip.sha256").write_text(hashlib.sha256(b"something else").hexdigest() + "  model.zip\n")
    r = _evaluate(evil, cfg, "--trust-pickle")
    assert r.exit_code != 0 and "integrity check" in r.output, r.output
    assert not malicious.marker.exists()


def test_evaluate_refuses_a_malicious_zip_in_a_run_directory(backend, tmp_path, cartpole_zip, malicious):
    cfg = _config(tmp_path)
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    malicious.sb3_zip(cartpole_zip, run / "model.zip")
    # a run directory with only a (malicious) zip: no bundle, refused
    r = _evaluate(run, cfg)
    assert r.exit_code != 0 and "--trust-pickle" in r.output, r.output
    # a genuine bundle beside a replaced zip: the zip is not the model the bundle came from, refused
    shutil.copytree(bundle_path_for(cartpole_zip), run / "model.bundle")
    r = _evaluate(run, cfg)
    assert r.exit_code != 0 and "is not the model its bundle" in r.output, r.output
    r = _evaluate(run / "model.zip", cfg, "--trust-pickle")
    assert r.exit_code != 0, r.output
    assert not malicious.marker.exists()


def _log_legacy_version(tracker, zip_path: Path) -> str:
    """A registry version as the code before the bundle logged it (SB3 zip + sb3.json, no bundle), i.e.
    what anyone with write access to the tracking server can still register. Returns models:/ ref."""
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    run = tracker.start_run("legacy")
    tmp = zip_path.parent / "legacy-model"
    data = tmp / SB3_DATA_DIR
    data.mkdir(parents=True)
    shutil.copyfile(zip_path, data / "model.zip")
    (data / "sb3.json").write_text(json.dumps({"algo": "DQN", "sha256": digest}))
    model_dir = tracker.save_pyfunc(tmp / MODEL_ARTIFACT, data, LOADER_MODULE, [])
    run.log_artifacts(model_dir, MODEL_ARTIFACT)
    run.set_tags({TAG_MODEL_SHA256: digest})
    run.end()
    v = register_model(tracker, run.run_id, alias="legacy")
    return f"models:/{v.name}@legacy"


def test_registry_version_without_bundle_is_refused(backend, tracker, target, tmp_path, cartpole_zip, malicious):
    evil = malicious.sb3_zip(cartpole_zip, tmp_path / "evil.zip")
    ref = _log_legacy_version(tracker, evil)
    assert resolve_model(tracker, ref).verified  # its digests match: integrity is not safety
    with pytest.raises(IntegrityError, match="no policy bundle"):
        load_policy(ref, tracker=tracker)
    r = _evaluate(ref, _config(tmp_path, target))
    assert r.exit_code != 0 and "--trust-pickle" in r.output, r.output
    assert not malicious.marker.exists()


def test_registry_loads_the_bundle_and_never_the_zip(backend, tracker, tmp_path, cartpole_zip, malicious,
                                                     monkeypatch):
    """A version whose zip is malicious but whose bundle is genuine (as if the zip were swapped before
    logging and the bundle's record of its zip edited to match): loading takes the bundle only."""
    evil = malicious.sb3_zip(cartpole_zip, tmp_path / "model.zip")
    bundle = shutil.copytree(bundle_path_for(cartpole_zip), tmp_path / "model.bundle")
    m = json.loads((bundle / "manifest.json").read_text())
    m["source"]["zip_sha256"] = hashlib.sha256(evil.read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(m))
    run = tracker.start_run("train")
    run.end()
    v = register_model(tracker, run.run_id, evil)
    for name in ("loads", "load"):
        monkeypatch.setattr(pickle, name, lambda *a, **k: pytest.fail("unpickled during load"))
    policy = load_policy(f"models:/{v.name}@champion", tracker=tracker)
    monkeypatch.undo()
    from stable_baselines3 import DQN

    reference = DQN.load(str(cartpole_zip))  # the benign original (signed fixture)
    obs = np.random.default_rng(0).normal(scale=0.5, size=(300, 4)).astype(np.float32)
    np.testing.assert_array_equal(policy.predict(obs)[0], reference.predict(obs, deterministic=True)[0])
    assert not malicious.marker.exists()


def test_tampered_mlmodel_is_refused(backend, tracker, tmp_path, cartpole_zip):
    """MLmodel names the code MLflow imports to load a model: it is checked like every other file."""
    run = tracker.start_run("train")
    run.end()
    v = register_model(tracker, run.run_id, cartpole_zip)
    mlmodel = artifact_file_on_disk(backend, tracker, run.run_id, "model/MLmodel", None)
    mlmodel.write_text(mlmodel.read_text().replace(LOADER_MODULE, "mlflow.pyfunc.model"))
    with pytest.raises(IntegrityError, match="MLmodel"):
        resolve_model(tracker, f"models:/{v.name}@champion", tmp_path / "dl")
