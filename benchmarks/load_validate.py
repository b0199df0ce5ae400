"""Benchmark: load + validate bars.

* default: the 30-symbol shared 5-min set (~490k rows). Target: < 3 s.
* ``--big``: a generated ~500 MB CSV of 1-minute bars (one long file, symbol column, rows interleaved by
  time, some sparse symbols), written to a temporary directory (``--tmp``, default /tmp) and deleted after.
  The load and every ``data validate`` figure run in a fresh process that reports its peak resident
  memory (VmHWM) and its resident memory after imports and the exchange calendar (the baseline).
  Target: peak minus baseline at most ~2x the file size.

Prints a table; record results in benchmarks/README.md with the machine and the load (``uptime``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INTRADAYJULES_SHARED_DATA", HERE.parent.parent / "shared/data/intraday_5min"))


def shared(repeats: int = 5) -> None:
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


def generate(path: Path, target_mb: int = 500, seed: int = 0) -> dict:
    """1-minute bars of 80 symbols, interleaved by time; every 8th symbol trades in 30 % of minutes."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from intradayjules.data.sessions import schedule

    rng = np.random.default_rng(seed)
    n_sym = 80
    bytes_per_row = 66
    sessions = max(1, int(target_mb * 1e6 / bytes_per_row / (n_sym * 390 * (7 / 8 + 0.3 / 8))))
    sched = schedule("XNYS", "2023-01-03", "2026-12-31").iloc[:sessions]
    syms = np.array([f"S{i:03d}" for i in range(n_sym)])
    sparse = np.arange(n_sym) % 8 == 7
    price = rng.uniform(10, 200, n_sym)
    rows = 0
    with pacsv.CSVWriter(path, pa.schema([("datetime", pa.string()), ("symbol", pa.string()), ("open", pa.float64()),
                                           ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
                                           ("volume", pa.int64())])) as w:
        for open_utc, close_utc in zip(sched["open"], sched["close"]):
            n_min = int((close_utc - open_utc) / pd.Timedelta("1min"))  # 390, or 210 on a half day
            t = (np.datetime64(open_utc.tz_convert("America/New_York").tz_localize(None).to_datetime64(), "s")
                 + np.arange(n_min).astype("timedelta64[m]"))
            tt = np.repeat(t, n_sym)
            ss = np.tile(np.arange(n_sym), n_min)
            keep = ~sparse[ss] | (rng.random(len(ss)) < 0.3)
            tt, ss = tt[keep], ss[keep]
            r = rng.normal(0, 0.001, len(ss))
            c = np.round(price[ss] * np.exp(r), 4)
            o = np.round(price[ss], 4)
            hi = np.round(np.maximum(o, c) * 1.0005, 4)
            lo = np.round(np.minimum(o, c) * 0.9995, 4)
            vol = rng.integers(100, 50_000, len(ss))
            ts = pc.strftime(pa.array(tt, pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
            w.write_table(pa.table({"datetime": ts, "symbol": pa.array(syms[ss]), "open": o, "high": hi, "low": lo,
                                    "close": c, "volume": vol}))
            rows += len(ss)
    return {"rows": rows, "sessions": len(sched), "symbols": n_sym, "bytes": path.stat().st_size}


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return -1


def measure(path: str) -> None:
    """Runs in a fresh process: load + the data validate figures; prints JSON."""
    from intradayjules.config import DataConfig
    from intradayjules.data import load_bars
    from intradayjules.data.quality import regime_shifts, split_counts, summarize, tier_changes
    from intradayjules.data.sessions import _calendar

    _calendar("XNYS")
    base = _status("VmRSS")
    cfg = DataConfig()
    t0 = time.perf_counter()
    bars = load_bars(path, cfg)
    t1 = time.perf_counter()
    after_load = _status("VmHWM")
    summarize(bars, cfg.tiers)
    tier_changes(bars, cfg.tiers)
    regime_shifts(bars, cfg.regime_window, cfg.regime_factor)
    split_counts(bars.frame["session"].unique(), cfg.splits, cfg.tiers.adv_window_days)
    t2 = time.perf_counter()
    print(json.dumps({"rows_read": bars.report.rows_read, "rows_out": len(bars.frame), "load_s": t1 - t0,
                      "figures_s": t2 - t1, "baseline": base, "peak_load": after_load, "peak": _status("VmHWM"),
                      "frame_bytes": int(bars.frame.memory_usage(deep=True).sum()),
                      "filled": bars.report.filled_stale}))


def big(tmp: str, target_mb: int) -> None:
    with tempfile.TemporaryDirectory(dir=tmp, prefix="ij_bench_") as d:
        path = Path(d) / "bars_1min.csv"
        t0 = time.perf_counter()
        info = generate(path, target_mb)
        gen_s = time.perf_counter() - t0
        env = {**os.environ}
        res = subprocess.run([sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True,
                             env=env, timeout=3600)
        if res.returncode:
            print(res.stdout, res.stderr)
            raise SystemExit(res.returncode)
        m = json.loads(res.stdout.strip().splitlines()[-1])
    mb = info["bytes"] / 1e6
    used = (m["peak"] - m["baseline"]) / 1e6
    print(f"file {mb:,.0f} MB, {info['rows']:,} rows ({info['symbols']} symbols x {info['sessions']} sessions, "
          f"1-min, interleaved by time), generated in {gen_s:.1f} s")
    print(f"load {m['load_s']:.1f} s, validate figures {m['figures_s']:.1f} s; output {m['rows_out']:,} rows "
          f"({m['filled']:,} filled), table {m['frame_bytes'] / 1e6:,.0f} MB")
    print(f"memory: baseline {m['baseline'] / 1e6:,.0f} MB, peak {m['peak'] / 1e6:,.0f} MB (after load "
          f"{m['peak_load'] / 1e6:,.0f} MB); peak - baseline {used:,.0f} MB = {used / mb:.2f}x the file (target ~2x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="generated ~500 MB 1-minute CSV, memory measured")
    ap.add_argument("--mb", type=int, default=500, help="size of the generated file (MB)")
    ap.add_argument("--tmp", default="/tmp", help="where the generated file goes (deleted after)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        measure(a.measure)
    elif a.big:
        big(a.tmp, a.mb)
    else:
        shared()
