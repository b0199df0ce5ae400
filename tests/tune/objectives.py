"""Real, cheap objectives for testing the search infrastructure (loaded by file path in worker processes).

``noisy_quadratic``: a concave function of the learning rate and gamma (maximum 0 at lr=1e-4,
gamma=0.97), approached over 20 evaluations along a learning curve, plus seeded noise; sleeps
``IJ_TEST_SLEEP`` seconds per evaluation (default 0.05) to stand in for training.
``flaky``: like ``noisy_quadratic`` but raises for batch_size 32 and returns NaN for batch_size 256.
``pbt_counter``: a PBT-aware objective whose state (steps done, accumulated score) lives in its checkpoint;
each report appends one JSON line to ``$IJ_TEST_LOG`` so tests can see restores and which node ran what.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

N_EVALS = 20


def _target(params: dict) -> float:
    lr = params["agent.learning_rate"]
    gamma = params["agent.gamma"]
    return -((math.log10(lr) + 4.0) ** 2) - 100.0 * (gamma - 0.97) ** 2


def _rng(params: dict, seed: int) -> random.Random:
    return random.Random(f"{sorted(params.items())}/{seed}")


def _log(event: dict) -> None:
    path = os.environ.get("IJ_TEST_LOG")
    if path:
        event = dict(event, pid=os.getpid(), t=time.time(), node=os.environ.get("IJ_TEST_NODE_ID") or _ray_node())
        with open(path, "a") as f:
            f.write(json.dumps(event) + "\n")


def _ray_node() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001
        return None


def noisy_quadratic(params: dict, cfg, reporter) -> float:
    sleep = float(os.environ.get("IJ_TEST_SLEEP", "0.05"))
    rng = _rng(params, cfg.seed)
    target = _target(params)
    value = target
    _log({"event": "start", "lr": params["agent.learning_rate"]})
    for k in range(1, N_EVALS + 1):
        time.sleep(sleep)
        curve = 2.0 * math.exp(-k / 5.0)  # learning curve: everyone improves, ranking is stable
        value = target - curve + rng.gauss(0.0, 0.02)
        reporter.report(k, value)
    _log({"event": "end", "lr": params["agent.learning_rate"], "value": value})
    return value


def flaky(params: dict, cfg, reporter) -> float:
    if params["agent.batch_size"] == 32:
        raise RuntimeError("simulated training crash for batch_size 32")
    if params["agent.batch_size"] == 256:
        return float("nan")
    return noisy_quadratic(params, cfg, reporter)


def pbt_counter(params: dict, cfg, reporter) -> float:
    """State = (step, score). score grows by a per-step gain that peaks at lr=1e-4."""
    sleep = float(os.environ.get("IJ_TEST_SLEEP", "0.02"))
    n_steps = int(os.environ.get("IJ_TEST_STEPS", "60"))
    step, score = 0, 0.0
    restored = reporter.restore_dir()
    if restored is not None:
        state = json.loads((Path(restored) / "state.json").read_text())
        step, score = state["step"], state["score"]
        _log({"event": "restore", "step": step, "from_trial": state["trial"]})
    gain = math.exp(-((math.log10(params["agent.learning_rate"]) + 4.0) ** 2))
    every = reporter.checkpoint_every or 0
    while step < n_steps:
        time.sleep(sleep)
        step += 1
        score += gain
        if every and step % every == 0:
            d = reporter.checkpoint_dir()
            (d / "state.json").write_text(json.dumps({"step": step, "score": score, "trial": os.getpid()}))
        reporter.report(step, score / step)
        _log({"event": "report", "step": step})
    return score / step


def gpu_probe(params: dict, cfg, reporter) -> float:
    """Checks the GPU path: the trial's device is cuda:0 inside its CUDA_VISIBLE_DEVICES mask."""
    import torch

    _log({"event": "gpu", "device": cfg.agent.device, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
          "cuda": torch.cuda.is_available(), "count": torch.cuda.device_count()})
    x = torch.ones(8, device=cfg.agent.device)
    reporter.report(1, float(x.sum().item()))
    return float(x.sum().item())


class EventLog:
    """A tracking-style callback (built by ``tune.callbacks`` from cfg) appending events to $IJ_TEST_EVENTS."""

    def __init__(self, cfg):
        self.path = os.environ["IJ_TEST_EVENTS"]

    def _w(self, **event) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(event, default=str) + "\n")

    def on_trial_start(self, trial_id, params):
        self._w(event="start", trial=trial_id, lr=params.get("agent.learning_rate"))

    def on_report(self, trial_id, step, value):
        self._w(event="report", trial=trial_id, step=step, value=value)

    def on_trial_end(self, trial_id, params, state, value):
        self._w(event="end", trial=trial_id, state=state, value=value, lr=params.get("agent.learning_rate"))


def device_probe(params: dict, cfg, reporter) -> float:
    """Logs the device the backend chose and the GPU mask it set (touches no GPU)."""
    _log({"event": "device", "device": cfg.agent.device, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
          "omp": os.environ.get("OMP_NUM_THREADS")})
    time.sleep(0.3)
    reporter.report(1, 1.0)
    return 1.0


def leaky(params: dict, cfg, reporter) -> float:
    """Prints the tracking URI (with its password) to stdout and stderr, and fails every other trial with
    an error message that contains it: what redaction of worker logs and trial errors must catch."""
    import sys

    print(f"connecting to {cfg.tracking.uri}")
    print(f"warning: {cfg.tracking.uri} slow", file=sys.stderr)
    if params["agent.batch_size"] in (32, 256):
        raise RuntimeError(f"cannot log to {cfg.tracking.uri}")
    reporter.report(1, 1.0)
    return 1.0


_WARM: dict = {}


def _warm(cfg) -> None:
    _WARM["pid"] = os.getpid()
    _log({"event": "warm"})


def warmed(params: dict, cfg, reporter) -> float:
    """Logs which process's ``warm`` data this trial's process holds in memory (None: none)."""
    _log({"event": "trial", "warm_pid": _WARM.get("pid")})
    for step in range(2):
        reporter.report(step, 0.0)
    return 0.0


warmed.warm = _warm  # type: ignore[attr-defined]
