"""A killed main job resumes stage by stage (slow): the study is not rerun, training continues from its
newest signed checkpoint, the killed MLflow run is marked KILLED, and the run completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

TINY = """
name: resume
data: {synthetic: {n_symbols: 4, days: 45, seed: 0}}
env: {mode: multi}
agent: {total_timesteps: 6000, learning_starts: 300, buffer_size: 5000, checkpoint_freq: 1000, batch_size: 32,
        seed_workers: WORKERS}
risk: {eval_freq: 3000, eval_episodes: 1}
tune:
  n_trials: 2
  workers: 1
  pruner: none
  trial_timesteps: 600
  reports_per_trial: 1
  search_space:
    agent.learning_rate: {type: float, low: 0.0001, high: 0.001, log: true}
"""


def start(work: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from intradayjules.cli import main; main()", "run", "--config",
                             str(work / "tiny.yaml")], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env={**os.environ, "COLUMNS": "200"})


def signed_checkpoints(d: Path) -> list[Path]:
    return [p for p in (d / "checkpoints").glob("*_steps.zip") if p.with_name(p.name + ".hmac").exists()]


def study_trials(work: Path, study: str) -> list[tuple[int, str, dict]]:
    """(number, state, params) of every trial in the study's Optuna journal."""
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(work / "runs" / "tune" / study / "journal.log")))
    return [(t.number, t.state.name, t.params) for t in optuna.load_study(study_name=study, storage=storage).trials]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_killed_run_resumes_each_stage(tmp_path, workers):
    """``workers`` 1: the retraining runs in the job's process (its MLflow run is live when killed); 2: the
    retraining and the baseline train side by side in forked workers, both killed mid-way."""
    work = tmp_path
    (work / "tiny.yaml").write_text(TINY.replace("WORKERS", str(workers)))
    out = work / "runs" / "resume"
    proc = start(work)
    try:  # wait for the study to complete and the retraining to write a signed checkpoint, then SIGKILL
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            stages = out / "stages.json"
            done = json.loads(stages.read_text())["stages"] if stages.exists() else {}
            if "study" in done and "train" not in done and signed_checkpoints(out / "model") \
                    and (workers == 1 or signed_checkpoints(out / "baseline")):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"never reached a retraining checkpoint (rc {proc.poll()}):\n{proc.stdout.read()[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    proc_output = proc.stdout.read()
    first = json.loads((out / "stages.json").read_text())
    assert not first["finished"] and "train" not in first["stages"]
    study = first["stages"]["study"]["study"]
    trials_before = study_trials(work, study)
    assert len(trials_before) == 2 and all(s == "COMPLETE" for _, s, _ in trials_before)
    killed_at = max(int(p.stem.split("_")[-2]) for p in signed_checkpoints(out / "model"))
    assert 0 < killed_at < 6000
    assert not (out / "summary.json").exists()

    second = start(work)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output[-6000:]
    flat = " ".join(output.split())
    # the study was not rerun: the same trials with the same parameters, none added
    assert study_trials(work, study) == trials_before
    assert "stopped after study: resuming" in flat
    # retraining continued from the newest signed checkpoint, not from step 0
    final = json.loads((out / "stages.json").read_text())
    assert final["finished"] and final["stages"]["train"]["resumed_from"].endswith(f"_{killed_at}_steps.zip")
    assert f"resuming from checkpoint dqn_{killed_at}_steps.zip ({killed_at} steps)" in flat
    progress = pd.read_csv(out / "model" / "progress.csv")  # SB3's log of this process's training only
    assert progress["time/total_timesteps"].min() > killed_at
    assert json.loads((out / "model" / "metrics.json").read_text())["timesteps"] == 6000
    from mlflow.tracking import MlflowClient

    summary = json.loads((out / "summary.json").read_text())
    client = MlflowClient(summary["tracking_uri"])
    exp = client.get_experiment_by_name("intradayjules")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    if workers == 1:
        # the baseline was not reached before the kill: it trained from scratch (no checkpoint to resume)
        assert final["stages"]["baseline"]["resumed_from"] is None
        # the killed process's MLflow model run was marked KILLED on the restart
        assert "was left RUNNING" in flat and "marked KILLED" in flat
        killed = [r for r in runs if r.info.status == "KILLED" and r.info.run_name == "resume"]
        assert killed and "intradayjules.orphaned" in killed[0].data.tags
    else:
        # the baseline trained beside the retraining and was killed too: it resumed from its own checkpoint
        assert "beside it (2 processes)" in " ".join(proc_output.split())
        assert final["stages"]["baseline"]["resumed_from"] is not None
        assert json.loads((out / "baseline" / "metrics.json").read_text())["timesteps"] == 6000
        # the runs are recorded once each, after their training (none was open at the kill)
        assert [r.info.status for r in runs if r.info.run_name == "resume"] == ["FINISHED"]
        assert [r.info.status for r in runs if r.info.run_name == "resume-baseline"] == ["FINISHED"]
    # the final outputs exist, and the one registered version is the first: champion
    assert (out / "report.html").exists() and (out / "model" / "model.zip").exists()
    assert (summary["registered"]["version"], summary["registered"]["alias"]) == ("1", "champion")
