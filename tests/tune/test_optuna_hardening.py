"""Optuna backend faults and attacks: resumed studies do not repeat configurations, a torn journal write
is recovered, no pickle travels between processes through files, passwords stay out of every file, one
coordinator per study directory."""

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
from intradayjules.rundir import RunDirLocked
from intradayjules.tune.optuna_backend import open_storage, read_job, recover_journal, run_optuna, trial_seed
from intradayjules.tune.results import TuneError, run_dir_for

HERE = Path(__file__).resolve().parent
OBJ = HERE / "objectives.py"
SECRET = "S3cr3t-pw-4711"


def _cfg(tmp_path, fn="noisy_quadratic", tracking=None, **tune):
    return config_from_dict({"workdir": str(tmp_path / "runs"), "tracking": tracking or {"enabled": False},
                             "tune": {"trial_fn": f"{OBJ}:{fn}", **tune}})


def _params(res):
    return [json.dumps(t["params"], sort_keys=True) for t in res.trials if t["params"]]


def test_resumed_study_never_repeats_a_finished_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    first = run_optuna(_cfg(tmp_path), workers=2, n_trials=4, study="r", pruner="none", progress=False)
    resumed = run_optuna(_cfg(tmp_path), workers=2, n_trials=10, study="r", pruner="none", resume=True,
                         progress=False)
    before, after = _params(first), _params(resumed)
    assert len(before) == 4 and len(after) == 10 and after[:4] == before
    assert len(set(after)) == 10, f"resumed trials repeated earlier ones: {after}"
    # the seed follows the trial, so the sequence continues instead of restarting
    assert len({trial_seed(42, n) for n in range(10)}) == 10


def test_sequential_runs_stay_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    a = run_optuna(_cfg(tmp_path), workers=1, n_trials=5, study="a", pruner="none", progress=False)
    b = run_optuna(_cfg(tmp_path), workers=1, n_trials=5, study="b", pruner="none", progress=False)
    assert _params(a) == _params(b)


def test_parallel_start_up_trials_draw_what_a_sequential_run_draws(tmp_path, monkeypatch):
    """Trial k's sampler seed does not depend on which worker asks for it: the random start-up trials of a
    2-worker study are the sequential study's, trial by trial, however the workers interleave."""
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.01")  # 0.2 s a trial: both workers take trials
    seq = run_optuna(_cfg(tmp_path), workers=1, n_trials=6, study="s1", pruner="none", progress=False)
    par = run_optuna(_cfg(tmp_path), workers=2, n_trials=6, study="s2", pruner="none", progress=False)
    by_number = {r: {int(t["id"]): json.dumps(t["params"], sort_keys=True) for t in res.trials}
                 for r, res in (("seq", seq), ("par", par))}
    assert len({t["worker_pid"] for t in par.trials}) == 2
    assert by_number["par"] == by_number["seq"] and len(set(by_number["seq"].values())) == 6


def test_a_callbacks_pickle_in_the_run_directory_is_never_loaded(tmp_path, monkeypatch, malicious):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    cfg = _cfg(tmp_path)
    malicious.pickle_file(run_dir_for(cfg, "cb", "optuna") / "callbacks.pkl")
    res = run_optuna(cfg, workers=1, n_trials=2, study="cb", pruner="none", progress=False)
    assert res.n_complete == 2
    assert not malicious.marker.exists()


def _journal(tmp_path, study):
    return tmp_path / "runs" / "tune" / study / "journal.log"


def test_torn_journal_write_is_recovered_and_the_study_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    first = run_optuna(_cfg(tmp_path), workers=1, n_trials=3, study="j", pruner="none", progress=False)
    journal = _journal(tmp_path, "j")
    good = journal.read_bytes()
    with open(journal, "ab") as f:  # a writer killed mid-record
        f.write(b'{"op_code":5,"worker_id":"dead","trial_id":3,"param_na')
    # control: plain Optuna, after one more append glued onto the torn line, cannot read the journal
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    broken = tmp_path / "broken.log"
    broken.write_bytes(journal.read_bytes() + good.splitlines(keepends=True)[-1] * 2)
    with pytest.raises(Exception):  # noqa: B017 - Optuna raises a bare JSON/Value error naming no file
        optuna.load_study(study_name="j", storage=JournalStorage(JournalFileBackend(str(broken))))

    resumed = run_optuna(_cfg(tmp_path), workers=1, n_trials=5, study="j", pruner="none", resume=True,
                         progress=False)
    assert resumed.n_complete == 5 and _params(resumed)[:3] == _params(first)
    backups = list(journal.parent.glob("journal.log.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes().endswith(b'"param_na')


def test_journal_corrupted_in_the_middle_keeps_the_records_before_and_names_the_file(tmp_path, monkeypatch,
                                                                                      caplog):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    run_optuna(_cfg(tmp_path), workers=1, n_trials=2, study="m", pruner="none", progress=False)
    journal = _journal(tmp_path, "m")
    lines = journal.read_bytes().splitlines(keepends=True)
    n_good = len(lines)
    # the damage the old backend left: a torn record with the next record glued on, then more records
    journal.write_bytes(b"".join(lines) + b'{"op_code":4,"tri' + lines[-1] + lines[-1])
    with caplog.at_level("WARNING"):
        study = optuna.load_study(study_name="m", storage=open_storage(f"journal:{journal}"))
    assert len(study.trials) == 2
    assert str(journal) in caplog.text and f"line {n_good + 1}" in caplog.text and "backed up" in caplog.text
    assert journal.read_bytes() == b"".join(lines)
    assert recover_journal(journal) is None  # nothing left to repair


def test_one_coordinator_per_study_directory(tmp_path):
    env = {**os.environ, "IJ_TEST_SLEEP": "0.2", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "intradayjules.cli.tune_cmd", "--no-progress", "--set", f"workdir={tmp_path / 'runs'}",
           "--set", "tracking.enabled=false", "--trial-fn", f"{OBJ}:noisy_quadratic", "--workers", "1",
           "--trials", "4", "--study", "lk", "--pruner", "none"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lock = tmp_path / "runs" / "tune" / "lk" / ".lock"
    try:
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip()):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the first search never took the lock"
            time.sleep(0.1)
        with pytest.raises(RunDirLocked, match=f"in use by pid {proc.pid} "):
            run_optuna(_cfg(tmp_path), workers=1, n_trials=4, study="lk", resume=True, progress=False)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_duplicated_study_is_a_clear_error(tmp_path, monkeypatch):
    def racing(*a, **k):
        raise optuna.exceptions.DuplicatedStudyError("Another study with name 'd' already exists.")

    monkeypatch.setattr(optuna, "create_study", racing)
    with pytest.raises(TuneError, match="just created .* by another process.*--resume"):
        run_optuna(_cfg(tmp_path), workers=1, n_trials=1, study="d", progress=False)


def test_no_file_of_a_search_carries_the_password(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.0")
    uri = f"http://tune:{SECRET}@127.0.0.1:9/"
    cfg = _cfg(tmp_path, fn="leaky", tracking={"enabled": False, "uri": uri})
    res = run_optuna(cfg, workers=2, n_trials=6, study="pw", pruner="none", progress=False)
    assert res.n_failed >= 1 and res.n_complete >= 1, "the objective must both fail and succeed"
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"worker_0.json", "worker_1.json", "worker_0.log", "journal.log", "summary.json", "config.yaml",
            "error.log"} <= names, names
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaks, f"password written to {leaks}"
    # the worker really printed the URI (redacted), so the check above is not vacuous
    # (any worker's log: with instant trials one worker can take them all before the other starts)
    log = "".join(p.read_text() for p in (tmp_path / "runs" / "tune" / "pw" / "logs").glob("worker_*.log"))
    assert "http://tune:***@127.0.0.1:9/" in log
    assert SECRET not in capsys.readouterr().out


def test_storage_password_never_printed_and_workers_get_it_by_pipe(tmp_path, monkeypatch):
    spec = f"postgresql://tune:{SECRET}@127.0.0.1:1/optuna"
    with pytest.raises(TuneError) as e:
        open_storage(spec)
    assert SECRET not in str(e.value) and "tune:***@127.0.0.1" in str(e.value)
    with pytest.raises(TuneError, match="password was redacted"):
        open_storage("postgresql://tune:***@127.0.0.1:1/optuna")
    # a hand-started worker: the job file's redacted URL is replaced by $INTRADAYJULES_TUNE_STORAGE
    job = tmp_path / "worker_0.json"
    job.write_text(json.dumps({"storage": "postgresql://tune:***@db/optuna"}))
    monkeypatch.setenv("INTRADAYJULES_TUNE_STORAGE", spec)
    assert read_job(["x", str(job)])["storage"] == spec
