"""Benchmark: DQN training throughput on the quickstart's multi-asset env, old path vs new path.

Targets (issue 16): >= 3x the old path's env steps/s at the same learning settings; env share of DQN
wall time <= 5 %.

* old: ``Monitor(RiskShapingWrapper(TradingEnv))`` handed to SB3 ``DQN`` (SB3 wraps it in
  ``DummyVecEnv``, which deep-copies the full step info every step), ``train_freq`` env steps per
  gradient step, one policy call per env step.
* new: ``agents.vec_training``: ``VecMonitor(VecRiskShaping(SessionVecEnv(info="train")))`` with ``n``
  slots and ``TrainingDQN`` (per-slot exploration from one batched forward, leaner update, fused Adam),
  the same gradient steps per env step (``collection_plan``).

Both learn ``--steps`` env steps from scratch with the quickstart's agent settings (learning_starts
included, no evaluation callback), one torch thread, in the same process, alternating ``--repeats``
times. Reported: env steps/s by wall clock and by process CPU time (CPU time is the robust figure when
other jobs share the cores), and the share of wall time spent inside the env (old: inside
``DummyVecEnv.step``, copies included, and inside the wrapped env alone; new: inside the VecEnv stack).

Each measurement runs in a fresh process, old and new alternating; ``--old-src ../main/src`` runs the
old path on another checkout (the env as it was before issue 16), the new one on this checkout.

Usage: ``.venv/bin/python benchmarks/dqn_throughput.py [--steps 20000] [--repeats 2] [--old-src DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path


def setup(config: str):
    from intradayjules.config import load_config
    from intradayjules.experiment import prepare

    cfg = load_config(config)
    return cfg, prepare(cfg, use_store=False)


def old_path(cfg, prepared, steps: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.monitor import Monitor

    from intradayjules.env import make_env
    from intradayjules.risk.shaping import wrap_from_config

    class Timed(gym.Wrapper):
        spent = 0.0

        def step(self, action):
            t0 = time.perf_counter()
            out = self.env.step(action)
            Timed.spent += time.perf_counter() - t0
            return out

        def reset(self, **kw):
            t0 = time.perf_counter()
            out = self.env.reset(**kw)
            Timed.spent += time.perf_counter() - t0
            return out

    Timed.spent = 0.0
    env = Timed(Monitor(wrap_from_config(make_env(cfg, None, split="train", data=prepared.env_data), cfg)))
    model = DQN("MlpPolicy", env, device="cpu", verbose=0, **old_kwargs(cfg))
    vec_spent = _time_vec(model.env)
    out = _learn(model, steps)
    out["env_s"] = vec_spent()
    out["inner_env_s"] = Timed.spent
    return out


def old_kwargs(cfg) -> dict:
    """The trainer's DQN arguments before issue 16 (``agents/dqn.py:build_model``): one env,
    ``train_freq`` env steps per gradient step."""
    a = cfg.agent
    return dict(learning_rate=a.learning_rate, buffer_size=a.buffer_size, learning_starts=a.learning_starts,
                batch_size=a.batch_size, gamma=a.gamma, train_freq=a.train_freq,
                target_update_interval=a.target_update_interval, exploration_fraction=a.exploration_fraction,
                exploration_initial_eps=a.exploration_initial_eps, exploration_final_eps=a.exploration_final_eps,
                policy_kwargs={"net_arch": list(a.net_arch)}, seed=a.seed)


def new_path(cfg, prepared, steps: int, n_envs: int) -> dict:
    from intradayjules.agents.vec_training import build_training_model, make_training_vec_env

    venv = make_training_vec_env(cfg, prepared.env_data, n_envs=n_envs)
    model = build_training_model(cfg, venv, "cpu")
    vec_spent = _time_vec(model.env)
    out = _learn(model, steps)
    out["env_s"] = vec_spent()
    out["inner_env_s"] = out["env_s"]
    return out


def _time_vec(venv):
    """Accumulate the wall time of ``venv``'s step/reset calls (the outermost VecEnv SB3 steps)."""
    spent = [0.0]
    for name in ("step", "reset"):
        fn = getattr(venv, name)

        def timed(*a, _fn=fn, **kw):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - t0

        setattr(venv, name, timed)
    return lambda: spent[0]


def _learn(model, steps: int) -> dict:
    w0, c0 = time.perf_counter(), time.process_time()
    model.learn(steps)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"steps": int(model.num_timesteps), "wall_s": wall, "cpu_s": cpu,
            "grad_steps": int(model._n_updates)}


def child(path: str, config: str, steps: int, n_envs: int) -> dict:
    """One measurement in this (fresh) process."""
    import torch

    torch.set_num_threads(1)
    cfg, prepared = setup(config)
    return old_path(cfg, prepared, steps) if path == "old" else new_path(cfg, prepared, steps, n_envs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="examples/configs/quickstart.yaml")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-envs", type=int, default=None, help="default: agents.vec_training.training_n_envs")
    ap.add_argument("--old-src", default=None,
                    help="run the old path on another checkout's sources (e.g. ../main/src: the env before "
                         "issue 16); default: this checkout's env")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.child:
        print(json.dumps(child(args.child, args.config, args.steps, args.n_envs or 1)))
        return
    from intradayjules.agents.vec_training import collection_plan, training_n_envs
    from intradayjules.config import load_config

    cfg = load_config(args.config)
    n = args.n_envs or training_n_envs(cfg)
    src = str(Path(__file__).resolve().parents[1] / "src")

    def measure(path: str, steps: int) -> dict:
        env = {**os.environ, "PYTHONPATH": (args.old_src if path == "old" and args.old_src else src)}
        out = subprocess.run([sys.executable, __file__, "--child", path, "--config", args.config, "--steps",
                              str(steps), "--n-envs", str(n)], env=env, check=True, capture_output=True,
                             text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    for path in ("old", "new"):  # compile / load the numba kernels of both sources (not timed)
        measure(path, 200)
    load0 = os.getloadavg()
    runs = {"old": [], "new": []}
    for _ in range(args.repeats):  # alternating, each in a fresh process
        runs["old"].append(measure("old", args.steps))
        runs["new"].append(measure("new", args.steps))
    load1 = os.getloadavg()
    f, g = collection_plan(cfg.agent.train_freq, n)
    print(f"config {args.config}: {args.steps:,} env steps from scratch (learning_starts {cfg.agent.learning_starts:,}), "
          f"batch {cfg.agent.batch_size}, net {cfg.agent.net_arch}, 1 torch thread; old path on "
          f"{args.old_src or 'this checkout'}")
    print(f"old: 1 env, train_freq {cfg.agent.train_freq}, 1 gradient step; new: {n} slots, train every {f} "
          f"VecEnv step(s) with {g} gradient step(s)  (both 1/{cfg.agent.train_freq} gradient step per env step)")
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"{'path':<6}{'steps/s wall':>14}{'steps/s CPU':>13}{'grad steps':>12}{'env % wall':>12}{'inner env %':>13}")
    med = {}
    for name, rs in runs.items():
        for r in rs:
            print(f"{name:<6}{r['steps'] / r['wall_s']:>14,.0f}{r['steps'] / r['cpu_s']:>13,.0f}{r['grad_steps']:>12,}"
                  f"{100 * r['env_s'] / r['wall_s']:>11.1f}%{100 * r['inner_env_s'] / r['wall_s']:>12.1f}%")
        med[name] = (statistics.median(r["steps"] / r["wall_s"] for r in rs),
                     statistics.median(r["steps"] / r["cpu_s"] for r in rs),
                     statistics.median(r["env_s"] / r["wall_s"] for r in rs))
    print(f"speed-up new/old (medians): wall {med['new'][0] / med['old'][0]:.2f}x, CPU {med['new'][1] / med['old'][1]:.2f}x "
          f"(target >= 3x); env share new {100 * med['new'][2]:.1f} % (target <= 5 %)")


if __name__ == "__main__":
    main()
