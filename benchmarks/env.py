"""Benchmark: trading-environment speed. Targets: single env >= 20,000 steps/s with K=6 symbols
(issue 16: >= 150,000 with training infos, ``info="train"``); env time <= 10 % of an SB3 DQN training
run's wall time.

Measures, on the embedded synthetic market (60 sessions, 6 symbols, 2 per tier), random actions:
* ``TradingEnv`` steps/s for K=1 (single mode) and K=6 (multi mode), resets included;
* ``SessionVecEnv`` (n_envs episodes stepped together) env-steps/s, against SB3's ``DummyVecEnv``
  of n_envs ``TradingEnv``;
* an SB3 DQN run (MlpPolicy [64, 64], 1 torch thread) on the K=6 env: the share of wall time spent
  inside ``env.step``/``env.reset``.

Rates by wall clock and by process CPU time (the robust figure when other jobs share the cores).

Usage: ``.venv/bin/python benchmarks/env.py [--seconds 3] [--dqn-steps 30000] [--n-envs 8]``.
Prints a table; record results in benchmarks/README.md with the machine.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def setup(mode: str):
    from intradayjules.config import ExperimentConfig
    from intradayjules.data.synthetic import generate
    from intradayjules.env import prepare
    from intradayjules.env.fallback_features import fallback_features

    cfg = ExperimentConfig()
    cfg.env.mode = mode
    market = generate(cfg.data.synthetic)
    f = market.bars.frame
    try:
        from intradayjules.features.pipeline import compute_features

        feats = compute_features(f, cfg.features)
        source = "features.pipeline"
    except ImportError:
        feats = fallback_features(f)
        source = "env.fallback_features"
    data = prepare(cfg, f, market.universe, feats)
    return cfg, market, data, source


def single_rate(cfg, market, data, seconds: float, info: str = "full") -> float:
    from intradayjules.env import make_env

    env = make_env(cfg, market.bars, market.universe, "train", data=data, info=info)
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(env.action_space.n, size=1_000_000)
    for i in range(2000):  # warm-up (numba kernels load from cache)
        if env.step(acts[i])[2]:
            env.reset()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for _ in range(1000):
            _, _, term, _, _ = env.step(acts[n])
            n += 1
            if term:
                env.reset()
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def vec_rate(venv, seconds: float) -> float:
    venv.reset()
    rng = np.random.default_rng(0)
    acts = rng.integers(venv.action_space.n, size=(4096, venv.num_envs))
    for i in range(200):
        venv.step(acts[i])
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            venv.step(acts[n % 4096])
            n += 1
    return n * venv.num_envs / (time.perf_counter() - t0), n * venv.num_envs / (time.process_time() - c0)


def dqn_share(cfg, market, data, steps: int) -> tuple[float, float, float]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    from intradayjules.env import make_env

    torch.set_num_threads(1)

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

    env = Timed(make_env(cfg, market.bars, market.universe, "train", data=data))
    a = cfg.agent
    model = DQN("MlpPolicy", env, learning_rate=a.learning_rate, buffer_size=a.buffer_size,
                learning_starts=min(a.learning_starts, steps // 10), batch_size=a.batch_size,
                target_update_interval=a.target_update_interval, train_freq=a.train_freq,
                exploration_fraction=a.exploration_fraction, policy_kwargs={"net_arch": a.net_arch},
                seed=0, verbose=0)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    return wall, Timed.spent, steps / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--dqn-steps", type=int, default=30_000)
    ap.add_argument("--n-envs", type=int, default=8)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from stable_baselines3.common.vec_env import DummyVecEnv

    from intradayjules.env import make_env, make_vec_env

    rows = []
    for mode, k in (("single", 1), ("multi", 6)):
        cfg, market, data, source = setup(mode)
        rows.append((f"TradingEnv K={k}", single_rate(cfg, market, data, args.seconds), ">= 20,000 (K=6)"))
        rows.append((f"TradingEnv K={k} info=train", single_rate(cfg, market, data, args.seconds, "train"),
                     ">= 150,000 (K=6)"))
        venv = make_vec_env(cfg, market.bars, market.universe, "train", n_envs=args.n_envs, data=data, seed=0)
        rows.append((f"SessionVecEnv K={k} n={args.n_envs}", vec_rate(venv, args.seconds), ""))
        venv = make_vec_env(cfg, market.bars, market.universe, "train", n_envs=args.n_envs, data=data, seed=0,
                            info="train")
        rows.append((f"SessionVecEnv K={k} n={args.n_envs} info=train", vec_rate(venv, args.seconds), ""))
        dummy = DummyVecEnv([lambda: make_env(cfg, market.bars, market.universe, "train", data=data)
                             for _ in range(args.n_envs)])
        dummy.seed(0)
        rows.append((f"DummyVecEnv(TradingEnv) K={k} n={args.n_envs}", vec_rate(dummy, args.seconds), ""))
    print(f"features: {source}; random actions; resets included")
    print(f"{'environment':<44}{'steps/s wall':>14}{'steps/s CPU':>13}  target")
    for name, (rate, cpu_rate), target in rows:
        print(f"{name:<44}{rate:>14,.0f}{cpu_rate:>13,.0f}  {target}")
    cfg, market, data, _ = setup("multi")
    wall, spent, sps = dqn_share(cfg, market, data, args.dqn_steps)
    print(f"SB3 DQN {args.dqn_steps:,} steps on TradingEnv K=6: wall {wall:.1f} s ({sps:,.0f} steps/s), "
          f"env {spent:.2f} s = {100 * spent / wall:.1f} % of wall (target <= 10 %)")


if __name__ == "__main__":
    main()
