"""Optuna backend with real worker processes sharing a journal file (objective: tests/tune/objectives.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from intradayjules.config import config_from_dict
from intradayjules.tune.optuna_backend import count_trials, open_storage, run_optuna
from intradayjules.tune.results import TuneError

HERE = Path(__file__).resolve().parent
OBJ = HERE / "objectives.py"


WIDE_SPACE = {"agent.learning_rate": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
              "agent.gamma": {"type": "float", "low": 0.9, "high": 0.999}}


def _cfg(tmp_path, fn="noisy_quadratic", **tune):
    return config_from_dict({"workdir": str(tmp_path / "runs"),
                             "tune": {"trial_fn": f"{OBJ}:{fn}", **tune}})


def _study(tmp_path, name):
    st = open_storage(f"journal:{tmp_path / 'runs' / 'tune' / name / 'journal.log'}")
    return optuna.load_study(study_name=name, storage=st)


def _cli(tmp_path, *args, env=None):
    cmd = [sys.executable, "-m", "intradayjules.cli.tune_cmd", "--no-progress",
           "--set", f"workdir={tmp_path / 'runs'}", "--trial-fn", f"{OBJ}:noisy_quadratic", *args]
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_worker_processes_share_the_study_and_prune(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.03")
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("IJ_TEST_EVENTS", str(events))
    # Which trials have finished when another reports decides what median pruning compares with. With the
    # default space (lr over 2 decades) one worker ordering made the four trials that open pruning the
    # worst of the study and nothing fell below their median (CI, lower-bound env). Over 5 decades the
    # objective spans 0..-9 and every ordering has trials far below the median.
    cfg = _cfg(tmp_path, callbacks=[f"{OBJ}:EventLog"], search_space=WIDE_SPACE)
    res = run_optuna(cfg, workers=2, n_trials=14, study="par", pruner="median", progress=False)
    assert res.n_finished == 14 and res.n_failed == 0 and res.n_interrupted == 0
    assert res.n_pruned >= 1, "median pruning never triggered"
    assert res.n_complete >= 1
    pruned = [t for t in res.trials if t["state"] == "pruned"]
    assert any(t["last_step"] < 20 for t in pruned)  # stopped before the last evaluation
    pids = {t["worker_pid"] for t in res.trials}
    assert len(pids) == 2, f"trials ran in {pids}, expected two worker processes"
    assert os.getpid() not in pids
    # the best value is the best complete trial in the storage, not an intermediate value
    study = _study(tmp_path, "par")
    complete = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert res.best_value == max(complete)
    # tracking callbacks saw every trial, in the worker processes, with the same end states
    ev = [json.loads(line) for line in events.read_text().splitlines()]
    ends = {e["trial"]: e["state"] for e in ev if e["event"] == "end"}
    assert sorted(ends.values()) == sorted(t["state"] for t in res.trials)
    assert sum(e["event"] == "report" for e in ev) > 14
    summary = json.loads(Path(res.run_dir, "summary.json").read_text())
    assert summary["n_pruned"] == res.n_pruned


def test_failing_and_nan_trials_are_recorded_and_the_study_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    cfg = _cfg(tmp_path, fn="flaky", search_space={
        "agent.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "agent.gamma": {"type": "float", "low": 0.9, "high": 0.9999},
        "agent.batch_size": {"type": "categorical", "choices": [32, 64, 256]},
    })
    res = run_optuna(cfg, workers=2, n_trials=12, study="flaky", pruner="hyperband", progress=False)
    assert res.n_finished == 12
    failed = [t for t in res.trials if t["state"] == "failed"]
    reasons = " | ".join(t["fail_reason"] for t in failed)
    assert any(t["params"]["agent.batch_size"] == 32 for t in failed)
    assert "simulated training crash" in reasons
    assert "objective is nan" in reasons
    assert all(t["params"]["agent.batch_size"] in (32, 256) for t in failed)
    assert res.n_complete + res.n_pruned == sum(t["params"]["agent.batch_size"] == 64 for t in res.trials)
    crash = next(t for t in failed if t["params"]["agent.batch_size"] == 32)
    log = Path(res.run_dir, "trials", f"{int(crash['id']):05d}", "error.log").read_text()
    assert "RuntimeError: simulated training crash" in log


def test_sequential_baseline_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    runs = [run_optuna(_cfg(tmp_path), workers=1, n_trials=6, study=f"seq{i}", pruner="none", progress=False)
            for i in range(2)]
    assert [t["params"] for t in runs[0].trials] == [t["params"] for t in runs[1].trials]
    assert [t["value"] for t in runs[0].trials] == [t["value"] for t in runs[1].trials]
    assert runs[0].n_pruned == 0 and runs[0].n_complete == 6


def test_existing_study_needs_resume_and_resume_needs_a_study(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    run_optuna(_cfg(tmp_path), workers=1, n_trials=2, study="once", pruner="none", progress=False)
    with pytest.raises(TuneError, match="already exists.*--resume"):
        run_optuna(_cfg(tmp_path), workers=1, n_trials=2, study="once", progress=False)
    with pytest.raises(TuneError, match="no study 'never'"):
        run_optuna(_cfg(tmp_path), workers=1, n_trials=2, study="never", resume=True, progress=False)
    more = run_optuna(_cfg(tmp_path), workers=1, n_trials=4, study="once", resume=True, progress=False)
    assert more.n_finished == 4


@pytest.mark.slow
def test_killed_worker_then_killed_command_then_resume_reaches_T(tmp_path):
    env = {"IJ_TEST_SLEEP": "0.1"}  # ~2 s per complete trial
    T = 10
    # 1) kill one worker process mid-study: the other one finishes the budget, the lost trial is marked
    proc = _cli(tmp_path, "--workers", "2", "--trials", str(T), "--study", "kw", "--pruner", "none", env=env)
    workers_file = tmp_path / "runs" / "tune" / "kw" / "workers.json"
    _wait_for(lambda: workers_file.exists(), 60, "workers.json")
    _wait_for(lambda: count_trials(_study(tmp_path, "kw"))["complete"] >= 2, 90, "2 complete trials")
    victim = json.loads(workers_file.read_text())[0]["pid"]

    def victim_running():
        return [t.number for t in _study(tmp_path, "kw").trials
                if t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get("pid") == victim]

    # kill it while it holds a trial (not in the moment between two trials)
    _wait_for(lambda: len(victim_running()) == 1, 30, "a running trial of worker 0")
    os.kill(victim, signal.SIGKILL)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert f"worker 0 (pid {victim}) died" in out
    study = _study(tmp_path, "kw")
    c = count_trials(study)
    assert c["finished"] == T and c["running"] == 0
    lost = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert c["interrupted"] == len(lost) == 1
    assert lost[0].user_attrs.get("pid") == victim  # the trial the killed worker held
    assert lost[0].state == optuna.trial.TrialState.FAIL

    # 2) kill the whole command (parent and workers) mid-study, then --resume
    proc = _cli(tmp_path, "--workers", "2", "--trials", str(T), "--study", "kc", "--pruner", "none", env=env)
    _wait_for(lambda: (tmp_path / "runs/tune/kc/journal.log").exists()
              and count_trials(_study(tmp_path, "kc"))["complete"] >= 3, 120, "3 complete trials")
    # kill while a trial is held (under load the moment between two trials is long enough to hit)
    _wait_for(lambda: count_trials(_study(tmp_path, "kc"))["running"] >= 1, 30, "a running trial")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    time.sleep(0.5)
    before = {t.number: (t.value, t.params) for t in _study(tmp_path, "kc").trials
              if t.state == optuna.trial.TrialState.COMPLETE}
    assert 3 <= len(before) < T
    proc = _cli(tmp_path, "--workers", "2", "--trials", str(T), "--study", "kc", "--pruner", "none", "--resume",
                env=env)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    study = _study(tmp_path, "kc")
    after = {t.number: (t.value, t.params) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(after[n] == before[n] for n in before), "a completed trial was lost or changed"
    c = count_trials(study)
    assert c["finished"] == T and c["running"] == 0
    assert c["interrupted"] >= 1  # the trials that were running when the command died


def test_gpu_workers_get_one_visible_device_each_and_cuda0(tmp_path, monkeypatch):
    """Device plumbing without a GPU: the mask each worker process gets and the device string trials see."""
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("IJ_TEST_LOG", str(log))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    cfg = _cfg(tmp_path, fn="device_probe", gpus_per_trial=1.0, search_risk_weights=False)
    res = run_optuna(cfg, workers=2, n_trials=4, study="gpu", pruner="none", progress=False)
    assert res.n_complete == 4
    ev = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["device"] for e in ev} == {"cuda:0"}
    by_pid = {e["pid"]: e["visible"] for e in ev}
    assert sorted(set(by_pid.values())) == ["2", "5"] and len(by_pid) == 2
    assert {e["omp"] for e in ev} == {"1"}
    # CPU trials: the GPU is hidden from workers and the device is cpu
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    log.unlink()
    cpu = run_optuna(_cfg(tmp_path, fn="device_probe", search_risk_weights=False), workers=1, n_trials=1,
                     study="cpu", progress=False)
    assert cpu.n_complete == 1
    e = json.loads(log.read_text())
    assert e["device"] == "cpu" and e["visible"] == ""
    # no GPU visible at all: a clear error before any worker starts
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(TuneError, match="no GPU is visible"):
        run_optuna(_cfg(tmp_path, gpus_per_trial=0.5), workers=1, n_trials=1, study="nogpu", progress=False)
    assert not (tmp_path / "runs" / "tune" / "nogpu" / "journal.log").exists()


def test_cli_bad_options_exit_2_naming_the_field(tmp_path):
    import typer
    from typer.testing import CliRunner

    from intradayjules.cli.tune_cmd import tune

    app = typer.Typer()
    app.command()(tune)
    r = CliRunner().invoke(app, ["--backend", "dask", "--set", f"workdir={tmp_path}"])
    assert r.exit_code == 2 and "tune.backend" in r.output
    r = CliRunner().invoke(app, ["--set", "tune.n_trials"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output
    r = CliRunner().invoke(app, ["--trial-fn", "nomodule_xyz:f", "--set", f"workdir={tmp_path}"])
    assert r.exit_code == 2 and "tune.trial_fn: cannot import 'nomodule_xyz'" in r.output
