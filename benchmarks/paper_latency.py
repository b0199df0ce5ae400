"""Benchmark: paper-trading latency from a closed bar batch to orders out, K = 6 symbols, policy included.
Target (issue 17): bar close -> order out p99 <= 1 ms (features, policy, pre-trade checks).

The real loop (``live.loop.PaperLoop`` via ``live.paper.start_paper``) on a real deployable bundle: a
small DQN (MLP [64, 64], 459-dim observation, 19 actions) trained here on the synthetic market (6
symbols, 2/2/2 tiers; the weights do not change the cost), replayed at full speed with the simulated
broker and the SQLite journal. Per traded batch (one bar per symbol), ``perf_counter_ns`` from the
batch's arrival in ``on_batch``:

* ``decide``: simulated broker fills of the previous orders, online features, market and risk state,
  the observation, the TorchScript policy, the action map and a pre-trade check per order;
* ``order out``: plus the batch's journal transaction (bars, fills, decisions, orders, policy state,
  account; WAL, synchronous=NORMAL, local disk) and ``broker.submit``: the journal protocol journals
  orders before they are sent;
* the thread's CPU time (``thread_time_ns``) of the same span: what the code costs on a core of its own.

Wall-clock times include preemption by other processes on a shared machine. Warm-up sessions are not
timed (``--warm``, features and ADV history), then ``--sessions`` are traded and timed. Record results
in benchmarks/README.md with the machine and its load (``uptime``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from intradayjules.config import ExperimentConfig, SyntheticConfig
from intradayjules.data.synthetic import generate
from intradayjules.live.paper import start_paper
from intradayjules.pipeline.prepare import prepare
from intradayjules.pipeline.train_run import train, write_outputs


def bundle(tmp: Path, days: int) -> tuple[Path, Path]:
    synth = {"n_symbols": 6, "days": days, "seed": 0}
    cfg = ExperimentConfig.model_validate({
        "name": "bench", "workdir": str(tmp / "runs"), "data": {"synthetic": synth},
        "features": {"store_dir": str(tmp / "store")}, "env": {"mode": "multi"},
        "agent": {"total_timesteps": 600, "learning_starts": 200, "buffer_size": 2000, "batch_size": 32},
        "risk": {"eval_freq": 100_000, "eval_episodes": 1}, "tracking": {"enabled": False}})
    prepared = prepare(cfg)
    result = train(prepared, tmp / "run", checkpoints=False)
    write_outputs(result, prepared)
    bars = tmp / "bars"
    generate(SyntheticConfig(**synth)).write(bars)
    return tmp / "run" / "model.bundle", bars


def pct(x: list[int]) -> str:
    a = np.asarray(x) / 1e3
    return f"{np.percentile(a, 50):8.1f}{np.percentile(a, 99):8.1f}{a.max():9.1f}"


def main(warm: int, sessions: int) -> None:
    logging.getLogger("intradayjules.risk.pretrade").disabled = True  # cuts are journaled; no log I/O here
    tmp = Path(tempfile.mkdtemp(prefix="paper_latency_"))
    t0 = time.perf_counter()
    path, bars = bundle(tmp, warm + sessions)
    days = np.sort(pd.read_parquet(bars / "bars.parquet", columns=["session"])["session"].unique())
    start = str(pd.Timestamp(days[warm]).date())
    print(f"bundle trained in {time.perf_counter() - t0:.1f} s; trading {sessions} sessions from {start}")
    run = start_paper(path, f"replay:{bars}", journal=tmp / "journal.db", start=start, keep_latency=True)
    st = run.run()
    run.close()
    print(f"paper latency per batch, K = 6, synthetic 6 symbols (2/2/2 tiers), policy MLP "
          f"{run.policy.manifest['policy']['net_arch']} on a {run.policy.dim}-dim observation; "
          f"{len(st.latency_ns)} timed batches, {st.orders} orders, {st.rejections} cut by the limits; "
          f"load {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}")
    print(f"{'stage (cumulative from batch arrival)':<52}{'p50 us':>8}{'p99 us':>8}{'max us':>9}")
    print(f"{'decide: fills, features, policy, pre-trade checks':<52}{pct(st.decide_ns)}")
    print(f"{'order out: + journal transaction + broker submit':<52}{pct(st.latency_ns)}")
    print("CPU time of this thread (no preemption):")
    print(f"{'  decide':<52}{pct(st.decide_cpu_ns)}")
    print(f"{'  order out':<52}{pct(st.cpu_ns)}")
    print("target: p99 <= 1000 us bar close -> order out (features + policy + checks)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", type=int, default=25, help="untimed warm-up sessions (ADV needs 20)")
    ap.add_argument("--sessions", type=int, default=20, help="timed sessions")
    a = ap.parse_args()
    main(a.warm, a.sessions)
