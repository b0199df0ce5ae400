"""One worker process for test_store_concurrency: hammers a shared FeatureStore.

Usage: python hammer_worker.py STORE_ROOT BARS_PARQUET OUT_JSON WORKER_ID N_WORKERS ROUNDS
Waits until every worker is ready (files in STORE_ROOT/../ready), then for each round asks for every
key in a worker-specific order, interleaving get() reads, and writes what it saw to OUT_JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from intradayjules.config import FeaturesConfig
from intradayjules.features.store import FeatureStore

CONFIGS = [FeaturesConfig(adv_days=3, vol_window=w) for w in (6, 7, 8)]


def frame_digest(df: pd.DataFrame) -> str:
    return str(int(pd.util.hash_pandas_object(df, index=False).sum()))


def main(root: str, bars_path: str, out: str, wid: int, n_workers: int, rounds: int) -> None:
    ready = Path(root).parent / "ready"
    ready.mkdir(exist_ok=True)
    (ready / str(wid)).touch()
    t0 = time.time()
    while len(list(ready.iterdir())) < n_workers:
        if time.time() - t0 > 120:
            raise SystemExit("other workers never became ready")
        time.sleep(0.005)
    store = FeatureStore(root)
    loaded = []

    def load():
        loaded.append(1)
        return pd.read_parquet(bars_path)

    seen = []
    for r in range(rounds):
        for j in range(len(CONFIGS)):
            cfg = CONFIGS[(j + wid // 2 + r) % len(CONFIGS)]
            frame, key, hit = store.get_or_build(load, "f" * 32, cfg)
            seen.append({"round": r, "key": key, "hit": hit, "digest": frame_digest(frame)})
            again = store.get(key)
            seen.append({"round": r, "key": key, "hit": True, "digest": frame_digest(again), "via": "get"})
    Path(out).write_text(json.dumps({"worker": wid, "seen": seen, "loads": len(loaded)}))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
