"""The main job's retraining and baseline trained side by side in forked workers (slow): the same models
and the same tracked runs (metrics by step, outputs) as one after the other in the job's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from intradayjules.agents.sb3 import load_model

SMALL = """
name: sbs
data: {synthetic: {n_symbols: 4, days: 40, seed: 0}}
env: {mode: multi, n_envs: 4, n_assets: 4}
agent: {total_timesteps: 2400, learning_starts: 400, buffer_size: 4000, checkpoint_freq: 1200}
risk: {eval_freq: 800, eval_episodes: 2}
tune:
  n_trials: 2
  workers: 1
  trial_timesteps: 1200
  reports_per_trial: 2
  search_space:
    agent.learning_rate: {type: float, low: 0.0001, high: 0.001, log: true}
"""


def _job(tmp_path, workers: int):
    """The job in a fresh interpreter (in this test session, threads left by earlier tests would make the
    job train here instead: ``procs.fork_is_safe``); its output, models and tracked runs."""
    raw = yaml.safe_load(SMALL)
    raw["workdir"] = str(tmp_path / f"w{workers}")
    raw["features"] = {"store_dir": str(tmp_path / "store")}
    raw["agent"]["seed_workers"] = workers
    raw["tracking"] = {"uri": f"sqlite:///{tmp_path}/w{workers}.db"}
    cfg = tmp_path / f"w{workers}.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, "-c", "from intradayjules.cli import main; main()", "run", "--config",
                          str(cfg)], capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = tmp_path / f"w{workers}" / "sbs"
    summary = json.loads((run_dir / "summary.json").read_text())
    client = MlflowClient(summary["tracking_uri"])
    runs = {}
    for r in client.search_runs([e.experiment_id for e in client.search_experiments()]):
        if r.info.run_name in ("sbs", "sbs-baseline"):
            history = {k: [(m.step, m.value) for m in sorted(client.get_metric_history(r.info.run_id, k),
                                                              key=lambda m: m.step)]
                       for k in ("eval/objective", "risk/composite")}
            runs[r.info.run_name] = (r.info.status, history, sorted(a.path for a in client.list_artifacts(r.info.run_id)))
    return run_dir, " ".join(out.stdout.split()), runs


@pytest.mark.slow
def test_side_by_side_gives_the_same_models_and_runs(tmp_path):
    alone, said_alone, runs_alone = _job(tmp_path, 1)
    both, said_both, runs_both = _job(tmp_path, 2)
    assert "beside it" not in said_alone
    assert "beside it (2 processes)" in said_both, said_both[-3000:]  # the workers really ran
    for arm in ("model", "baseline"):
        a = load_model(alone / arm / "model.zip").policy.state_dict()
        b = load_model(both / arm / "model.zip").policy.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), arm
    assert (alone / "model" / "evaluation.json").read_text() == (both / "model" / "evaluation.json").read_text()
    assert set(runs_alone) == set(runs_both) == {"sbs", "sbs-baseline"}
    for name in runs_alone:
        status, history, artifacts = runs_both[name]
        assert status == "FINISHED" and artifacts == runs_alone[name][2], name
        assert history == runs_alone[name][1] and len(history["eval/objective"]) >= 3, name
    for policy in ("model", "baseline"):  # the test-session records of both arms
        a = pd.read_parquet(alone / "eval" / policy / "daily.parquet")
        pd.testing.assert_frame_equal(a, pd.read_parquet(both / "eval" / policy / "daily.parquet"))
