"""Benchmark: load + validate the 30-symbol shared 5-min set (~490k rows). Target: < 3 s.

Prints a table; record results in benchmarks/README.md with the machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INTRADAYJULES_SHARED_DATA", HERE.parent.parent / "shared/data/intraday_5min"))


def main(repeats: int = 5) -> None:
    from intradayjules.data import load_bars

    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        return
    load_bars(DATA)  # warm the calendar and file cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bars = load_bars(DATA)
        times.append(time.perf_counter() - t0)
    rows = bars.report.rows_read
    print(f"{'benchmark':<28}{'rows':>10}{'median s':>10}{'min s':>8}{'target':>9}")
    print(f"{'load+validate 30 symbols':<28}{rows:>10,}{statistics.median(times):>10.2f}{min(times):>8.2f}{'< 3 s':>9}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
