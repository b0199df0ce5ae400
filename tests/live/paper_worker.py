"""The real paper loop as a process, for the kill test (test_paper_kill.py).

Usage: python paper_worker.py BUNDLE BARS_DIR JOURNAL SPEED DAILY_DRAWDOWN
Prints ``ready N`` (N = steps already journaled) once it has resumed from the journal, then replays the
bars to the end (``SPEED`` paces the traded sessions, as ``intradayjules paper --speed``) and exits 0.
``DAILY_DRAWDOWN`` overrides the bundle's kill-switch limit so the kill switch goes off in the run.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

from intradayjules.live.paper import start_paper
from intradayjules.live.policy import DeployedPolicy
from intradayjules.live.reconcile import limits_of


def main(bundle: str, bars: str, journal: str, speed: float, dd: float) -> None:
    logging.getLogger("intradayjules.risk.pretrade").setLevel(logging.ERROR)  # cuts are journaled
    limits = dataclasses.replace(limits_of(DeployedPolicy.load(bundle)), daily_drawdown=dd)
    run = start_paper(bundle, f"replay:{bars}", journal=journal, run="kill-test", speed=speed, limits=limits)
    print(f"ready {run.resumed_steps}", flush=True)
    run.run()
    run.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
