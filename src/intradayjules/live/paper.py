"""One paper run from a bundle and a feed spec: what ``intradayjules paper`` does, as a function.

``start_paper(bundle, "replay:PATH", journal=..., start=...)`` loads the bundle (``DeployedPolicy``), the
replayed bars (with the bundle's data settings; a ``data synth`` folder brings its universe table),
opens or resumes the journal (one run per journal, pinned to the bundle's manifest sha256), and builds
the ``PaperLoop`` with a ``SimulatedBroker`` that starts from ``env.initial_cash``. ``run()`` replays the
feed from after the journal's last bar; every bar before ``start`` (default: the bundle's first test
session) only warms up the features and the market state. ``reconciliation()`` compares the journal
with the backtest of the same bundle on the same bars (``live/reconcile.py``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..data.loaders import bar_source, load_bars
from ..errors import IntradayJulesError
from ..risk.pretrade import PreTradeLimits
from .broker import SimulatedBroker
from .feed import ReplayFeed, open_feed
from .journal import Journal
from .loop import PaperLoop, Stats
from .policy import DeployedPolicy
from .reconcile import Reconciliation, limits_of, reconcile


class PaperError(IntradayJulesError):
    """A paper run cannot start (names the argument and the rule)."""


def replay_path(spec: str) -> Path | None:
    scheme, sep, rest = spec.partition(":")
    return Path(rest) if scheme == "replay" and sep and rest else None


def default_start(policy: DeployedPolicy) -> str | None:
    """The bundle's first held-out (test) session, ``YYYY-MM-DD``, if it records one."""
    test = policy.deployment.get("splits", {}).get("test") or []
    return test[0] if test else None


@dataclass
class PaperRun:
    policy: DeployedPolicy
    loop: PaperLoop
    journal: Journal
    journal_path: Path
    frame: pd.DataFrame | None
    universe: pd.DataFrame | None
    feed_spec: str
    speed: float
    start: str | None
    bundle: Path
    resumed_steps: int = 0

    def run(self) -> Stats:
        loop = self.loop

        def pace(seconds: float) -> None:  # warm-up bars go through at once; trading is paced
            if loop.trading:
                time.sleep(seconds)

        feed = (ReplayFeed(self.frame, speed=self.speed, start_after=self.loop.last_ts,
                           bar=pd.Timedelta(seconds=float(self.policy.deployment["bar_seconds"])),
                           symbols=self.policy.symbols, sleep=pace) if self.frame is not None
                else open_feed(self.feed_spec, speed=self.speed))
        return self.loop.run(feed)

    def reconciliation(self) -> Reconciliation:
        if self.frame is None:
            raise PaperError("reconciliation needs a replay feed (replay:PATH): a live feed has no backtest")
        return reconcile(self.journal_path, DeployedPolicy.load(self.bundle), self.frame, self.universe,
                         self.loop.limits)

    def close(self) -> None:
        self.journal.close()


def start_paper(bundle: str | Path, feed_spec: str, *, journal: str | Path, run: str | None = None,
                speed: float = 0.0, start: str | None = None, record: bool = False,
                keep_latency: bool = False, limits: PreTradeLimits | None = None) -> PaperRun:
    """Build (or resume) a paper run (module docstring). ``limits``: instead of the bundle's (tests)."""
    bundle = Path(bundle)
    policy = DeployedPolicy.load(bundle)
    digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    run = run or f"paper-{digest[:12]}"
    cfg = policy.cfg
    frame = universe = None
    path = replay_path(feed_spec)
    if path is not None:
        if not path.exists():
            raise PaperError(f"--feed {feed_spec}: {path} does not exist")
        bars_path, universe_path = bar_source(path)
        frame = load_bars(bars_path, cfg.data).frame
        missing = [s for s in policy.symbols if s not in set(frame["symbol"].unique())]
        if missing:
            raise PaperError(f"--feed {feed_spec}: the bars lack the bundle's symbols {missing}")
        if universe_path is not None:
            universe = pd.read_parquet(universe_path)
    start = start or default_start(policy)
    trade_from = int(pd.Timestamp(start).normalize().value) if start else None
    j = Journal(journal, run=run)
    j.set_meta("bundle_manifest_sha256", digest)
    broker = SimulatedBroker(cfg.market, cfg.data.tiers, universe=universe, initial_cash=cfg.env.initial_cash)
    loop = PaperLoop(policy, broker, j, limits or limits_of(policy), run=run, trade_from=trade_from, record=record,
                     keep_latency=keep_latency)
    n = loop.resume()
    return PaperRun(policy, loop, j, Path(journal), frame, universe, feed_spec, float(speed), start, bundle, n)
