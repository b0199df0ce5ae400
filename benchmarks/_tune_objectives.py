"""Objectives for benchmarks/tune_speedup.py: a no-op (overhead) and a CPU-bound synthetic one."""

from __future__ import annotations

import math


def noop(params, cfg, reporter) -> float:
    reporter.report(1, 0.0)
    return 0.0


def cpu_quadratic(params, cfg, reporter) -> float:
    """~0.1 s of pure-Python CPU work per report; optimum at lr=1e-4, gamma=0.97."""
    target = -((math.log10(params["agent.learning_rate"]) + 4.0) ** 2) - 100.0 * (params["agent.gamma"] - 0.97) ** 2
    value = target
    for k in range(1, cfg.tune.reports_per_trial + 1):
        acc = 0.0
        for i in range(400_000):
            acc += i * 1e-12
        value = target - 2.0 * math.exp(-k / 5.0) + acc * 0.0
        reporter.report(k, value)
    return value
