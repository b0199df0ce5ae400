"""Benchmark: evaluation statistics on one year of daily P&L. Target: a 10,000-resample bootstrap of 250 days
"well under a second" (issue 13).

Times (median of 5, wall and CPU): the paired comparison (stationary bootstrap of the mean difference,
automatic block length, 10,000 resamples), the Sharpe estimate (10,000 resamples, Lo SEs), the DSR of 16
trials, the PBO by CSCV of 250 sessions x 16 trials (S = 16: 12,870 splits), and the tear-sheet charts.
Prints a table; record results in benchmarks/README.md with the machine and the load (``uptime``).
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pandas as pd

from intradayjules.evaluate import tearsheet
from intradayjules.evaluate.stats import deflated_sharpe_from_trials, paired_comparison, pbo_cscv, sharpe_estimate


def timed(fn, repeat: int = 5) -> tuple[float, float]:
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2024-01-02", periods=250)
    model = pd.Series(rng.normal(1.0, 20.0, 250), index=dates)
    flat = pd.Series(0.0, index=dates)
    trials = rng.normal(0.0, 20.0, (250, 16))
    pnl = {"model": model, "flat": flat, "buy_hold": pd.Series(rng.normal(2.0, 80.0, 250), index=dates)}
    cases = {
        "paired_comparison (10k resamples, 250 days)": lambda: paired_comparison(model, flat),
        "sharpe_estimate (10k resamples, 250 days)": lambda: sharpe_estimate(model),
        "deflated_sharpe_from_trials (250 x 16)": lambda: deflated_sharpe_from_trials(trials),
        "pbo_cscv (250 x 16, S=16, 12,870 splits)": lambda: pbo_cscv(trials),
        "equity + drawdown + distribution charts": lambda: (tearsheet.equity_chart(pnl), tearsheet.drawdown_chart(pnl),
                                                            tearsheet.pnl_distribution_chart(pnl)),
    }
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"{'case':48s} {'wall (s)':>9s} {'cpu (s)':>9s}")
    for name, fn in cases.items():
        wall, cpu = timed(fn)
        print(f"{name:48s} {wall:9.3f} {cpu:9.3f}")


if __name__ == "__main__":
    main()
