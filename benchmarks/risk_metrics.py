"""Benchmark: RiskTracker.update per env step. Target: <= 10 µs (the original claimed 207 µs).

A plain Python loop over pre-built, realistic step-info dicts (docs/dev/contracts.md: 6 symbols, numpy
float64 values as an env produces them, ~30 % of steps with fills, some stale decisions). Also times
RiskLimits.update and the tracker + composite snapshot (done once per evaluation, not per step).
Prints a table; record results in benchmarks/README.md with the machine.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np


def make_infos(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    tiers = ("liquid", "liquid", "mid", "mid", "illiquid", "illiquid")
    syms = ("LQ0", "LQ1", "MD0", "MD1", "IL0", "IL1")
    equity = 1e6 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    infos = []
    for i in range(n):
        traded = rng.random() < 0.3
        by_sym = {s: (float(rng.uniform(1e4, 2.5e5)) if traded and rng.random() < 0.5 else 0.0) for s in syms}
        by_tier = {"liquid": 0.0, "mid": 0.0, "illiquid": 0.0}
        for s, t in zip(syms, tiers):
            by_tier[t] += by_sym[s]
        notional = sum(by_sym.values())
        costs = {"spread": np.float64(notional * 2e-4), "impact": np.float64(notional * 1e-4),
                 "commission": np.float64(notional * 5e-5)}
        infos.append({
            "equity": np.float64(equity[i]), "cash": np.float64(equity[i] * 0.5), "positions": np.zeros(6),
            "exposure": np.float64(0.5), "drawdown": np.float64(0.0), "step_pnl": np.float64(0.0),
            "traded_notional": np.float64(notional), "traded_notional_by_symbol": by_sym,
            "traded_notional_by_tier": by_tier, "costs": costs,
            "costs_by_tier": {k: v * 3.5e-4 for k, v in by_tier.items()},
            "participation": np.float64(rng.uniform(0, 0.1) if notional else 0.0),
            "adv_participation": np.float64(notional / 5e7), "unfilled_notional": np.float64(0.0),
            "stale_decision": bool(rng.random() < 0.05), "stale_share": np.float64(0.0),
            "secs_since_trade": np.float64(rng.choice([0.0, 300.0, 900.0])),
            "n_fills": int(sum(v > 0 for v in by_sym.values())), "session": "2025-01-02", "tiers": tiers,
        })
    return infos


def time_loop(fn, infos, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for info in infos:
            fn(info)
        out.append((time.perf_counter() - t0) / len(infos) * 1e6)
    return out


def main(n: int = 100_000, repeats: int = 7) -> None:
    from intradayjules.config import RiskConfig
    from intradayjules.risk.composite import RiskComposite
    from intradayjules.risk.limits import RiskLimits
    from intradayjules.risk.metrics import RiskTracker

    infos = make_infos(n)
    tracker = RiskTracker(78)
    tracker.start_episode(1e6)
    limits = RiskLimits()
    limits.start_day(1e6)
    comp = RiskComposite(RiskConfig())

    def empty(info):
        return None

    base = time_loop(empty, infos, repeats)
    upd = time_loop(tracker.update, infos, repeats)
    lim = time_loop(limits.update, infos, repeats)
    # reward-shaping wrapper: its step minus the bare env's step (an env that replays the infos)
    import gymnasium as gym

    from intradayjules.risk.shaping import RiskShapingWrapper

    class Replay(gym.Env):
        action_space = gym.spaces.Discrete(3)
        observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

        def __init__(self) -> None:
            self.i = 0
            self.obs = np.zeros(1, dtype=np.float32)

        def reset(self, *, seed=None, options=None):
            return self.obs, {"equity": 1e6}

        def step(self, action):
            info = infos[self.i]
            self.i = (self.i + 1) % n
            return self.obs, 0.0, False, False, info

    bare = Replay()
    wrapped = RiskShapingWrapper(Replay(), RiskConfig(), initial_cash=1e6)
    wrapped.reset()
    bare_us = time_loop(lambda _: bare.step(1), infos, repeats)
    wrap_us = time_loop(lambda _: wrapped.step(1), infos, repeats)
    shaping = [w - b for w, b in zip(wrap_us, bare_us)]

    t0 = time.perf_counter()
    for _ in range(10_000):
        comp.score(tracker.snapshot())
    snap_us = (time.perf_counter() - t0) / 10_000 * 1e6

    print(f"{'benchmark':<40}{'median us':>10}{'min us':>9}{'target':>10}")
    print(f"{'loop overhead (empty function)':<40}{statistics.median(base):>10.3f}{min(base):>9.3f}{'':>10}")
    print(f"{'RiskTracker.update per step':<40}{statistics.median(upd):>10.3f}{min(upd):>9.3f}{'<= 10':>10}")
    print(f"{'RiskLimits.update per step':<40}{statistics.median(lim):>10.3f}{min(lim):>9.3f}{'':>10}")
    print(f"{'RiskShapingWrapper.step overhead':<40}{statistics.median(shaping):>10.3f}{min(shaping):>9.3f}{'':>10}")
    print(f"{'snapshot + composite (per evaluation)':<40}{snap_us:>10.3f}{'':>9}{'':>10}")
    print(f"({n:,} steps x {repeats} repeats, Python {sys.version.split()[0]})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
