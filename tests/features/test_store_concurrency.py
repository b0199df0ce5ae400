"""Four real processes hammer one store at once: no errors, no corruption, each key built once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from intradayjules.config import SyntheticConfig
from intradayjules.data.synthetic import generate
from intradayjules.features.pipeline import compute_features
from intradayjules.features.store import FeatureStore

from .hammer_worker import CONFIGS, frame_digest

WORKER = Path(__file__).with_name("hammer_worker.py")
N, ROUNDS = 4, 3


@pytest.mark.slow  # ~9 s: four fresh interpreters importing pandas, numba and pyarrow
def test_four_processes_share_one_store(tmp_path):
    bars = generate(SyntheticConfig(n_symbols=6, days=20, seed=11)).bars.frame
    bars_path = tmp_path / "bars.parquet"
    bars.to_parquet(bars_path)
    root = tmp_path / "store"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(root), str(bars_path), str(tmp_path / f"out{i}.json"),
                               str(i), str(N), str(ROUNDS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for i in range(N)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-3000:]
        assert b"Traceback" not in err, err.decode()[-3000:]
    results = [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(N)]
    seen = [s for r in results for s in r["seen"]]
    assert len(seen) == N * ROUNDS * len(CONFIGS) * 2

    expected = {FeatureStore.key_for("f" * 32, cfg): frame_digest(compute_features(bars, cfg)) for cfg in CONFIGS}
    # each key computed exactly once across all processes
    misses = Counter(s["key"] for s in seen if not s["hit"])
    assert misses == Counter({k: 1 for k in expected})
    assert sum(r["loads"] for r in results) == len(expected)
    # every frame any process got, by build or by read, is the correct one
    for s in seen:
        assert s["digest"] == expected[s["key"]], s
    store = FeatureStore(root)
    assert sorted(store.keys()) == sorted(expected)
    for k in expected:
        assert store.info(k)["status"] == "ok"
    # nothing half-written left behind
    assert not [p for p in (root / "entries").rglob("*.tmp")]
