"""Benchmark: the illiquid experiment (issue 5), printed as a table.

Trains (a) ``original`` (flat 5 bps costs in training, no risk shaping) and (b) ``risk_aware`` (realistic
market model, ``balanced`` risk profile) for ``--seeds`` seeds with the same budget, evaluates every
model on the held-out test sessions under the realistic market model, and prints per arm and seed the
illiquid trade share (traded notional in illiquid names / all traded notional, fills incl. the
end-of-session flatten), the illiquid order share (the same over the notional the agent *asked* for),
net Sharpe (daily, 252), total return and trade count, then the means and the target:
mean illiquid_trade_share of (b) <= 20 % of (a)'s, and mean net Sharpe of (b) >= (a)'s.

Reference policies on the same test sessions and market model (no training): ``no_trade`` (always the
no-op) and ``random_liquid`` (a seeded random policy that trades only liquid names, 30 % of steps).

Usage::

    nice -n 10 .venv/bin/python benchmarks/illiquid_experiment.py [--config examples/configs/illiquid_experiment.yaml]
        [--seeds 3] [--timesteps 150000] [--data PATH] [--out DIR] [--no-reference]

Real data: ``--config examples/configs/illiquid_real.yaml --data ../shared/data/intraday_5min``.
Writes ``illiquid_experiment.json`` in ``--out`` (default ``runs/<name>-illiquid-experiment``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def reference_policies(prepared, cfg, seed: int = 0) -> dict[str, dict]:
    """Statistics of two untrained policies on the test split under the realistic market model."""
    from intradayjules.evaluate.evaluation import evaluate_policy

    eval_cfg = cfg.model_copy(update={"market": cfg.market.model_copy(update={"model": "realistic"})})
    panel, data = prepared.env_data.panel, prepared.env_data
    tiers = panel.tier[data.session_indices("test")[0]]
    liquid = [k for k, t in enumerate(tiers) if t == "liquid"]
    rng = np.random.default_rng(seed)

    def random_liquid(_obs, _info=None) -> int:
        if not liquid or rng.random() >= 0.3:
            return 0
        return 1 + 3 * int(liquid[rng.integers(len(liquid))]) + int(rng.integers(3))

    out = {}
    for name, policy in (("no_trade", lambda _obs, _info=None: 0), ("random_liquid", random_liquid)):
        stats, _ = evaluate_policy(policy, prepared.env_data, eval_cfg, "test")
        out[name] = stats
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "examples/configs/illiquid_experiment.yaml"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--timesteps", type=int, default=None, help="override agent.total_timesteps")
    ap.add_argument("--data", default=None, help="bars folder/file instead of the config's data")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-reference", action="store_true", help="skip the untrained reference policies")
    args = ap.parse_args(argv)

    from intradayjules.pipeline import illiquid as exp
    from intradayjules.config import load_config

    cfg = load_config(args.config)
    t0 = time.perf_counter()
    print(f"illiquid experiment: {args.config}, {args.seeds} seed(s), "
          f"{args.timesteps or cfg.agent.total_timesteps} timesteps per run", flush=True)
    head = f"{'arm':<11}{'seed':>5}{'illiq.share':>12}{'illiq.orders':>13}{'net Sharpe':>11}{'return':>9}{'trades':>8}{'steps':>8}"
    print(head, flush=True)

    def row(r) -> None:
        print(f"{r.arm:<11}{r.seed:>5}{_fmt(r.illiquid_trade_share):>12}{_fmt(r.illiquid_order_share):>13}"
              f"{_fmt(r.sharpe, '.2f'):>11}{_fmt(r.total_return, '.4f'):>9}{r.n_trades:>8}{r.timesteps:>8}", flush=True)

    summary = exp.run(cfg, args.seeds, args.out, args.data, args.timesteps, progress=row)
    print("\nmeans over seeds (test sessions, realistic market model)")
    print(f"{'arm':<11}{'':>5}{'illiq.share':>12}{'illiq.orders':>13}{'net Sharpe':>11}{'return':>9}{'trades':>8}")
    for arm, m in summary["means"].items():
        print(f"{arm:<11}{'':>5}{_fmt(m['illiquid_trade_share']):>12}{_fmt(m['illiquid_order_share']):>13}"
              f"{_fmt(m['sharpe'], '.2f'):>11}{_fmt(m['total_return'], '.4f'):>9}{_fmt(m['n_trades'], '.0f'):>8}")
    t = summary["target"]
    print(f"\ntarget: risk_aware illiquid share / original = {_fmt(t['illiquid_share_ratio'])} (<= 0.20: "
          f"{t['illiquid_share_at_most_20pct_of_original']}); Sharpe no worse: {t['sharpe_no_worse']}; "
          f"met: {t['met']}")
    if not args.no_reference:
        from intradayjules.pipeline.prepare import prepare

        prepared = prepare(cfg, args.data)  # features come from the store: cheap the second time
        print("\nreference policies (untrained, same test sessions and market model)")
        for name, s in reference_policies(prepared, cfg).items():
            print(f"{name:<14} illiq.share {_fmt(s['illiquid_trade_share'])}  net Sharpe {_fmt(s['sharpe'], '.2f')}  "
                  f"return {_fmt(s['total_return'], '.4f')}  trades {s['n_trades']}")
    print(f"\nwall {time.perf_counter() - t0:.0f} s; written: {summary['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
