"""Benchmark: what pruning costs in the quality of the selected trial, not only what it saves (issue 16).

``tune_speedup.py`` times one study per configuration and prints each study's best objective; that best is
a poor quality measure for a pruned study: it is the maximum over fewer complete trials of a noisy
objective (winner's curse), and one study is one draw. Here, for ``--repeats`` sampler seeds, the same
16-trial study (``tune_speedup.py``'s settings: default DQN + risk space, 8k steps, 20 reports) runs

1. sequentially without pruning (speed reference),
2. on 2 forked workers without pruning (quality reference: the same search without pruning),
3. on 2 workers with each pruner in ``--pruners`` (default: the presets' median, and Hyperband),

and each study's selected parameters are then **re-measured**: ``--reeval-seeds`` fresh training seeds
(1000, 1001, ...) of the same trial (``pipeline.trial.dqn_trial``, same budget, same validation block, the
objective the study maximises, nothing pruned), in 2 forked workers. Prints per arm the wall time and
speed-up over the sequential study (per repeat), trials pruned, the study's own best, and the re-measured
objective of its selection; and each pruned arm minus the unpruned 2-worker arm, paired by repeat, with a
t interval over repeats. Validation sessions only: no test session is read. Record the table in
benchmarks/README.md.

Usage: .venv/bin/python benchmarks/pruner_quality.py [--repeats 3] [--reeval-seeds 3] [--pruners median,hyperband]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path


class _NoPrune:
    """A reporter that records nothing and never prunes (``tune/trial.py``'s contract)."""

    checkpoint_every = None

    def __init__(self, key: str):
        self.trial_key = key

    def report(self, step: int, value: float) -> bool:
        return False

    def checkpoint_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="ckpt_"))

    def restore_dir(self) -> Path | None:
        return None


def _t_interval(diffs: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    m = statistics.fmean(diffs)
    if len(diffs) < 2:
        return m, math.nan, math.nan
    h = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return m, m - h, m + h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reeval-seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--timesteps", type=int, default=8000)
    ap.add_argument("--reports", type=int, default=20)
    ap.add_argument("--pruners", default="median,hyperband")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()

    from intradayjules.agents.sb3 import configure_torch
    from intradayjules.config import apply_overrides, config_from_dict
    from intradayjules.pipeline.parallel import map_forked
    from intradayjules.pipeline.prepare import prepare
    from intradayjules.pipeline.trial import dqn_trial
    from intradayjules.tune.optuna_backend import run_optuna
    from intradayjules.tune.space import SearchSpace

    configure_torch(1)
    work = Path(tempfile.mkdtemp(prefix="ijprune_", dir="/tmp"))
    base = {"workdir": str(work / "runs"),
            "agent": {"learning_starts": 1000, "torch_threads": 1},
            "features": {"store_dir": str(work / "feature_store")},
            "tune": {"trial_fn": "intradayjules.pipeline.trial:dqn_trial", "trial_timesteps": a.timesteps,
                     "reports_per_trial": a.reports, "n_trials": a.trials}}
    arms = [("sequential", dict(workers=1, pruner="none")), ("2 procs", dict(workers=2, pruner="none")),
            *[(f"2 procs {p}", dict(workers=2, pruner=p)) for p in a.pruners.split(",")]]
    studies: dict[tuple[str, int], object] = {}
    try:
        prepare(config_from_dict(base))  # the shared feature-store entry, outside the timings
        # one untimed study first: this process's one-time costs (imports, kernels) would otherwise land in
        # the first timed study, the sequential one, and flatter every speed-up
        run_optuna(config_from_dict(base), study="warm-up", n_trials=1, workers=1, pruner="none", progress=False)
        for rep in range(a.repeats):
            cfg = config_from_dict({**base, "tune": {**base["tune"], "sampler_seed": rep}})
            for label, kw in arms:
                r = run_optuna(cfg, study=f"{label.replace(' ', '-')}-{rep}", n_trials=a.trials, progress=False, **kw)
                studies[(label, rep)] = (cfg, r)
                print(f"repeat {rep} {label}: {r.wall_s:.1f} s, {r.n_complete}/{r.n_pruned} complete/pruned, best "
                      f"{r.best_value:.3f} (load {os.getloadavg()[0]:.2f})", file=sys.stderr)

        def reeval(item):  # one fresh training seed of a study's selected parameters
            (label, rep), k = item
            cfg, r = studies[(label, rep)]
            tcfg = SearchSpace.from_config(cfg.tune, cfg.agent.algo).apply(cfg, r.best_params)
            tcfg = apply_overrides(tcfg, {"agent.seed": 1000 + k})
            return dqn_trial(r.best_params, tcfg, _NoPrune(f"reeval-{label}-{rep}-{k}".replace(" ", "_")))

        items = [(key, k) for key in studies if key[0] != "sequential" for k in range(a.reeval_seeds)]
        values = map_forked(reeval, items, 2)
        reevals: dict[tuple[str, int], list[float]] = {}
        for (key, _), v in zip(items, values):
            reevals.setdefault(key, []).append(v)
        _print(a, arms, studies, reevals)
    finally:
        if a.keep:
            print(f"work folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _print(a, arms, studies, reevals) -> None:
    print(f"\n{a.repeats} repeats (sampler seeds 0..{a.repeats - 1}) x {a.trials} trials x {a.timesteps} steps, "
          f"{a.reports} reports; selection re-measured with {a.reeval_seeds} fresh training seeds each")
    print(f"{'arm':<22}{'wall s (mean)':>14}  {'x sequential, per repeat':<26}{'pruned':>8}{'own best':>10}"
          f"{'re-measured':>13}")
    for label, _ in arms:
        reps = [studies[(label, rep)][1] for rep in range(a.repeats)]
        speed = [studies[("sequential", rep)][1].wall_s / r.wall_s for rep, r in enumerate(reps)]
        re = "-" if label == "sequential" else \
            f"{statistics.fmean(statistics.fmean(reevals[(label, rep)]) for rep in range(a.repeats)):.3f}"
        print(f"{label:<22}{statistics.fmean(r.wall_s for r in reps):>14.1f}  "
              f"{', '.join(f'{s:.2f}' for s in speed):<26}{statistics.fmean(r.n_pruned for r in reps):>8.1f}"
              f"{statistics.fmean(r.best_value for r in reps):>10.3f}{re:>13}")
    for label, _ in arms[2:]:
        diffs = [statistics.fmean(reevals[(label, rep)]) - statistics.fmean(reevals[("2 procs", rep)])
                 for rep in range(a.repeats)]
        m, lo, hi = _t_interval(diffs)
        print(f"{label} - 2 procs (re-measured, paired by repeat): {m:+.3f} [{lo:+.3f}, {hi:+.3f}] 95 % t interval; "
              f"per repeat {', '.join(f'{d:+.3f}' for d in diffs)}")
    sd = [statistics.stdev(v) for v in reevals.values() if len(v) > 1]
    if sd:
        print(f"sd of one selection's re-measured objective across training seeds (median over studies): "
              f"{statistics.median(sd):.3f}")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
