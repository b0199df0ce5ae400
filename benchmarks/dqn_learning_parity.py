"""Benchmark: does the new DQN collection path learn the same as the old one? (issue 16)

For each seed, train the quickstart's DQN twice from scratch with the same settings:
* old: SB3 ``DQN`` on ``Monitor(RiskShapingWrapper(TradingEnv))`` (one env, SB3's ``DummyVecEnv``),
* new: ``agents.vec_training`` (``TrainingDQN`` on the vectorised env, same gradient steps per env step),
then evaluate each final greedy policy on **all validation sessions** (never the test block) with the
risk callback's evaluation (``risk.callback.evaluate_policy_risk``: mean daily net return in bps, the
risk composite and the objective).

Test: paired differences new - old across seeds of the mean daily net bps (and of the objective), with
a two-sided 95 % t confidence interval; "unchanged within noise" = the interval contains 0. The two
paths cannot be bit-identical (the new one runs n episodes side by side, so it visits sessions and
draws exploration in another order), so this is a statistical check; the unit-level equalities
(same rewards per slot, same update from the same batch) are in tests/.

Usage: ``.venv/bin/python benchmarks/dqn_learning_parity.py [--seeds 5] [--steps 40000]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import warnings

# two-sided 95 % Student t quantiles by degrees of freedom (scipy is not a dependency)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="examples/configs/quickstart.yaml")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="default: agent.total_timesteps")
    ap.add_argument("--out", default=None, help="write the per-seed results as JSON here")
    ap.add_argument("--from-json", nargs="+", default=None, help="only summarise earlier --out files")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.from_json:
        rows = [r for f in args.from_json for r in json.load(open(f))]
        print(f"{len(rows)} seeds from {', '.join(args.from_json)}")
        summarise(rows)
        return
    import numpy as np
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.utils import set_random_seed

    from dqn_throughput import old_kwargs
    from intradayjules.agents.vec_training import build_training_model, make_training_vec_env
    from intradayjules.config import load_config
    from intradayjules.env import make_env
    from intradayjules.experiment import prepare
    from intradayjules.risk.callback import evaluate_policy_risk
    from intradayjules.risk.shaping import wrap_from_config

    torch.set_num_threads(1)
    base = load_config(args.config)
    prepared = prepare(base, use_store=False)
    steps = args.steps or base.agent.total_timesteps
    eval_env = make_env(base, None, split="val", data=prepared.env_data)
    sessions = [str(np.datetime_as_string(prepared.env_data.panel.sessions[i], unit="D"))
                for i in eval_env.picker.indices]

    def evaluate(model) -> dict:
        m = evaluate_policy_risk(lambda obs: int(model.predict(obs, deterministic=True)[0]), eval_env, sessions,
                                 base.risk)
        return {k: m[k] for k in ("eval/mean_daily_return_bps", "eval/objective", "risk/composite",
                                  "eval/traded_notional")}

    rows = []
    load0 = os.getloadavg()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        cfg = base.model_copy(update={"agent": base.agent.model_copy(update={"seed": seed})})
        row = {"seed": seed}
        for path in ("old", "new"):
            set_random_seed(seed)
            t0 = time.perf_counter()
            if path == "old":
                env = Monitor(wrap_from_config(make_env(cfg, None, split="train", data=prepared.env_data), cfg))
                env.reset(seed=seed)
                env.action_space.seed(seed)
                model = DQN("MlpPolicy", env, device="cpu", verbose=0, **old_kwargs(cfg))
            else:
                model = build_training_model(cfg, make_training_vec_env(cfg, prepared.env_data, steps), "cpu")
            model.learn(steps)
            row[path] = {**evaluate(model), "train_s": time.perf_counter() - t0}
        rows.append(row)
        print(f"seed {seed}: old {row['old']['eval/mean_daily_return_bps']:8.2f} bps/day "
              f"(objective {row['old']['eval/objective']:8.2f}, {row['old']['train_s']:.0f} s)   "
              f"new {row['new']['eval/mean_daily_return_bps']:8.2f} bps/day "
              f"(objective {row['new']['eval/objective']:8.2f}, {row['new']['train_s']:.0f} s)", flush=True)
    print(f"config {args.config}, {steps:,} env steps per run, {len(sessions)} validation sessions; "
          f"load average {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    summarise(rows)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)


def summarise(rows: list[dict]) -> None:
    """Paired new - old differences by seed with a 95 % t interval, and the spread of each path."""
    for key in ("eval/mean_daily_return_bps", "eval/objective"):
        d = [r["new"][key] - r["old"][key] for r in rows]
        n = len(d)
        mean = statistics.mean(d)
        sd = statistics.stdev(d) if n > 1 else math.nan
        half = T975.get(n - 1, 2.2 if n - 1 < 20 else 2.05) * sd / math.sqrt(n) if n > 1 else math.nan
        old = [r["old"][key] for r in rows]
        new = [r["new"][key] for r in rows]
        verdict = "contains 0: unchanged within noise" if mean - half <= 0 <= mean + half else "EXCLUDES 0"
        print(f"{key}: old mean {statistics.mean(old):.2f} (sd across seeds {statistics.stdev(old):.2f}), "
              f"new mean {statistics.mean(new):.2f} (sd {statistics.stdev(new):.2f}); paired new-old {mean:+.2f}, "
              f"95 % CI [{mean - half:+.2f}, {mean + half:+.2f}] -> {verdict}")


if __name__ == "__main__":
    main()
