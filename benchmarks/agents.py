"""Benchmark: training speed and exported-policy latency of each algorithm on the quickstart env.

For each ``agent.algo`` (dqn, qrdqn, ppo, a2c): the quickstart preset (6 synthetic symbols, multi-asset,
reward in bps) with that algorithm and its default hyperparameters (``agent.qrdqn``/``ppo``/``a2c``; the
value-based pair with the preset's replay settings), ``agents.sb3.learn`` for ``--steps`` steps without
callbacks (the learning itself: no validation, no checkpoints), one torch thread. Reported:

* ``steps/s``: environment steps per second of wall time inside ``learn`` (PPO/A2C run whole rollouts, so
  their step count is rounded up to a multiple of ``n_steps``), and per second of this process's CPU time
  (``steps/cpu-s``: less sensitive to other jobs on a shared machine; one torch thread, so CPU time is
  close to the wall time of an idle machine);
* ``p50``/``p99``: per-call latency (us) of the exported TorchScript policy on one observation
  (``agents.export.latency_us``, 2,000 calls after 200 warm-up), and ``parity`` on 1,000 env observations.

Run: ``.venv/bin/python benchmarks/agents.py [--steps 20000] [--algos dqn,ppo]``. Note the load (uptime).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--algos", default="dqn,qrdqn,ppo,a2c")
    args = ap.parse_args()

    from intradayjules.agents.export import (export_torchscript, latency_us, load_torchscript, parity,
                                            random_walk_observations)
    from intradayjules.agents.sb3 import learn
    from intradayjules.config import apply_overrides, load_config, preset_path
    from intradayjules.env import make_env
    from intradayjules.pipeline.prepare import prepare

    tmp = Path(tempfile.mkdtemp(prefix="ij-agents-bench-"))
    base = load_config(preset_path("quickstart"))
    base = apply_overrides(base, {"workdir": str(tmp / "runs"), "features.store_dir": str(tmp / "store"),
                                  "tracking.enabled": False, "agent.device": "cpu"})
    prepared = prepare(base)
    env = make_env(base, None, split="test", data=prepared.env_data)
    obs = random_walk_observations(env, 1000)
    print(f"load before: {os.getloadavg()[0]:.2f}; obs_dim {obs.shape[1]}, actions {env.action_space.n}")
    print(f"{'algo':<6} {'steps':>7} {'wall s':>7} {'steps/s':>8} {'steps/cpu-s':>11} {'p50 us':>7} {'p99 us':>7} "
          f"{'parity':>7} load")
    for algo in args.algos.split(","):
        cfg = apply_overrides(base, {"agent.algo": algo})
        t0, c0 = time.perf_counter(), time.process_time()
        model = learn(cfg, prepared.env_data, total_timesteps=args.steps)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        scripted = load_torchscript(export_torchscript(model, tmp / f"{algo}.pt"))
        lat = latency_us(scripted, obs.shape[1], n=2000)
        print(f"{algo:<6} {model.num_timesteps:>7} {wall:>7.1f} {model.num_timesteps / wall:>8.0f} "
              f"{model.num_timesteps / cpu:>11.0f} "
              f"{lat['p50']:>7.1f} {lat['p99']:>7.1f} {parity(model, scripted, obs):>7.3f} {os.getloadavg()[0]:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
