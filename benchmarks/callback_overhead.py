"""Benchmark: the RiskCallback's cost as a share of DQN training wall time. Target: <= 5 %.

Setup: the synthetic multi-asset market (6 symbols: 2 liquid, 2 mid, 2 illiquid; 45 sessions), the
config's DQN defaults except a smaller run (``--steps``, default 50,000; buffer 50,000, learning_starts
5,000), and the risk section's *defaults* (``eval_freq`` 5,000 steps, ``eval_episodes`` 5 validation
sessions), one torch thread. Two arms, otherwise identical (same seed, same data, same checkpoints):

* (a) ``callback``: ``RiskCallback`` evaluates every ``eval_freq`` steps (the default);
* (b) ``no evals``: ``eval_freq`` larger than the run, so ``_on_step`` only compares integers.

``train()`` measures ``wall_s`` around ``model.learn`` only; the callback's ``eval_seconds`` counts every
evaluation. The run length is a multiple of ``eval_freq``, so arm (a)'s last evaluation is inside
``learn``; the one evaluation ``train()`` adds after learning in arm (b) (to judge the final policy) is
outside ``wall_s`` and not counted. Reported per arm, median over ``--repeats`` runs (arms interleaved
in ABBA order, so machine load drifts and order effects affect both alike):

* share = in-learn evaluation seconds / wall seconds of arm (a), and the same in process CPU seconds
  (each ``RiskCallback.evaluate`` call timed with ``time.process_time`` by wrapping the method in this
  process only);
* wall difference = (wall(a) - wall(b)) / wall(b), the end-to-end cost including the per-step check,
  paired run by run; on a machine shared with other jobs wall time swings by tens of percent, so the
  same difference is also given in process CPU time inside ``learn`` (``time.process_time``; torch runs
  on one thread), which other jobs' load barely moves;
* the per-step cost of ``RiskCallback.on_step`` between evaluations (microseconds), against a no-op
  ``BaseCallback`` (SB3's own per-callback bookkeeping) and the raw ``_on_step``.

Times in seconds unless a column says us (microseconds). Run: ``.venv/bin/python
benchmarks/callback_overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def make_config(workdir: Path, steps: int, eval_freq: int | None, seed: int = 0):
    from intradayjules.config import ExperimentConfig

    risk = {} if eval_freq is None else {"eval_freq": eval_freq}
    return ExperimentConfig.model_validate({
        "name": "bench", "workdir": str(workdir / "runs"),
        "data": {"synthetic": {"n_symbols": 6, "days": 45, "seed": seed}},
        "features": {"store_dir": str(workdir / "store")},
        "env": {"mode": "multi"},
        "agent": {"total_timesteps": steps, "buffer_size": min(steps, 50_000),
                  "learning_starts": min(5_000, steps // 5), "checkpoint_freq": max(steps // 2, 1),
                  "seed": seed, "torch_threads": 1},
        "risk": risk,
        "tracking": {"enabled": False},
    })


def run_arm(prepared, cfg, run_dir: Path) -> dict[str, float]:
    """One training run; the evaluation seconds and count up to the end of ``model.learn``."""
    from stable_baselines3.common.callbacks import BaseCallback

    from intradayjules.pipeline.train_run import train
    from intradayjules.risk.callback import RiskCallback

    marks: list[float] = []  # cumulative RiskCallback.eval_seconds after each evaluation
    at_end: list[int] = []  # evaluations done when learn() ended

    def hook(cb, _metrics) -> None:
        marks.append(cb.eval_seconds)

    cpu: list[float] = []  # process CPU seconds at the start and the end of learn()

    class LearnClock(BaseCallback):
        def _on_training_start(self) -> None:
            cpu.append(time.process_time())

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            cpu.append(time.process_time())
            at_end.append(len(marks))

    eval_cpu: list[float] = []  # process CPU seconds of each RiskCallback.evaluate call
    original = RiskCallback.evaluate

    def timed_evaluate(self):
        c0 = time.process_time()
        try:
            return original(self)
        finally:
            eval_cpu.append(time.process_time() - c0)

    RiskCallback.evaluate = timed_evaluate  # benchmark-local instrumentation, restored below
    try:
        res = train(prepared, run_dir, cfg=cfg, hooks=[hook], extra_callbacks=[LearnClock()])
    finally:
        RiskCallback.evaluate = original
    n_in = at_end[0]
    return {"wall_s": res.wall_s, "cpu_s": cpu[1] - cpu[0], "eval_s": marks[n_in - 1] if n_in else 0.0,
            "eval_cpu_s": sum(eval_cpu[:n_in]), "n_evals": n_in, "timesteps": res.timesteps,
            "stopped_early": res.stopped_early}


def per_step_us(prepared, cfg, n: int, repeats: int) -> dict[str, float]:
    """``on_step`` cost (us) of a RiskCallback between evaluations vs a no-op callback."""
    from stable_baselines3.common.callbacks import BaseCallback

    from intradayjules.agents.dqn import build_model, make_training_env
    from intradayjules.env import make_env
    from intradayjules.risk.callback import RiskCallback

    class Noop(BaseCallback):
        def _on_step(self) -> bool:
            return True

    model = build_model(cfg, make_training_env(cfg, prepared.env_data), "cpu")
    model.num_timesteps = 0
    risk_cb = RiskCallback(make_env(cfg, None, split="val", data=prepared.env_data), cfg.risk,
                           eval_freq=10**12)
    noop = Noop()
    for cb in (risk_cb, noop):
        cb.init_callback(model)
        cb.on_training_start({}, {})

    def loop(fn) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n * 1e6

    def empty() -> None:
        return None

    out = {"loop": [], "noop on_step": [], "RiskCallback on_step": [], "RiskCallback _on_step": []}
    for _ in range(repeats):
        out["loop"].append(loop(empty))
        out["noop on_step"].append(loop(noop.on_step))
        out["RiskCallback on_step"].append(loop(risk_cb.on_step))
        out["RiskCallback _on_step"].append(loop(risk_cb._on_step))
    if risk_cb.history:
        raise RuntimeError("the per-step benchmark triggered an evaluation: it must measure only the check")
    return {k: statistics.median(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10,000 steps, 2 repeats")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default 50,000)")
    ap.add_argument("--repeats", type=int, default=None, help="runs per arm (default 5)")
    args = ap.parse_args(argv)
    steps = args.steps or (10_000 if args.quick else 50_000)
    repeats = args.repeats or (2 if args.quick else 5)

    from intradayjules.config import RiskConfig
    from intradayjules.pipeline.prepare import prepare

    eval_freq = RiskConfig().eval_freq
    if steps % eval_freq:
        raise SystemExit(f"--steps must be a multiple of the default eval_freq ({eval_freq})")
    with tempfile.TemporaryDirectory(prefix="ij_cb_bench_") as tmp:
        tmp = Path(tmp)
        cfg_a = make_config(tmp, steps, None)
        cfg_b = make_config(tmp, steps, steps * 10)
        prepared = prepare(cfg_a)
        arms: dict[str, list[dict]] = {"a": [], "b": []}
        for r in range(repeats):
            order = (("a", cfg_a), ("b", cfg_b)) if r % 2 == 0 else (("b", cfg_b), ("a", cfg_a))  # ABBA
            for arm, cfg in order:
                res = run_arm(prepared, cfg, tmp / f"{arm}{r}")
                arms[arm].append(res)
                print(f"  run {r + 1}/{repeats} arm {arm}: wall {res['wall_s']:.2f} s, "
                      f"cpu {res['cpu_s']:.2f} s, in-learn eval "
                      f"{res['eval_s']:.2f} s ({res['n_evals']} evaluations)", file=sys.stderr, flush=True)
        step_us = per_step_us(prepared, cfg_a, n=200_000 if not args.quick else 50_000, repeats=5)
    sessions = RiskConfig().eval_episodes

    wall_a = statistics.median(r["wall_s"] for r in arms["a"])
    wall_b = statistics.median(r["wall_s"] for r in arms["b"])
    evals_a = statistics.median(r["eval_s"] for r in arms["a"])
    shares = [r["eval_s"] / r["wall_s"] for r in arms["a"]]
    n_evals = arms["a"][0]["n_evals"]
    diffs = [(a["wall_s"] - b["wall_s"]) / b["wall_s"] for a, b in zip(arms["a"], arms["b"])]
    cpu_diffs = [(a["cpu_s"] - b["cpu_s"]) / b["cpu_s"] for a, b in zip(arms["a"], arms["b"])]
    cpu_shares = [r["eval_cpu_s"] / r["cpu_s"] for r in arms["a"]]

    print(f"\nDQN, synthetic multi-asset env (6 symbols), {steps:,} steps, eval_freq {eval_freq:,} "
          f"({n_evals} evaluations x {sessions} validation sessions), 1 torch thread, median of {repeats}")
    print(f"{'measure':<48}{'median':>12}{'min':>10}{'max':>10}{'target':>9}")
    rows = [
        ("wall (a) with callback evaluations, s", wall_a, [r["wall_s"] for r in arms["a"]], ""),
        ("wall (b) no evaluations, s", wall_b, [r["wall_s"] for r in arms["b"]], ""),
        ("in-learn evaluation time (a), s", evals_a, [r["eval_s"] for r in arms["a"]], ""),
        ("time per evaluation (a), s", evals_a / max(n_evals, 1),
         [r["eval_s"] / max(r["n_evals"], 1) for r in arms["a"]], ""),
        ("share eval_s / wall_s (a), %", statistics.median(shares) * 100, [s * 100 for s in shares], "<= 5"),
        ("wall difference (a - b) / b, %", statistics.median(diffs) * 100, [d * 100 for d in diffs], "<= 5"),
        ("evaluation CPU / learn() CPU (a), %", statistics.median(cpu_shares) * 100,
         [c * 100 for c in cpu_shares], "<= 5"),
        ("CPU (a) in learn(), s", statistics.median(r["cpu_s"] for r in arms["a"]),
         [r["cpu_s"] for r in arms["a"]], ""),
        ("CPU (b) in learn(), s", statistics.median(r["cpu_s"] for r in arms["b"]),
         [r["cpu_s"] for r in arms["b"]], ""),
        ("CPU difference (a - b) / b, %", statistics.median(cpu_diffs) * 100, [d * 100 for d in cpu_diffs],
         "<= 5"),
    ]
    for name, med, vals, target in rows:
        print(f"{name:<48}{med:>12.3f}{min(vals):>10.3f}{max(vals):>10.3f}{target:>9}")
    base = step_us["noop on_step"]
    print("\nper-step cost between evaluations (us per call, median of 5 loops)")
    print(f"{'call':<48}{'us':>12}{'minus no-op':>14}")
    for k in ("loop", "noop on_step", "RiskCallback on_step", "RiskCallback _on_step"):
        extra = f"{step_us[k] - base:>14.3f}" if k == "RiskCallback on_step" else ""
        print(f"{k:<48}{step_us[k]:>12.3f}{extra}")
    per_step_total = step_us["RiskCallback on_step"] * steps / 1e6
    print(f"RiskCallback.on_step x {steps:,} steps = {per_step_total:.4f} s "
          f"({per_step_total / wall_b * 100:.3f} % of wall (b))")
    print(f"(Python {sys.version.split()[0]}; wall excludes data preparation and the post-learn evaluation)")


if __name__ == "__main__":
    main()
