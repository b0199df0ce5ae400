"""Benchmark: start-up costs paid by every fresh process (issue 16).

Targets: a warm feature-store hit in a fresh process <= 1.2x the bare Parquet decode of the same entry;
``intradayjules --help`` under 1 s.

Each line is a whole fresh interpreter (``python -c ...``), timed from spawn to exit, so Python start-up
and every import count: wall clock and CPU time (user + sys of the child, the robust figure when other
jobs share the cores). Median of ``--repeats`` rounds, the variants interleaved.

* ``bare decode``: ``pyarrow.parquet.read_table(entry).to_pandas()`` and nothing else.
* ``hit by key``: ``FeatureStore(root).get(key)`` (what a worker handed the store entry does): manifest
  record, size check, CRC-32 (in a thread beside the decode), decode.
* ``hit by spec``: ``get_or_build(loader, fingerprint, FeaturesConfig())``: also imports the pydantic
  config schema (what ``experiment.prepare`` pays on a hit; the bars are never loaded).
* ``intradayjules --help``.

Data: the 30-symbol shared 5-min set when present (``INTRADAYJULES_SHARED_DATA``), else a synthetic
market of 30 symbols x 250 days. Usage: ``.venv/bin/python benchmarks/startup.py [--repeats 9]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INTRADAYJULES_SHARED_DATA", HERE.parent.parent / "shared/data/intraday_5min"))


def run(code: str) -> tuple[float, float]:
    """(wall s, CPU s) of a fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def build_entry(root: Path) -> tuple[str, str, int]:
    from intradayjules.config import DataConfig, FeaturesConfig, SyntheticConfig
    from intradayjules.data.fingerprint import data_fingerprint
    from intradayjules.features.store import FeatureStore

    if DATA.is_dir():
        from intradayjules.data import load_bars

        fp = data_fingerprint(source=DATA, data_cfg=DataConfig())
        frame, key, _ = FeatureStore(root).get_or_build(lambda: load_bars(DATA), fp, FeaturesConfig())
        label = f"shared 5-min set ({DATA.name})"
    else:
        from intradayjules.data.synthetic import generate

        syn = SyntheticConfig(n_symbols=30, days=250, seed=0)
        fp = data_fingerprint(source=syn)
        frame, key, _ = FeatureStore(root).get_or_build(lambda: generate(syn).bars, fp, FeaturesConfig())
        label = "synthetic 30 symbols x 250 days"
    return key, fp, len(frame), label


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ij-bench-startup-"))
    os.environ["INTRADAYJULES_CACHE"] = str(work / "cache")
    try:
        root = work / "store"
        key, fp, rows, label = build_entry(root)
        path = root / "entries" / key / "data.parquet"
        variants = {
            "bare decode (pyarrow -> pandas)":
                f"import pyarrow.parquet as pq; f = pq.read_table({str(path)!r}).to_pandas()",
            "hit by key: FeatureStore.get(key)":
                f"from intradayjules.features.store import FeatureStore; "
                f"f = FeatureStore({str(root)!r}, memory_cache_mb=0).get({key!r})",
            "hit by spec: get_or_build(...)":
                f"from intradayjules.config import FeaturesConfig; "
                f"from intradayjules.features.store import FeatureStore; "
                f"f, k, hit = FeatureStore({str(root)!r}, memory_cache_mb=0).get_or_build("
                f"lambda: 1 / 0, {fp!r}, FeaturesConfig()); assert hit",
            "intradayjules --help":
                "import sys; sys.argv = ['intradayjules', '--help']\n"
                "from intradayjules.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass",
            "python -c pass": "pass",
        }
        load0 = os.getloadavg()[0]
        for code in variants.values():  # warm the page cache and __pycache__
            run(code)
        times = {k: [] for k in variants}
        for _ in range(args.repeats):
            for k, code in variants.items():
                times[k].append(run(code))
        load1 = os.getloadavg()[0]
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
        base = med["bare decode (pyarrow -> pandas)"]
        print(f"entry: {label}, {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB; {args.repeats} interleaved "
              f"fresh processes each; load average {load0:.2f} -> {load1:.2f} on {os.cpu_count()} CPUs")
        print(f"{'fresh process':<36}{'wall s':>8}{'CPU s':>8}{'vs bare (wall)':>16}{'vs bare (CPU)':>15}")
        for k, (w, c) in med.items():
            print(f"{k:<36}{w:>8.3f}{c:>8.3f}{w / base[0]:>15.2f}x{c / base[1]:>14.2f}x")
        hk = med["hit by key: FeatureStore.get(key)"]
        hs = med["hit by spec: get_or_build(...)"]
        hp = med["intradayjules --help"]
        print(f"targets: hit <= 1.2x bare decode: by key {hk[0] / base[0]:.2f}x wall / {hk[1] / base[1]:.2f}x CPU, "
              f"by spec {hs[0] / base[0]:.2f}x / {hs[1] / base[1]:.2f}x; --help < 1 s: {hp[0]:.2f} s wall, "
              f"{hp[1]:.2f} s CPU")
        print(json.dumps({k: {"wall_s": round(w, 4), "cpu_s": round(c, 4)} for k, (w, c) in med.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
