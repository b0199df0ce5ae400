"""Benchmark: MLflow tracking overhead as a share of a tuning trial's wall time. Target: <= 5 %.

A trial = SB3 DQN on CartPole-v1 for ``--steps`` steps (1 torch thread), evaluated every
``--eval-every`` steps (2 greedy episodes). Tracked, it is a child run of a study: trial params
(the flattened experiment config, ~150 params), the evaluation metrics at every evaluation, the SB3
zip and the config as artifacts (with sha256 tags), and its end state. The time spent inside tracking
calls is measured directly (perf_counter around each call) and divided by the trial's wall time.
One-time costs (``import mlflow``, creating the sqlite database, the study's parent run) are printed
separately: they are paid once per worker process / study, not per trial.

    .venv/bin/python benchmarks/tracking_overhead.py                 # sqlite (the default target)
    .venv/bin/python benchmarks/tracking_overhead.py --server        # also a local mlflow server

Prints a table; record results in benchmarks/README.md with the machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class Clock:
    """Accumulates seconds spent inside tracking calls."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def trial(tracker, parent_id, key: str, steps: int, eval_every: int, workdir: Path, params: dict) -> tuple[float, float]:
    """Run one trial; returns (wall seconds, seconds inside tracking calls)."""
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    clock = Clock()
    t0 = time.perf_counter()
    run = clock(tracker.start_trial, parent_id, key, params=params) if tracker else None

    class Eval(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                mean, std = evaluate_policy(self.model, gym.make("CartPole-v1"), n_eval_episodes=2, warn=False)
                if run is not None:
                    clock(run.log_metrics, {"eval/mean_return": mean, "eval/std_return": std,
                                            "objective": mean}, step=self.num_timesteps)
            return True

    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_starts=1_000, buffer_size=10_000, seed=int(key),
                device="cpu", verbose=0)
    model.learn(steps, callback=Eval())
    out = workdir / f"trial-{key}"
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.zip")
    (out / "config.json").write_text(repr(params))
    if run is not None:
        clock(run.log_artifacts, out)
        clock(run.end_trial, "complete")
    return time.perf_counter() - t0, clock.seconds


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--backend-store-uri", f"sqlite:///{root}/server.db",
                             "--artifacts-destination", str(root / "artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=root,
                            start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                return proc, uri
        except OSError:
            time.sleep(0.25)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("mlflow server did not start")


def measure(label: str, uri: str | None, args, root: Path) -> list[str]:
    from intradayjules.config import ExperimentConfig
    from intradayjules.track import Tracker, TrackingTarget, flatten_config
    from intradayjules.track.target import _sqlite_artifacts

    params = flatten_config(ExperimentConfig())
    rows = []
    tracker = parent = None
    one_time = 0.0
    if uri is not None:
        t0 = time.perf_counter()
        tracker = Tracker(TrackingTarget(uri=uri, artifact_location=_sqlite_artifacts(uri)))
        parent = tracker.start_study(f"bench-{label}-{os.getpid()}", params=params).run_id
        one_time = time.perf_counter() - t0
    walls, tracked = [], []
    for k in range(args.trials):
        wall, tr = trial(tracker, parent, str(k), args.steps, args.eval_every, root / label, params)
        walls.append(wall)
        tracked.append(tr)
    if tracker is not None:
        tracker.end_study(parent)
    shares = [t / w for t, w in zip(tracked, walls)]
    rows.append(f"{label:<10}{statistics.median(walls):>10.2f}{statistics.median(tracked):>12.3f}"
                f"{100 * statistics.median(shares):>9.2f}%{100 * max(shares):>9.2f}%{one_time:>11.2f}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20_000, help="env steps per trial (tune.trial_timesteps)")
    ap.add_argument("--eval-every", type=int, default=2_000, help="steps between evaluations (metric logs)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--server", action="store_true", help="also measure against a local mlflow server")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="ij-bench-track-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        import mlflow  # noqa: F401  (one-time import cost, reported)

        import_s = time.perf_counter() - t0
        print(f"steps/trial {args.steps}, eval every {args.eval_every} ({args.steps // args.eval_every} metric "
              f"batches), {args.trials} trials; import mlflow {import_s:.2f} s (once per process)")
        print(f"{'target':<10}{'trial s':>10}{'tracking s':>12}{'share':>10}{'max':>10}{'one-time s':>11}")
        for row in measure("none", None, args, root):
            print(row, flush=True)
        for row in measure("sqlite", f"sqlite:///{root}/mlflow.db", args, root):
            print(row, flush=True)
        if args.server:
            proc, uri = start_server(root)
            try:
                for row in measure("server", uri, args, root):
                    print(row, flush=True)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
        print("one-time s: creating the experiment/database and the study's parent run (once per study)")


if __name__ == "__main__":
    main()
