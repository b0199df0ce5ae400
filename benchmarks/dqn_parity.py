"""Learning check (issue 16): the fast collection path learns what the previous one learned.

For each seed (``--seeds``, default 0 1 2): DQN on the quickstart preset (its 40k steps, learning settings
and balanced risk shaping, no callbacks: no early stop, the final policy), trained twice with the same
``agent.seed``:

* ``old``: ``learn(collector="gym")`` with one env and the model built as before (SB3's default Adam and
  ``ReplayBuffer``; ``dqn_throughput.previous_model``);
* ``new``: ``learn(collector="vec")`` with the preset's ``env.n_envs`` slots, fused Adam, sample views.

Each final greedy policy is rolled over the test sessions (``env.rollout.run_sessions``, realistic costs,
each session from the initial cash). Test: per session, the difference new - old of the daily net P&L
(bps) averaged over the seeds, then ``evaluate.paired.paired_comparison`` (stationary-bootstrap 95 %
interval of the mean difference, 10,000 resamples; paired t-test alongside). "Unchanged within noise"
means the interval contains 0. Also printed: each seed's mean daily bps for both arms, steps/s of each run.

Run: ``.venv/bin/python benchmarks/dqn_parity.py [--seeds 0 1 2] [--steps 40000]``. Note the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dqn_throughput import previous_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()

    from intradayjules.agents.sb3 import learn
    from intradayjules.config import apply_overrides, load_config, preset_path
    from intradayjules.env import make_env
    from intradayjules.env.rollout import run_sessions
    from intradayjules.evaluate.paired import paired_comparison
    from intradayjules.pipeline.prepare import prepare

    tmp = Path(tempfile.mkdtemp(prefix="ij-dqn-parity-"))
    base = apply_overrides(load_config(preset_path("quickstart")),
                           {"workdir": str(tmp / "runs"), "features.store_dir": str(tmp / "store"),
                            "tracking.enabled": False, "agent.device": "cpu"})
    steps = args.steps or base.agent.total_timesteps
    prepared = prepare(base)
    test_env = make_env(base, None, split="test", data=prepared.env_data)
    print(f"load before: {os.getloadavg()[0]:.2f}; {steps} steps per run; new arm env.n_envs={base.env.n_envs}; "
          f"{len(test_env.session_dates())} test sessions")
    daily: dict[str, list[pd.Series]] = {"old": [], "new": []}
    for seed in args.seeds:
        for arm in ("old", "new"):
            cfg = apply_overrides(base, {"agent.seed": seed, **({"env.n_envs": 1} if arm == "old" else {})})
            t0 = time.perf_counter()
            with previous_model(arm == "old"):
                model = learn(cfg, prepared.env_data, total_timesteps=steps,
                              collector="gym" if arm == "old" else "vec")
            wall = time.perf_counter() - t0
            res = run_sessions(lambda obs, info, m=model: int(m.predict(obs, deterministic=True)[0]), test_env)
            s = pd.Series(1e4 * np.asarray(res.daily_returns()), index=res.sessions, name=f"{arm}{seed}")
            daily[arm].append(s)
            print(f"seed {seed} {arm}: mean {s.mean():+.2f} bps/day over {len(s)} sessions; "
                  f"{model.num_timesteps / wall:.0f} steps/s; updates {model._n_updates}; "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    old = pd.concat(daily["old"], axis=1).mean(axis=1)
    new = pd.concat(daily["new"], axis=1).mean(axis=1)
    cmp = paired_comparison(new, old, name_a="new", name_b="old", n_resamples=10_000)
    print(f"\nper-session mean over {len(args.seeds)} seeds: old {old.mean():+.2f}, new {new.mean():+.2f} bps/day")
    print(f"paired new - old: mean {cmp.mean_diff:+.2f} bps/day, 95 % CI [{cmp.ci_low:+.2f}, {cmp.ci_high:+.2f}], "
          f"bootstrap p {cmp.p_value:.3f}, t-test p {cmp.p_value_t:.3f}, n {cmp.n}")
    print("CI contains 0: learning unchanged within noise" if cmp.ci_low <= 0 <= cmp.ci_high
          else "CI excludes 0: the paths learn differently")


if __name__ == "__main__":
    main()
