"""Benchmark: the feature pipeline is linear in bars and allocates little beyond its output (issue 16).

Targets: 16x the bars -> <= 17x the time of ``compute_features``; peak memory <= 1.5x the pandas
equivalent, here defined as: the peak resident memory ``compute_features`` adds on top of its input
(``VmHWM`` after resetting it, minus the resident size before the call) divided by the size of the
feature table it returns (``DataFrame.memory_usage(deep=True)``: the table a pandas pipeline ends with).

Input: the first ``--symbols`` symbols of the shared 5-min set (else a synthetic market), and the same
bars repeated ``--scale`` times under renamed symbols (exactly ``scale`` x the rows, same content).
Each size runs in its own fresh process (numba kernels loaded on a small slice first, not timed):
time = the fastest of ``--repeats`` calls, by wall clock and by CPU time (the least disturbed by other
jobs on a shared machine); memory = one call after resetting the peak
(``/proc/self/clear_refs``). Run it with ``PYTHONPATH=<other checkout>/src`` to measure another version.

Usage: ``.venv/bin/python benchmarks/features_scaling.py [--symbols 8] [--scale 16] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INTRADAYJULES_SHARED_DATA", HERE.parent.parent / "shared/data/intraday_5min"))


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(n_symbols: int, scale: int, repeats: int) -> dict:
    import gc
    import time

    import pandas as pd

    from intradayjules.config import FeaturesConfig
    from intradayjules.features.pipeline import compute_features

    if DATA.is_dir():
        from intradayjules.data import load_bars

        frame = load_bars(DATA).frame
    else:
        from intradayjules.config import SyntheticConfig
        from intradayjules.data.synthetic import generate

        frame = generate(SyntheticConfig(n_symbols=max(n_symbols, 6), days=250, seed=0)).bars.frame
    syms = list(pd.unique(frame["symbol"]))[:n_symbols]
    base = frame[frame["symbol"].isin(syms)].reset_index(drop=True)
    parts = []
    for k in range(scale):
        p = base.copy()
        p["symbol"] = p["symbol"].astype(str) + (f"_{k}" if k else "")
        parts.append(p)
    f = pd.concat(parts, ignore_index=True) if scale > 1 else base
    del frame, base, parts
    cfg = FeaturesConfig()
    compute_features(f.iloc[:5000].reset_index(drop=True), cfg)  # load the numba kernels
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak resident size (VmHWM)
        fh.write("5")
    rss0 = _status("VmRSS")
    out = compute_features(f, cfg)
    peak = _status("VmHWM") - rss0
    out_bytes = int(out.memory_usage(index=False, deep=True).sum())
    del out
    gc.collect()
    times, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        compute_features(f, cfg)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"rows": len(f), "time_s": min(times), "cpu_s": min(cpus), "peak_bytes": peak, "out_bytes": out_bytes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=8)
    ap.add_argument("--scale", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    load0 = os.getloadavg()[0]
    res = {}
    for scale in (1, args.scale):
        out = subprocess.run([sys.executable, __file__, "--child", str(args.symbols), str(scale), str(args.repeats)],
                             check=True, capture_output=True, text=True)
        res[scale] = json.loads(out.stdout.strip().splitlines()[-1])
    import intradayjules

    print(f"compute_features of {intradayjules.__file__}; {args.symbols} symbols of "
          f"{DATA.name if DATA.is_dir() else 'a synthetic market'}; load average {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'bars':>12}{'wall s':>9}{'CPU s':>8}{'peak added MB':>15}{'table MB':>10}{'peak / table':>14}")
    for scale, r in res.items():
        print(f"{r['rows']:>12,}{r['time_s']:>9.3f}{r['cpu_s']:>8.3f}{r['peak_bytes'] / 1e6:>15.1f}"
              f"{r['out_bytes'] / 1e6:>10.1f}{r['peak_bytes'] / r['out_bytes']:>13.2f}x")
    a, b = res[1], res[args.scale]
    print(f"targets: {b['rows'] / a['rows']:.0f}x bars -> {b['time_s'] / a['time_s']:.1f}x wall time, "
          f"{b['cpu_s'] / a['cpu_s']:.1f}x CPU time (<= 17x for 16x); peak / table "
          f"{b['peak_bytes'] / b['out_bytes']:.2f}x at the larger size (<= 1.5x; at the small size the "
          "allocator reuses freed memory and the figure means little)")


if __name__ == "__main__":
    main()
