"""Benchmark: TorchScript export of a trained DQN. Target: p99 < 100 us per single-observation call.

Trains a small DQN on the synthetic multi-asset market (6 symbols, 45 sessions; ``--steps``, default
5,000), exports its greedy policy with ``agents.export.export_torchscript``, reloads it with
``load_torchscript`` and measures:

* latency per call (``agents.export.latency_us``): batch 1, one torch thread, no grad, 200 warm-up calls;
  ``--rounds`` rounds of ``--samples`` calls each (the machine is shared, so many samples). Reported: the
  median over rounds of each round's p50 / p99 / mean, the best round's, and p50 / p99 pooled over every
  sample of a second, real-observation loop (the 1,000 env observations cycled);
* for context, the same per-call latency of the eager (unscripted) greedy module and of SB3
  ``DQN.predict(obs, deterministic=True)`` on one observation;
* parity: share of 1,000 env observations (test split, a seeded random-action walk through episodes)
  where the exported module's action equals ``DQN.predict``'s (``agents.export.parity``, target 100 %),
  the largest absolute Q-value difference against the SB3 Q-network, and against an independent float64
  numpy forward pass of the same weights (``numpy_q_values``).

Run: ``.venv/bin/python benchmarks/export_latency.py [--quick]``. Times in microseconds (us).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_config(workdir: Path, steps: int, seed: int = 0):
    from intradayjules.config import ExperimentConfig

    return ExperimentConfig.model_validate({
        "name": "export_bench", "workdir": str(workdir / "runs"),
        "data": {"synthetic": {"n_symbols": 6, "days": 45, "seed": seed}},
        "features": {"store_dir": str(workdir / "store")},
        "env": {"mode": "multi"},
        "agent": {"total_timesteps": steps, "learning_starts": min(1_000, steps // 4), "buffer_size": steps,
                  "checkpoint_freq": steps, "target_update_interval": 250, "seed": seed},
        "risk": {"eval_freq": steps, "eval_episodes": 2},
        "tracking": {"enabled": False},
    })


def env_observations(cfg, prepared, n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations from the test split: a seeded random-action walk, resetting at episode ends."""
    from intradayjules.env import make_env

    env = make_env(cfg, None, split="test", data=prepared.env_data)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    while len(out) < n:
        out.append(np.asarray(obs, dtype=np.float32))
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    return np.stack(out)


def per_call_us(fn, inputs: list, n: int, warmup: int = 200) -> np.ndarray:
    """Per-call latencies (us) of ``fn(x)`` cycling through ``inputs``."""
    k = len(inputs)
    for i in range(warmup):
        fn(inputs[i % k])
    out = np.empty(n)
    for i in range(n):
        x = inputs[i % k]
        t0 = time.perf_counter_ns()
        fn(x)
        out[i] = (time.perf_counter_ns() - t0) / 1e3
    return out


def numpy_q_values(model, obs: np.ndarray) -> np.ndarray:
    """Q-values from the SB3 Q-network's weights with plain float64 numpy (an independent reference:
    Flatten, then the MLP's Linear and ReLU layers in order)."""
    import torch

    x = obs.reshape(len(obs), -1).astype(np.float64)
    for layer in model.q_net.q_net:
        if isinstance(layer, torch.nn.Linear):
            x = x @ layer.weight.detach().numpy().astype(np.float64).T + layer.bias.detach().numpy()
        elif isinstance(layer, torch.nn.ReLU):
            x = np.maximum(x, 0.0)
        else:
            raise TypeError(f"unexpected layer in the Q-network: {layer!r}")
    return x


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 training steps, 5 rounds of 2,000 calls")
    ap.add_argument("--steps", type=int, default=None, help="DQN training steps (default 5,000)")
    ap.add_argument("--rounds", type=int, default=None, help="latency rounds (default 20)")
    ap.add_argument("--samples", type=int, default=None, help="calls per round (default 5,000)")
    ap.add_argument("--n-obs", type=int, default=1_000, help="env observations for parity (default 1,000)")
    args = ap.parse_args(argv)
    steps = args.steps or (2_000 if args.quick else 5_000)
    rounds = args.rounds or (5 if args.quick else 20)
    samples = args.samples or (2_000 if args.quick else 5_000)

    import torch

    from intradayjules.agents.dqn import load_model
    from intradayjules.pipeline.train_run import train
    from intradayjules.agents.export import (_greedy_module, export_torchscript, latency_us,
                                             load_torchscript, parity)
    from intradayjules.pipeline.prepare import prepare

    with tempfile.TemporaryDirectory(prefix="ij_export_bench_") as tmp:
        tmp = Path(tmp)
        cfg = make_config(tmp, steps)
        prepared = prepare(cfg)
        t0 = time.perf_counter()
        res = train(prepared, tmp / "run", cfg=cfg)
        train_s = time.perf_counter() - t0
        model = load_model(res.model_path)
        t0 = time.perf_counter()
        path = export_torchscript(model, tmp / "policy.pt")
        export_s = time.perf_counter() - t0
        size_kib = path.stat().st_size / 1024
        scripted = load_torchscript(path)
        obs = env_observations(cfg, prepared, args.n_obs)
        obs_dim = obs.shape[1]

        # parity: actions and Q-values against SB3
        share = parity(model, scripted, obs)
        with torch.no_grad():
            x = torch.as_tensor(obs)
            q_sb3 = model.q_net(x).numpy()
            q_ts = scripted.q_values(x).numpy()
        q_diff = float(np.max(np.abs(q_sb3 - q_ts)))
        q_np = numpy_q_values(model, obs)
        np_diff = float(np.max(np.abs(q_np - q_ts)))
        np_agree = float(np.mean(np.argmax(q_np, axis=1) == scripted(x).numpy()))
        single = [torch.as_tensor(o).reshape(1, -1) for o in obs]
        with torch.no_grad():
            one_by_one = float(np.mean([int(scripted(s)[0]) == int(model.predict(o, deterministic=True)[0])
                                        for s, o in zip(single, obs)]))

        # latency: latency_us rounds (random input, batch 1, one thread)
        rows = [latency_us(scripted, obs_dim, n=samples, batch=1) for _ in range(rounds)]
        torch.set_num_threads(1)
        with torch.no_grad():
            pooled = per_call_us(scripted, single, n=rounds * samples)
            eager = per_call_us(_greedy_module(model.policy), single, n=max(samples, 2_000) * 2)
        sb3 = per_call_us(lambda o: model.predict(o, deterministic=True), list(obs), n=max(samples, 2_000))
        threads = torch.get_num_threads()

    def med(key):
        return statistics.median(r[key] for r in rows)

    best = min(rows, key=lambda r: r["p99"])
    print(f"\nTorchScript greedy DQN policy (net_arch {cfg.agent.net_arch}, obs_dim {obs_dim}, "
          f"{model.action_space.n} actions), batch 1, {threads} torch thread(s)")
    print(f"trained {res.timesteps:,} steps in {train_s:.1f} s; export {export_s * 1e3:.0f} ms, "
          f"policy.pt {size_kib:.0f} KiB")
    print(f"{'latency per call (us)':<52}{'p50':>9}{'p99':>9}{'mean':>9}{'target p99':>12}")
    print(f"{f'latency_us, median of {rounds} rounds x {samples:,}':<52}{med('p50'):>9.1f}{med('p99'):>9.1f}"
          f"{med('mean'):>9.1f}{'< 100':>12}")
    print(f"{'latency_us, best round (lowest p99)':<52}{best['p50']:>9.1f}{best['p99']:>9.1f}{best['mean']:>9.1f}")
    print(f"{'latency_us, worst round (highest p99)':<52}{max(r['p50'] for r in rows):>9.1f}"
          f"{max(r['p99'] for r in rows):>9.1f}{max(r['mean'] for r in rows):>9.1f}")
    print(f"{f'TorchScript, env obs, pooled {len(pooled):,} calls':<52}{np.percentile(pooled, 50):>9.1f}"
          f"{np.percentile(pooled, 99):>9.1f}{pooled.mean():>9.1f}{'< 100':>12}")
    print(f"{'  same loop, p99.9 / max':<52}{np.percentile(pooled, 99.9):>9.1f}{pooled.max():>9.1f}")
    print(f"{f'eager torch module, {len(eager):,} calls':<52}{np.percentile(eager, 50):>9.1f}"
          f"{np.percentile(eager, 99):>9.1f}{eager.mean():>9.1f}")
    print(f"{f'SB3 DQN.predict, {len(sb3):,} calls':<52}{np.percentile(sb3, 50):>9.1f}"
          f"{np.percentile(sb3, 99):>9.1f}{sb3.mean():>9.1f}")
    print(f"\n{'parity vs SB3 predict':<52}{'value':>9}{'target':>12}")
    print(f"{f'action agreement, batch of {len(obs):,} env obs, %':<52}{share * 100:>9.2f}{'100':>12}")
    print(f"{f'action agreement, {len(obs):,} single calls, %':<52}{one_by_one * 100:>9.2f}{'100':>12}")
    print(f"{'max |Q_torchscript - Q_sb3|':<52}{q_diff:>9.2e}")
    print(f"{'max |Q_torchscript - Q_numpy float64 reference|':<52}{np_diff:>9.2e}")
    print(f"{'action agreement with the numpy reference, %':<52}{np_agree * 100:>9.2f}{'100':>12}")
    print(f"(torch {torch.__version__}, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
