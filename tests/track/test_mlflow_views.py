"""What a newcomer sees in MLflow: the experiment kind, dataset inputs, model signature and input
example, the study's best value on its parent run, the report and parquet tables as artifacts."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from intradayjules.track import log_report_outputs, log_sb3_model
from intradayjules.track.mlflow_tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from intradayjules.track.tune_callbacks import BEST_METRIC, TAG_BEST_RUN, TAG_BEST_TRIAL, TrialTracking


def test_experiment_is_tagged_model_development(tracker):
    exp = tracker.client.get_experiment(tracker.experiment_id)
    assert exp.tags.get(EXPERIMENT_KIND_TAG) == "custom_model_development" == EXPERIMENT_KIND


def test_existing_untagged_experiment_gets_the_kind(tracker):
    from intradayjules.track import Tracker

    exp_id = tracker.client.create_experiment(tracker.target.experiment + "-old")
    assert EXPERIMENT_KIND_TAG not in tracker.client.get_experiment(exp_id).tags
    from dataclasses import replace

    again = Tracker(replace(tracker.target, experiment=tracker.target.experiment + "-old"))
    assert again.experiment_id == exp_id
    assert tracker.client.get_experiment(exp_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_run_records_its_dataset_from_the_lineage(tracker, tmp_path):
    data_dir = tmp_path / "bars"
    data_dir.mkdir()
    fp = "0123456789abcdef0123456789abcdef"
    with tracker.run("real", None, {"data_fingerprint": fp, "data_source": str(data_dir)}) as r1:
        pass
    with tracker.run("synth", None, {"data_fingerprint": fp[::-1], "data_source": "synthetic",
                                     "symbols": "AAA,BBB"}) as r2:
        pass
    with tracker.run("none", None, {}) as r3:
        pass
    (d1,) = tracker.client.get_run(r1.run_id).inputs.dataset_inputs
    assert (d1.dataset.name, d1.dataset.digest, d1.dataset.source_type) == ("bars", fp, "local")
    assert json.loads(d1.dataset.source) == {"uri": data_dir.resolve().as_uri()}
    assert {t.key: t.value for t in d1.tags} == {"mlflow.data.context": "training"}
    (d2,) = tracker.client.get_run(r2.run_id).inputs.dataset_inputs
    assert (d2.dataset.name, d2.dataset.digest, d2.dataset.source_type) == ("synthetic", fp[::-1], "code")
    assert json.loads(d2.dataset.source)["tags"] == {"generator": "synthetic", "symbols": "AAA,BBB"}
    assert tracker.client.get_run(r3.run_id).inputs.dataset_inputs == []


def test_model_has_signature_and_input_example(tracker, cartpole_zip, tmp_path):
    import gymnasium as gym
    import mlflow
    from stable_baselines3 import DQN

    with tracker.start_run("m") as run:
        log_sb3_model(run, cartpole_zip)
    local = tracker.download_run(run.run_id, "model", tmp_path / "m")
    info = mlflow.models.Model.load(str(local / "MLmodel"))
    sig = info.signature.to_dict()
    inputs, outputs = json.loads(sig["inputs"]), json.loads(sig["outputs"])
    assert inputs == [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]
    assert outputs[0]["type"] == "tensor" and outputs[0]["tensor-spec"]["shape"] == [-1]
    example = np.asarray(info.load_input_example(str(local)))
    assert example.shape == (1, 4) and gym.make("CartPole-v1").observation_space.contains(example[0].astype(np.float32))
    # the example's stored output is the model's greedy action for it
    model = DQN.load(cartpole_zip, device="cpu")
    expected = model.predict(example.astype(np.float32), deterministic=True)[0]
    pyfunc = mlflow.pyfunc.load_model(str(local))
    np.testing.assert_array_equal(pyfunc.predict(example.astype(np.float32)), expected)
    # the signature is enforced: a wrong observation width is refused by MLflow itself
    with pytest.raises(Exception, match="(?i)shape"):
        pyfunc.predict(np.zeros((2, 5), dtype=np.float32))


@pytest.mark.parametrize("direction, best", [("minimize", 1.0), ("maximize", 3.0)])
def test_study_best_value_on_parent_run(tracker, direction, best):
    tracking = TrialTracking.for_study(tracker, f"study-{direction}", direction=direction)
    values = {"0": 2.0, "1": 1.0, "2": 3.0}
    for tid, v in values.items():
        tracking.on_trial_start(tid, {"x": v})
        tracking.on_trial_end(tid, {"x": v}, "complete", v)
    tracking.on_trial_start("3", {"x": 0.0})  # a pruned trial with a better value does not count
    tracking.on_trial_end("3", {"x": 0.0}, "pruned", 0.0 if direction == "minimize" else 9.0)
    tracking.close()
    parent = tracker.client.get_run(tracking.parent_run_id)
    assert parent.data.metrics[BEST_METRIC] == best
    best_key = next(k for k, v in values.items() if v == best)
    assert parent.data.tags[TAG_BEST_TRIAL] == best_key
    assert parent.data.tags[TAG_BEST_RUN] == tracking.run_id_of(best_key)
    hist = sorted((m.step, m.value) for m in tracker.client.get_metric_history(parent.info.run_id, BEST_METRIC))
    # after 1, 2, 3 complete trials: the running best by hand
    running = [2.0, 1.0, 1.0] if direction == "minimize" else [2.0, 2.0, 3.0]
    assert [v for s, v in hist if s in (1, 2)] == running[:2] and dict(hist)[3] == running[2]


def test_report_and_parquet_tables_are_uploaded_with_sha256(tracker, tmp_path):
    import pandas as pd

    out = tmp_path / "job"
    (out / "tables").mkdir(parents=True)
    (out / "report.html").write_text("<html>r</html>")
    (out / "summary.json").write_text("{}")
    pd.DataFrame({"day": ["2024-01-02"], "pnl": [1.5]}).to_parquet(out / "tables" / "daily.parquet")
    pd.DataFrame({"t": [1]}).to_parquet(out / "trades.parquet")
    with tracker.start_run("job") as run:
        pass
    got = log_report_outputs(tracker, run.run_id, out, metrics={"sharpe": 1.25, "bad": float("nan"), "name": "x"})
    assert set(got) == {"report/report.html", "report/summary.json", "report/tables/daily.parquet",
                        "report/trades.parquet"}
    local = tracker.download_run(run.run_id, "report", tmp_path / "dl")
    for rel, digest in got.items():
        f = local / rel.split("/", 1)[1]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == digest
    assert pd.read_parquet(local / "tables" / "daily.parquet")["pnl"].tolist() == [1.5]
    assert tracker.client.get_run(run.run_id).data.metrics == {"test/sharpe": 1.25}
    assert log_report_outputs(tracker, None, out) == {}  # tracking off: nothing
