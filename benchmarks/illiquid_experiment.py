"""Benchmark: the illiquid ablation (issues 5 and 14), printed as tables.

A 2 x 2 x 2 factorial (``pipeline/illiquid.py``): training cost model (flat / realistic) x reward shaping
with the illiquid multiplier (off / on) x early stopping (off / on), ``--seeds`` seeds per cell, the same
budget, every model evaluated on the held-out test sessions under the realistic market model. Prints per
cell the illiquid trade share (filled notional), the illiquid order share (what the agent asked for), mean
daily net P&L (bps of initial cash) and fills, mean +- sd over seeds; then each factor's main effect
(on minus off) with its two-level (sessions x seeds) bootstrap 95 % interval.

Reference policies on the same test sessions and market model (no training): ``no_trade`` (always the
no-op) and ``random_liquid`` (a seeded random policy that trades only liquid names, 30 % of steps).

Usage::

    nice -n 10 .venv/bin/python benchmarks/illiquid_experiment.py [--config examples/configs/illiquid_experiment.yaml]
        [--seeds 3] [--timesteps 30000] [--data PATH] [--out DIR] [--no-reference]

Real data: ``--config examples/configs/illiquid_real.yaml --data ../shared/data/intraday_5min``.
Writes ``illiquid_ablation.json`` in ``--out`` (default ``runs/<name>-illiquid-ablation``).
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
    ap.add_argument("--seeds", type=int, default=None, help="seeds per cell (default agent.n_seeds)")
    ap.add_argument("--timesteps", type=int, default=None, help="override agent.total_timesteps")
    ap.add_argument("--data", default=None, help="bars folder/file instead of the config's data")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-reference", action="store_true", help="skip the untrained reference policies")
    args = ap.parse_args(argv)

    from intradayjules.pipeline import illiquid as exp
    from intradayjules.config import load_config

    cfg = load_config(args.config)
    t0 = time.perf_counter()
    print(f"illiquid ablation: {args.config}, {args.seeds or cfg.agent.n_seeds} seed(s) per cell, "
          f"{args.timesteps or cfg.agent.total_timesteps} timesteps per run", flush=True)

    def row(r) -> None:
        s = r.summary()
        print(f"{r.arm:<22}{r.seed:>5}{_fmt(s['illiquid_trade_share']):>12}{_fmt(s['illiquid_order_share']):>13}"
              f"{_fmt(s['mean_daily_pnl_bps'], '+.2f'):>11}{s['trades']:>8.0f}{r.timesteps:>8}"
              f"{' stopped' if r.stopped_early else ''}{' (reused)' if s['reused_from'] else ''}", flush=True)

    print(f"{'cell':<22}{'seed':>5}{'illiq.share':>12}{'illiq.orders':>13}{'bps/day':>11}{'fills':>8}{'steps':>8}")
    summary = exp.run(cfg, args.seeds, args.out, args.data, args.timesteps, progress=row)
    print("\nper cell, mean +- sd over seeds (test sessions, realistic market model)")
    for cell, m in summary["cells"].items():
        print(f"{cell:<22} " + "  ".join(f"{k} {m[k]['mean']:.3f} +- {m[k]['sd']:.3f}" for k in
                                         ("illiquid_trade_share", "illiquid_order_share", "mean_daily_pnl_bps",
                                          "trades")) + f"  stopped {m['stopped_early']}/{m['n_runs']}")
    print("\nmain effects (on minus off, 95 % two-level bootstrap CI)")
    for factor, e in summary.get("main_effects", {}).items():
        print(f"{factor:<11} " + "  ".join(f"{k} {c['mean_diff_bps']:+.3g} [{c['ci_low']:+.3g}, {c['ci_high']:+.3g}]"
                                           for k, c in e.items()))
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
