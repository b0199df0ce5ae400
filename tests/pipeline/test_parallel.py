"""Seeds of an arm in forked workers (``pipeline.parallel``): the same records as one after another."""

from __future__ import annotations

import os
import threading

import pytest

from intradayjules.pipeline import parallel


def _pid_and_square(x):
    return os.getpid(), x * x


def test_map_forked_keeps_order_uses_workers_and_raises():
    out = _fresh("order")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_map_forked_runs_here_when_forking_is_unsafe_or_not_asked(monkeypatch):
    here = {os.getpid()}
    assert {p for p, _ in parallel.map_forked(_pid_and_square, range(3), workers=1)} == here
    assert {p for p, _ in parallel.map_forked(_pid_and_square, [5], workers=2)} == here
    monkeypatch.setenv(parallel.PARALLEL_ENV, "0")
    assert {p for p, _ in parallel.map_forked(_pid_and_square, range(3), workers=2)} == here
    monkeypatch.delenv(parallel.PARALLEL_ENV)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:  # another thread is running: a fork could inherit a held lock
        assert not parallel.can_fork()
        assert {p for p, _ in parallel.map_forked(_pid_and_square, range(3), workers=2)} == here
    finally:
        stop.set()
        t.join()
    assert parallel.worker_count(0, 1) == 1 and parallel.worker_count(5, 3) == 3 and parallel.worker_count(1, 9) == 1
    called = []
    parallel.map_forked(_pid_and_square, range(3), workers=1, before_fork=lambda: called.append(1))
    assert called == []  # nothing is forked, so there is nothing to prepare for


def test_workers_die_with_the_process_that_forked_them(tmp_path):
    """SIGKILL to the parent alone (not its process group): its workers must not go on (Linux)."""
    import signal
    import sys
    import time

    import pytest

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    proc = _fresh("linger", str(tmp_path), wait=False)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not all((tmp_path / f"worker{i}").exists() for i in range(2)):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        time.sleep(0.2)
        workers = [int((tmp_path / f"worker{i}").read_text()) for i in range(2)]
        assert all(_alive(pid) for pid in workers)  # they wait for 120 s
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:
        os.kill(pid, 9)
    assert not alive, "workers outlived the killed parent"


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("mode", ["warm", "control"])
def test_warm_training_loads_what_a_training_would(tmp_path, mode):
    """``agents.sb3.warm_training`` (called before workers fork): fresh interpreters, with and without it."""
    out = _fresh("warm", str(tmp_path), mode)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_seeds_in_workers_give_the_records_of_one_after_another(tmp_path):
    """``train_arm`` with 2 forked workers and with 1: per seed the same daily P&L to the last bit."""
    out = _fresh("seeds", str(tmp_path))
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


# In the test session, threads left by earlier tests (MLflow's pools) make ``map_forked`` run items here, as
# it must (tested above); the fork path is checked in a fresh interpreter.
SCRIPT = r"""
import os, sys, time
import pandas as pd
from intradayjules.pipeline import parallel


def pid_and_square(x):
    time.sleep(0.2)  # long enough that both workers take items
    return os.getpid(), x * x


def boom(x):
    if x == 2:
        raise ValueError(f"item {x} failed")
    return x


def order():
    assert parallel.can_fork()
    seen = []
    out = parallel.map_forked(pid_and_square, range(6), workers=2, on_result=seen.append)
    assert [sq for _, sq in out] == [x * x for x in range(6)] and seen == out, out
    pids = {pid for pid, _ in out}
    assert os.getpid() not in pids and len(pids) == 2, pids
    calls = []
    parallel.map_forked(pid_and_square, range(2), workers=2, before_fork=lambda: calls.append(os.getpid()))
    assert calls == [os.getpid()], calls  # once, here, before the workers
    try:
        parallel.map_forked(boom, range(4), workers=2)
    except ValueError as e:
        assert "item 2 failed" in str(e)
    else:
        raise AssertionError("a worker's exception was not raised")


def linger(tmp):
    def write_pid_and_wait(x):
        with open(os.path.join(tmp, f"worker{x}"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
        return x

    parallel.map_forked(write_pid_and_wait, range(2), workers=2)


def seeds(tmp):
    from pathlib import Path
    from intradayjules.config import ExperimentConfig, apply_overrides
    from intradayjules.pipeline import compare
    from intradayjules.pipeline.prepare import prepare

    tmp = Path(tmp)
    cfg = ExperimentConfig.model_validate({
        "name": "t", "workdir": str(tmp / "runs"), "features": {"store_dir": str(tmp / "store")},
        "data": {"synthetic": {"n_symbols": 6, "days": 45, "seed": 0}}, "env": {"mode": "multi"},
        "agent": {"total_timesteps": 800, "learning_starts": 200, "buffer_size": 2000, "batch_size": 32},
        "risk": {"eval_freq": 400, "eval_episodes": 2}, "tracking": {"enabled": False}})
    prepared = prepare(cfg)
    pids = tmp / "pids.txt"
    train = compare.train

    def recorded(*a, **kw):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        return train(*a, **kw)

    compare.train = recorded
    par = compare.train_arm(prepared, apply_overrides(cfg, {"agent.seed_workers": 2}), "a", 3, tmp / "par",
                            split="val")
    workers = set(pids.read_text().split())
    assert len(workers) == 2 and str(os.getpid()) not in workers, workers
    seq = compare.train_arm(prepared, apply_overrides(cfg, {"agent.seed_workers": 1}), "a", 3, tmp / "seq",
                            split="val")
    assert [r.seed for r in par] == [0, 1, 2]
    for p, s in zip(par, seq):
        pd.testing.assert_frame_equal(p.daily, s.daily)
        assert p.timesteps == s.timesteps
    assert par[0].daily["pnl"].tolist() != par[1].daily["pnl"].tolist()  # the seeds differ


def warm(tmp, mode):
    # a training after ``warm_training`` imports none of the lazy modules and loads no env kernel (so a
    # worker forked after it does not either); without it (the control) the training does both itself
    from pathlib import Path
    import numpy as np
    from intradayjules.agents.sb3 import warm_training
    from intradayjules.config import ExperimentConfig
    from intradayjules.env import kernel
    from intradayjules.pipeline.prepare import prepare
    from intradayjules.pipeline.train_run import train

    tmp = Path(tmp)
    cfg = ExperimentConfig.model_validate({
        "name": "t", "workdir": str(tmp / "runs"), "features": {"store_dir": str(tmp / "store")},
        "data": {"synthetic": {"n_symbols": 3, "days": 45, "seed": 0}}, "env": {"mode": "multi", "n_envs": 4},
        "agent": {"total_timesteps": 400, "learning_starts": 100, "buffer_size": 1000, "batch_size": 32},
        "risk": {"eval_freq": 400, "eval_episodes": 1}, "tracking": {"enabled": False}})
    prepared = prepare(cfg)
    lazy = ("torch._dynamo", "safetensors")
    kernels = (kernel.step_observe_kernel, kernel.observe_kernel)
    assert not any(m.startswith(lazy) for m in sys.modules)
    if mode == "warm":
        state = np.random.get_state()
        warm_training(cfg, prepared.env_data)
        after = np.random.get_state()
        assert after[0] == state[0] and (after[1] == state[1]).all() and after[2:] == state[2:]
        assert all(k.signatures for k in kernels)
    modules, signatures = set(sys.modules), [len(k.signatures) for k in kernels]
    train(prepared, tmp / "run", cfg=cfg, checkpoints=False)
    loaded = sorted(m for m in set(sys.modules) - modules if m.startswith(lazy))
    compiled = [len(k.signatures) for k in kernels] != signatures
    if mode == "warm":
        assert not loaded and not compiled, (loaded[:5], compiled)
    else:
        assert "torch._dynamo" in loaded and "safetensors" in loaded and compiled, (loaded[:5], compiled)


globals()[sys.argv[1]](*sys.argv[2:])
print("ok")
"""


def _fresh(*args: str, wait: bool = True):
    """Run ``SCRIPT``'s function ``args[0]`` in a fresh interpreter; the completed process (``wait``) or the
    running one."""
    import subprocess
    import sys
    from pathlib import Path

    import intradayjules

    env = {**os.environ, parallel.PARALLEL_ENV: "1", "PYTHONPATH": str(Path(intradayjules.__file__).parents[1])}
    if not wait:
        return subprocess.Popen([sys.executable, "-c", SCRIPT, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, env=env,
                          timeout=600)
