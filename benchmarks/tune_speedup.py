"""Benchmark: hyperparameter-search throughput on this machine (issue 6).

Same search space (the default DQN + risk space) and trial budget for every configuration:

1. sequential Optuna, no pruning (the original baseline: ``--workers 1 --pruner none``)
2. Optuna, 2 worker processes, no pruning (parallelism alone; target >= 1.8x, efficiency >= 90 %)
3. Optuna, 2 worker processes, median pruning (target >= 3x); ``--pruners median,hyperband`` adds
   Optuna's Hyperband pruner (min resource 1 report, reduction factor 3) as a second row
4. Ray Tune, 2 CPUs, OptunaSearch + ASHA (grace 10, reduction factor 2)
5. Ray per-trial overhead: no-op studies of N and 4N trials on 2 CPUs (``--ray-repeats`` of each,
   interleaved, medians); the slope between the sizes is the cost of one more trial (per CPU slot:
   wall * 2 / trials), the intercept the fixed start of a study (the tuner and its first actors). The
   older figure, one N-trial study's wall * 2 / N, mixes the two and is printed too.

Trials are real short DQN trainings (``intradayjules.pipeline.trial:dqn_trial``, default) or, with
``--objective cpu``, a CPU-bound synthetic objective. Prints a table; record it in benchmarks/README.md.
Issue 16: ``--start fork,spawn`` runs the Optuna rows with forked workers (the default: the study's data
prepared once in the coordinator, shared copy-on-write) and with fresh worker interpreters, each against its
own sequential run, and prints each worker's start-up (spawn/fork -> its first trial, from the trials'
``worker_startup_s``). The Optuna rows' wall time includes that start-up and the coordinator's one
preparation of the data.
Usage: .venv/bin/python benchmarks/tune_speedup.py [--trials 16] [--timesteps 6000] [--objective dqn|cpu]
       [--skip-ray] [--skip-pruning] [--start fork,spawn]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOOP = HERE / "_tune_objectives.py"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--timesteps", type=int, default=6000)
    ap.add_argument("--reports", type=int, default=20)
    ap.add_argument("--objective", choices=["dqn", "cpu"], default="dqn")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-pruning", action="store_true")
    ap.add_argument("--start", default="fork", help="worker start: fork, spawn or both (fork,spawn; issue 16)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--pruners", default="median", help="pruners of row 3, comma-separated (median, hyperband)")
    ap.add_argument("--ray-repeats", type=int, default=3, help="no-op Ray studies of each size (overhead)")
    a = ap.parse_args()

    from intradayjules.config import config_from_dict
    from intradayjules.tune.optuna_backend import run_optuna

    work = Path(tempfile.mkdtemp(prefix="ijbench_", dir="/tmp"))
    os.environ["INTRADAYJULES_RAY_TOKEN"] = str(work / "ray_token")
    fn = "intradayjules.pipeline.trial:dqn_trial" if a.objective == "dqn" else f"{NOOP}:cpu_quadratic"
    base = {"workdir": str(work / "runs"),
            "agent": {"learning_starts": 1000, "torch_threads": 1},
            "features": {"store_dir": str(work / "feature_store")},
            "tune": {"trial_fn": fn, "trial_timesteps": a.timesteps, "reports_per_trial": a.reports,
                     "n_trials": a.trials}}
    cfg = config_from_dict(base)
    rows = []
    try:
        if a.objective == "dqn":  # build the shared feature-store entry once, outside the timings
            from intradayjules.pipeline.prepare import prepare

            prepare(cfg)
        from intradayjules.tune.optuna_backend import START_ENV

        # one untimed study first: this process's one-time costs (imports, kernels: ~4 s) would otherwise land
        # in the first timed study, the sequential one, and flatter every speed-up (rows before 2026-12-01 21h)
        run_optuna(cfg, study="warm-up", n_trials=1, workers=1, pruner="none", progress=False)

        for start in a.start.split(","):
            os.environ[START_ENV] = start
            configs = [("1 optuna sequential, no pruning", dict(workers=1, pruner="none")),
                       ("2 optuna 2 procs, no pruning", dict(workers=2, pruner="none")),
                       *[(f"3 optuna 2 procs, {p} pruning", dict(workers=2, pruner=p)) for p in a.pruners.split(",")]]
            for label, kw in configs[:2] if a.skip_pruning else configs:
                label = f"{label} [{start}]"
                study = f"{label.split()[0]}-{kw['pruner']}-{start}"
                r = run_optuna(cfg, study=study, n_trials=a.trials, progress=False, **kw)
                rows.append((label, r))
                print(f"done: {label}: {r.wall_s:.1f} s (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
        if not a.skip_ray:
            from intradayjules.tune.ray_backend import run_ray

            r = run_ray(cfg, study="ray-asha", scheduler="asha", num_cpus=2, n_trials=a.trials,
                        temp_dir=str(work / "ray"))
            rows.append(("4 ray 2 CPUs, OptunaSearch + ASHA", r))
            noop = config_from_dict({**base, "tune": {**base["tune"], "trial_fn": f"{NOOP}:noop"}})
            walls: dict[int, list[float]] = {}
            for rep in range(a.ray_repeats):  # a study of n and one of 4n no-op trials, interleaved
                for n in (a.trials, 4 * a.trials):
                    r = run_ray(noop, study=f"ray-noop-{n}-{rep}", scheduler="fifo", num_cpus=2, n_trials=n,
                                temp_dir=str(work / "ray"))
                    walls.setdefault(n, []).append(r.wall_s)
            small, big = (statistics.median(walls[n]) for n in (a.trials, 4 * a.trials))
            ray_overhead = {"per_trial": (big - small) * 2 / (3 * a.trials), "fixed": small - (big - small) / 3,
                            "whole": small * 2 / a.trials, "walls": walls}
        _print(rows, a, None if a.skip_ray else ray_overhead)
    finally:
        if a.keep:
            print(f"work folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _print(rows, a, ray_overhead) -> None:
    print(f"\n{a.trials} trials, objective {a.objective}, {a.timesteps} DQN steps and {a.reports} reports per trial")
    print(f"{'configuration':<38}{'wall s':>8}{'trials/h':>10}{'x base':>8}{'eff.':>7}{'done/pruned/failed':>20}"
          f"{'best':>10}{'trial s (median)':>18}")
    base = rows[0][1].wall_s
    for label, r in rows:
        if label.startswith("1"):
            base = r.wall_s  # each start mode against its own sequential run
        n_workers = 1 if label.startswith("1") else 2
        speed = base / r.wall_s
        secs = [t["seconds"] for t in r.trials if t.get("seconds")]
        med = statistics.median(secs) if secs else float("nan")
        best = "-" if r.best_value is None else f"{r.best_value:.3f}"
        print(f"{label:<38}{r.wall_s:>8.1f}{r.n_finished / r.wall_s * 3600:>10,.0f}{speed:>8.2f}"
              f"{speed / n_workers:>7.0%}{f'{r.n_complete}/{r.n_pruned}/{r.n_failed}':>20}{best:>10}{med:>18.2f}")
    vals = [t["value"] for t in rows[0][1].trials if t["state"] == "complete" and t["value"] is not None]
    if len(vals) > 1:
        print(f"baseline objective spread across its trials: sd {statistics.stdev(vals):.3f}")
    for label, r in rows:
        ups = [t["worker_startup_s"] for t in r.trials if t.get("worker_startup_s") is not None]
        if ups:
            print(f"worker start-up (spawn/fork -> first trial), {label}: "
                  + ", ".join(f"{u:.2f} s" for u in sorted(ups)))
    print(f"load at the end: {os.getloadavg()[0]:.2f}")
    if ray_overhead is not None:
        o = ray_overhead
        print("ray no-op studies on 2 CPUs, tuner wall s: "
              + "; ".join(f"{n} trials {', '.join(f'{w:.2f}' for w in ws)}" for n, ws in o["walls"].items()))
        print(f"ray per-trial overhead (slope between the two sizes, CPU-slot s per trial): {o['per_trial']:.3f} s; "
              f"fixed start of a study (tuner, first actors): {o['fixed']:.2f} s; "
              f"the {a.trials}-trial study's wall x 2 / trials (both together): {o['whole']:.2f} s")


if __name__ == "__main__":
    main()
