"""Benchmark (issue 16): DQN training env steps/s on the quickstart, the previous collection path vs SB3 on
the project's vectorised env, at the same learning settings, in one run.

Both arms call ``agents.sb3.learn`` on the quickstart preset (6 synthetic symbols, multi-asset, 459-dim
observation, 19 actions, balanced risk shaping, MLP [64, 64], batch 64, ``train_freq`` 4, one torch thread),
without callbacks, for ``--steps`` env steps:

* ``old``: ``collector="gym"``: ``TradingEnv`` (full infos) in ``RiskShapingWrapper`` and ``Monitor``, which
  SB3 puts in a ``DummyVecEnv`` (one env, one gradient step every 4 env steps);
* ``new``: the model as built now (the gradient step written out, agents/dqn_step.py, bit-identical to SB3's;
  Adam's fused kernel; the replay buffer without its second sample copy: agents/algos.py, agents/replay.py)
  and ``collector="vec"`` with ``env.n_envs = N`` (``--n-envs``, several values allowed): SB3 on
  ``SessionVecEnv`` (minimal infos, batched shaping, ``VecMonitor``), SB3's train_freq/gradient_steps
  scaled so gradient steps per env step stay 1/4 (``algos.collect_schedule``). The script checks that the
  gradient step counts (SB3's ``_n_updates``) agree. ``old`` builds the model as main did before (SB3's
  own ``DQN`` class and ``train``, default Adam and ``ReplayBuffer``); ``--attribution`` adds ``vec N=..``
  arms with those too and ``sb3step N=..`` arms (SB3's ``train``, fused Adam, sample-view buffer), to split
  the gain between collection, the optimiser/buffer changes and the written-out step.

Reported per arm (median over ``--repeats`` interleaved runs): env steps/s of wall time and of this
process's CPU time (the robust figure on a shared machine), and where the wall time goes, measured by
timing SB3's calls: the env (the VecEnv SB3 steps: ``step_wait``/``reset``, wrappers and info copies
included), action selection (``policy.predict``), gradient steps (``DQN.train``: sampling, forward,
backward, optimiser) and the rest (replay-buffer add, callbacks, logger, SB3's loop). ``--profile`` adds a
cProfile of one new-arm run (top functions by own time).

Run: ``.venv/bin/python benchmarks/dqn_throughput.py [--steps 20000] [--n-envs 8,16] [--repeats 3]``.
Note the load (uptime); record in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import contextlib
import dataclasses
import functools
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

TIMERS: dict[str, float] = {}


def timed(cls, name: str, key: str) -> None:
    """Wrap ``cls.name`` so its wall time accumulates in ``TIMERS[key]`` (re-entrant calls counted once)."""
    fn = getattr(cls, name)
    depth = {"n": 0}

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        if depth["n"]:
            return fn(*a, **kw)
        depth["n"] += 1
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            TIMERS[key] = TIMERS.get(key, 0.0) + time.perf_counter() - t0
            depth["n"] -= 1

    setattr(cls, name, wrapper)


def instrument() -> None:
    from stable_baselines3 import DQN
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from intradayjules.agents.dqn_step import DQN as FastDQN

    for cls in (DummyVecEnv, VecMonitor):  # the outermost VecEnv SB3 holds in each arm
        timed(cls, "step_wait", "env")
        timed(cls, "reset", "env")
    timed(BasePolicy, "predict", "predict")
    timed(DQN, "train", "train")
    timed(FastDQN, "train", "train")  # its fallback calls SB3's: counted once


@contextlib.contextmanager
def previous_model(active: str):
    """``full``: DQN built as before issue 16's gradient-step changes: SB3's own class (its ``train``), default
    Adam and ``ReplayBuffer``; ``step``: SB3's ``train`` with the fused Adam and the sample-view buffer."""
    from stable_baselines3 import DQN

    from intradayjules.agents import algos

    saved = algos.ALGOS["dqn"]
    if active == "step":
        algos.ALGOS["dqn"] = dataclasses.replace(saved, cls=DQN)
        try:
            yield
        finally:
            algos.ALGOS["dqn"] = saved
        return

    def kwargs(a):
        d = saved.kwargs(a)
        d.pop("replay_buffer_class")
        d["policy_kwargs"].pop("optimizer_kwargs")
        return d

    if active == "full":
        algos.ALGOS["dqn"] = dataclasses.replace(saved, cls=DQN, kwargs=kwargs)
    try:
        yield
    finally:
        algos.ALGOS["dqn"] = saved


def run(cfg, env_data, steps: int, collector: str, profile: bool = False, previous: str = "") -> dict:
    from intradayjules.agents.sb3 import learn

    TIMERS.clear()
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    with previous_model(previous):
        model = learn(cfg, env_data, total_timesteps=steps, collector=collector)
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"steps": model.num_timesteps, "wall": wall, "cpu": cpu, "updates": model._n_updates,
           "load": os.getloadavg()[0]}
    for k in ("env", "predict", "train"):
        out[k] = TIMERS.get(k, 0.0) / wall
    out["rest"] = 1.0 - out["env"] - out["predict"] - out["train"]
    if prof:
        out["profile"] = prof
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--n-envs", default="8,16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--attribution", action="store_true")
    args = ap.parse_args()

    from intradayjules.config import apply_overrides, load_config, preset_path
    from intradayjules.pipeline.prepare import prepare

    tmp = Path(tempfile.mkdtemp(prefix="ij-dqn-bench-"))
    base = apply_overrides(load_config(preset_path("quickstart")),
                           {"workdir": str(tmp / "runs"), "features.store_dir": str(tmp / "store"),
                            "tracking.enabled": False, "agent.device": "cpu", "agent.torch_threads": 1})
    prepared = prepare(base)
    instrument()
    ns = [int(n) for n in args.n_envs.split(",")]
    arms = [("old", "gym", 1, "full")] + [(f"new N={n}", "vec", n, "") for n in ns]
    if args.attribution:
        arms += [(f"vec N={n}", "vec", n, "full") for n in ns]
        arms += [(f"sb3step N={n}", "vec", n, "step") for n in ns]
    print(f"load before: {os.getloadavg()[0]:.2f}; {args.steps} steps, batch {base.agent.batch_size}, "
          f"train_freq {base.agent.train_freq}, net {base.agent.net_arch}, {args.repeats} interleaved repeats")
    results: dict[str, list[dict]] = {name: [] for name, *_ in arms}
    for _ in range(args.repeats):
        for name, collector, n, previous in arms:
            cfg = apply_overrides(base, {"env.n_envs": n})
            results[name].append(run(cfg, prepared.env_data, args.steps, collector, previous=previous))
    print(f"{'arm':<13} {'steps/s':>8} {'steps/cpu-s':>11} {'x wall':>7} {'x cpu':>6} {'updates':>8} "
          f"{'env %':>6} {'predict %':>9} {'train %':>8} {'rest %':>7} {'load':>5}")
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "profile"}
           for name, rs in results.items()}
    old = med["old"]
    for name, m in med.items():
        sw, sc = m["steps"] / m["wall"], m["steps"] / m["cpu"]
        print(f"{name:<13} {sw:>8.0f} {sc:>11.0f} {sw / (old['steps'] / old['wall']):>7.2f} "
              f"{sc / (old['steps'] / old['cpu']):>6.2f} {m['updates']:>8.0f} {100 * m['env']:>6.1f} "
              f"{100 * m['predict']:>9.1f} {100 * m['train']:>8.1f} {100 * m['rest']:>7.1f} {m['load']:>5.2f}")
    if args.profile:
        name, collector, n, _ = arms[len(ns)]
        r = run(apply_overrides(base, {"env.n_envs": n}), prepared.env_data, args.steps, collector, profile=True)
        print(f"\ncProfile of one '{name}' run (own time; profiling inflates Python-heavy parts):")
        pstats.Stats(r["profile"]).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
