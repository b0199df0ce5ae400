"""Ray Tune backend and the loopback cluster: real Ray processes, each stopped by the test that started it.

Every test runs Ray with session files under its own short /tmp/ijray_* folder and its own auth token file,
checks afterwards that no process mentions that folder, and removes it. ~/.ray/auth_token is never written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from intradayjules.config import config_from_dict  # noqa: E402
from intradayjules.tune import cluster  # noqa: E402
from intradayjules.tune.ray_backend import run_ray  # noqa: E402
from intradayjules.tune.results import TuneError  # noqa: E402

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
OBJ = HERE / "objectives.py"
LOOPBACK = "127.0.0.2"
HOME_TOKEN = Path.home() / ".ray" / "auth_token"


def _procs_mentioning(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture
def ray_env(monkeypatch, tmp_path):
    """A private token + temp dir; restores every RAY_* variable; asserts nothing of ours is left running."""
    had_home_token = HOME_TOKEN.exists()
    tmp = Path(tempfile.mkdtemp(prefix="ijray_", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_USAGE_STATS_ENABLED",
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(cluster.TOKEN_ENV, str(tmp / "token"))
    monkeypatch.setenv("IJ_TEST_LOG", str(tmp_path / "log.jsonl"))
    yield tmp
    deadline = time.monotonic() + 20
    while _procs_mentioning(str(tmp)) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _procs_mentioning(str(tmp))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(tmp, ignore_errors=True)
    if not had_home_token and HOME_TOKEN.exists():
        HOME_TOKEN.unlink()
        pytest.fail("a Ray call wrote ~/.ray/auth_token")
    assert not left, f"Ray processes left running: {left}"


def _cfg(tmp_path, fn="noisy_quadratic", **tune):
    return config_from_dict({"workdir": str(tmp_path / "runs"), "tune": {"trial_fn": f"{OBJ}:{fn}", **tune}})


def _log(tmp_path) -> list[dict]:
    p = tmp_path / "log.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _wait_nodes(address: str, n: int, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        try:
            out = cluster.run_ray([cluster.ray_exe(), "status", f"--address={address}"], timeout=30)
            active = out.split("Active:")[1].split("Pending:")[0]
            if active.count("node_") >= n:
                return out
        except (cluster.ClusterError, IndexError):
            pass
        time.sleep(1)
    raise AssertionError(f"cluster at {address} never had {n} nodes:\n{out}")


def _ancestors(pid: int) -> set[int]:
    out = set()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        out.add(pid)
    return out


def test_local_asha_prunes_and_callbacks_see_every_trial(ray_env, tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.05")
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("IJ_TEST_EVENTS", str(events))
    cfg = _cfg(tmp_path, callbacks=[f"{OBJ}:EventLog"])
    res = run_ray(cfg, n_trials=8, study="asha", scheduler="asha", num_cpus=2, temp_dir=str(ray_env))
    assert res.n_finished == 8 and res.n_failed == 0
    assert res.n_pruned >= 1 and res.n_complete >= 1
    for t in res.trials:  # ASHA (grace 10, rf 2) stops trials only at a rung
        if t["state"] == "pruned":
            assert t["iterations"] in (10, 20), t
        else:
            assert t["iterations"] == 21  # 20 reports + the final value
    best_complete = max(t["value"] for t in res.trials if t["state"] == "complete")
    assert res.best_value == best_complete
    assert Path(res.run_dir).is_absolute() and Path(res.run_dir, "summary.json").exists()
    assert abs(sum(v for k, v in res.best_params.items() if k.startswith("risk.weights.")) - 1) < 1e-9
    ev = [json.loads(line) for line in events.read_text().splitlines()]
    ends = sorted(e["state"] for e in ev if e["event"] == "end")
    assert ends == sorted(t["state"] for t in res.trials)
    with pytest.raises(TuneError, match="already exists"):
        run_ray(cfg, n_trials=8, study="asha", num_cpus=2, temp_dir=str(ray_env))
    # Tuner.restore of a finished experiment: every trial is kept, nothing runs again
    n_reports = sum(e["event"] == "report" for e in ev)
    again = run_ray(cfg, n_trials=8, study="asha", num_cpus=2, temp_dir=str(ray_env), resume=True)
    assert again.n_finished == 8 and again.best_value == res.best_value
    assert sorted(t["value"] for t in again.trials) == sorted(t["value"] for t in res.trials)
    with pytest.raises(TuneError, match="no Ray experiment"):
        run_ray(cfg, n_trials=8, study="nothing-here", num_cpus=2, temp_dir=str(ray_env), resume=True)
    assert n_reports == sum(json.loads(x)["event"] == "report" for x in events.read_text().splitlines())


def test_killed_ray_run_resumes_with_tuner_restore_keeping_finished_trials(ray_env, tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.1")  # ~2 s trials
    monkeypatch.setenv("RAY_TMPDIR", str(ray_env))  # the CLI's local Ray keeps its files in our folder
    cli = [sys.executable, "-m", "intradayjules.cli.tune_cmd", "--no-progress", "--backend", "ray",
           "--workers", "2", "--scheduler", "fifo", "--trials", "8", "--study", "rs",
           "--set", f"workdir={tmp_path / 'runs'}", "--trial-fn", f"{OBJ}:noisy_quadratic"]
    proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while sum(e["event"] == "end" for e in _log(tmp_path)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4.0)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, and with it the local Ray it started
    killed_at = time.time()
    proc.wait()
    ends = [e for e in _log(tmp_path) if e["event"] == "end"]
    assert len(ends) < 8
    # Ray saves the experiment state every 2 s (EXPERIMENT_CHECKPOINT_S): trials that ended >= 4 s
    # before the kill are in it; ones that ended just before the kill may legitimately run again
    finished_before = {e["lr"]: e["value"] for e in ends if e["t"] < killed_at - 4.0}
    assert len(finished_before) >= 3
    out = subprocess.run(cli + ["--resume"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((tmp_path / "runs" / "tune_ray" / "rs" / "summary.json").read_text())
    assert summary["n_complete"] == 8 and summary["n_failed"] == 0
    final = {t["params"]["agent.learning_rate"]: t["value"] for t in summary["trials"]}
    for lr, value in finished_before.items():
        assert final[lr] == value  # kept, not recomputed
    starts = [e["lr"] for e in _log(tmp_path) if e["event"] == "start"]
    assert all(starts.count(lr) == 1 for lr in finished_before)  # and not run again


def test_pbt_restores_trials_from_checkpoints(ray_env, tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.01")
    monkeypatch.setenv("IJ_TEST_STEPS", "45")  # perturbations at iterations 20 and 40
    cfg = _cfg(tmp_path, fn="pbt_counter")
    res = run_ray(cfg, n_trials=4, study="pbt", scheduler="pbt", num_cpus=2, temp_dir=str(ray_env))
    assert res.n_complete == 4 and res.n_failed == 0
    log = _log(tmp_path)
    restores = [e for e in log if e["event"] == "restore"]
    assert restores, "PBT never restored a trial from a checkpoint"
    assert {e["step"] for e in restores} <= {20, 40}  # checkpoints are taken at perturbation boundaries
    # a restored trial continues from the checkpointed step, not from 0 (actors are reused: match the
    # first report of the same process after the restore)
    for i, r in enumerate(log):
        if r["event"] == "restore":
            nxt = next(e for e in log[i + 1:] if e["event"] == "report" and e["pid"] == r["pid"])
            assert nxt["step"] == r["step"] + 1
    ckpts = list(Path(res.run_dir).glob("*/checkpoint_*"))
    assert ckpts, "no tune.Checkpoint on storage"


def test_two_node_loopback_cluster_runs_trials_on_both_nodes(ray_env, tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.15")  # ~3 s trials: both nodes' actors start before one is free
    port = _free_port()
    address = f"{LOOPBACK}:{port}"
    tok = ray_env / "token"
    cli = [sys.executable, "-m", "intradayjules.cli.cluster_cmd"]
    common = ["--node-ip", LOOPBACK, "--num-cpus", "1", "--temp-dir", str(ray_env), "--token-file", str(tok), "--block"]
    head = subprocess.Popen(cli + ["head", "--port", str(port)] + common, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        _wait_nodes(address, 1)
        worker = subprocess.Popen(cli + ["join", address] + common, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_nodes(address, 2)
        st = subprocess.run(cli + ["status", address, "--token-file", str(tok)], capture_output=True, text=True)
        assert st.returncode == 0 and "2.0 CPU" in st.stdout, st.stdout + st.stderr
        cfg = _cfg(tmp_path, search_risk_weights=False)
        res = run_ray(cfg, n_trials=4, study="two", scheduler="fifo", address=address)
        assert res.n_complete == 4
        nodes = {t["node_id"] for t in res.trials}
        assert len(nodes) == 2, f"trials ran on {nodes}"
    finally:
        for p in (worker, head):
            if p is not None:
                _stop_group(p)


def _stop_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def test_worker_node_stopped_mid_run_is_survived_with_max_failures(ray_env, tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_TEST_SLEEP", "0.15")  # trial workers inherit the nodes' environment: ~3 s trials
    port = _free_port()
    address = f"{LOOPBACK}:{port}"
    head = cluster.start_node(cluster.head_command(port, LOOPBACK, 1, 0, str(ray_env), block=True),
                              create_token=True, log=tmp_path / "head.log")
    worker = tune_proc = None
    try:
        _wait_nodes(address, 1)
        worker = cluster.start_node(cluster.join_command(address, LOOPBACK, 1, 0, str(ray_env), block=True),
                                    log=tmp_path / "worker.log")
        _wait_nodes(address, 2)
        env = dict(os.environ)
        tune_proc = subprocess.Popen(
            [sys.executable, "-m", "intradayjules.cli.tune_cmd", "--no-progress", "--backend", "ray",
             "--address", address, "--scheduler", "fifo", "--max-failures", "3", "--trials", "4",
             "--study", "nodefail", "--set", f"workdir={tmp_path / 'runs'}", "--trial-fn", f"{OBJ}:noisy_quadratic"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        on_worker = None
        while on_worker is None and time.monotonic() < deadline:
            for e in _log(tmp_path):
                if e["event"] == "start" and worker.pid in _ancestors(e["pid"]):
                    on_worker = e
            time.sleep(0.3)
        assert on_worker is not None, "no trial started on the worker node"
        time.sleep(1.0)  # mid-trial
        cluster.stop_node(worker, graceful=False)  # the machine dies: no draining
        out, _ = tune_proc.communicate(timeout=300)
        assert tune_proc.returncode == 0, out
        summary = json.loads((tmp_path / "runs" / "tune_ray" / "nodefail" / "summary.json").read_text())
        assert summary["n_complete"] == 4 and summary["n_failed"] == 0, summary
        starts = [e for e in _log(tmp_path) if e["event"] == "start"]
        assert len(starts) >= 5  # the trial that lost its node ran again
        assert sum(e["lr"] == on_worker["lr"] for e in starts) >= 2
    finally:
        if tune_proc is not None and tune_proc.poll() is None:
            os.killpg(tune_proc.pid, signal.SIGKILL)
            tune_proc.wait()
        for p in (worker, head):
            if p is not None:
                cluster.stop_node(p)


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_gpu(), reason="needs an NVIDIA GPU")
def test_fractional_gpus_per_trial_select_the_assigned_cuda_device(ray_env, tmp_path):
    cfg = _cfg(tmp_path, fn="gpu_probe", search_risk_weights=False)
    res = run_ray(cfg, n_trials=4, study="gpu", scheduler="fifo", num_cpus=2, gpus_per_trial=0.5,
                  cpus_per_trial=0.5, temp_dir=str(ray_env))
    assert res.n_complete == 4, res.trials
    ev = [e for e in _log(tmp_path) if e["event"] == "gpu"]
    assert len(ev) == 4
    assert all(e["device"] == "cuda:0" and e["cuda"] and e["count"] == 1 and e["visible"] for e in ev)
