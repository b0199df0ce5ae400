"""The main job with another algorithm (slow): agent.algo flows through tuning, retraining and evaluation;
the baseline stays the original DQN set-up."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intradayjules.agents.algos import algo_of_zip
from intradayjules.cli import app

SMALL = """
name: e2e-qrdqn
data: {synthetic: {n_symbols: 6, days: 45, seed: 0}}
env: {mode: multi}
agent:
  algo: qrdqn
  qrdqn: {n_quantiles: 16, risk_measure: cvar, cvar_alpha: 0.25}
  total_timesteps: 2000
  learning_starts: 300
  buffer_size: 3000
  checkpoint_freq: 100000
risk: {eval_freq: 1000, eval_episodes: 2}
tune:
  n_trials: 2
  workers: 1
  pruner: none
  trial_timesteps: 1000
  reports_per_trial: 2
"""


@pytest.mark.slow
def test_main_job_with_qrdqn(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "small.yaml"
    cfg.write_text(SMALL)
    res = CliRunner().invoke(app, ["run", "--config", str(cfg), "--no-track"])
    assert res.exit_code == 0, res.output
    run_dir = tmp_path / "runs" / "e2e-qrdqn"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert algo_of_zip(summary["model"]).name == "qrdqn"
    assert algo_of_zip(run_dir / "baseline" / "model.zip").name == "dqn"
    data = json.loads((run_dir / "report_data.json").read_text())
    # the default QR-DQN space was searched (its own parameter among the trials' params)
    assert "agent.qrdqn.n_quantiles" in data["tuning"]["best_params"]
    assert Path(run_dir / "model" / "policy.pt").exists()
