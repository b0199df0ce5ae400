"""Live bar sources: the ``Feed`` protocol and ``ReplayFeed``, bar files replayed as if live.

A feed yields **batches**: every bar that closed at one moment (one per symbol that traded or was
filled in), in time order, symbols sorted within a batch. A bar is only delivered once it has closed
(``Bar.end``: bar start + bar length), so a consumer never sees a bar still forming.

``ReplayFeed`` reads anything ``data.loaders.load_bars`` reads (a file, a folder of per-symbol files,
a synthetic ``bars.parquet``) or takes a canonical bar table, and paces batches like a live feed:
``speed`` 1 waits the real bar spacing between batches, ``speed`` N waits 1/N of it, ``speed`` 0 never
waits (tests, backtests). The night between two sessions is paced as one bar, not 17 hours.
``start_after`` (int64 ns bar start) skips everything up to and including that bar: a restarted loop
resumes after the last bar its journal holds.

Spec strings (``open_feed``): ``replay:PATH`` (speed and options as keyword arguments). Real-time
sources register themselves in ``FEEDS`` (a scheme -> factory table) without touching this module's
callers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..config import DataConfig
from ..data.loaders import load_bars
from ..errors import DataError


class Bar(NamedTuple):
    """One closed bar. ``ts``: bar start, ``end``: bar close, both int64 ns UTC; ``session``: the
    exchange session date at midnight (int64 ns), as in the canonical table. Prices USD, volume shares."""

    symbol: str
    ts: int
    end: int
    session: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def stale(self) -> bool:
        return self.volume <= 0

    @property
    def timestamp(self) -> pd.Timestamp:
        return pd.Timestamp(self.ts, tz="UTC")


@runtime_checkable
class Feed(Protocol):
    """A source of closed bars, in batches of equal close time, in time order."""

    def __iter__(self) -> Iterator[list[Bar]]: ...

    def close(self) -> None: ...


class ReplayFeed:
    """Bars from files (or a canonical table) delivered as if live (module docstring)."""

    def __init__(self, source: str | Path | pd.DataFrame, *, speed: float = 0.0, data: DataConfig | None = None,
                 symbols: list[str] | None = None, start_after: int | None = None,
                 bar: pd.Timedelta | str | None = None, sleep: Callable[[float], None] = time.sleep):
        if not (speed >= 0 and np.isfinite(speed)):
            raise ValueError(f"speed must be a finite number >= 0 (got {speed!r})")
        self.speed = float(speed)
        self._sleep = sleep
        if isinstance(source, pd.DataFrame):
            frame, inferred = source, None
            self.label = "<frame>"
        else:
            loaded = load_bars(source, data or DataConfig())
            frame, inferred = loaded.frame, loaded.bar
            self.label = str(source)
        if symbols is not None:
            frame = frame[frame["symbol"].isin(symbols)]
        need = ["timestamp", "symbol", "session", "open", "high", "low", "close", "volume"]
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise DataError(f"replay bars lack columns {missing}", file=self.label, rule="missing_column")
        if len(frame) == 0:
            raise DataError("no bars to replay", file=self.label, rule="empty")
        self.bar_ns = int(pd.Timedelta(bar).value) if bar is not None else (
            int(inferred.value) if inferred is not None else _infer_bar(frame))
        ts = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
        order = np.lexsort((frame["symbol"].to_numpy(), ts))
        if start_after is not None:
            order = order[ts[order] > int(start_after)]
        self._ts = ts[order]
        self._sym = frame["symbol"].to_numpy()[order]
        self._sess = frame["session"].to_numpy(dtype="datetime64[ns]").view("int64")[order]
        self._ohlcv = np.column_stack([frame[c].to_numpy(dtype=np.float64)[order]
                                       for c in ("open", "high", "low", "close", "volume")])
        self._closed = False
        self.delivered = 0  # batches delivered so far

    @property
    def symbols(self) -> list[str]:
        return sorted(set(self._sym.tolist()))

    def __len__(self) -> int:
        """Number of batches (distinct bar times) left to deliver at construction."""
        return int(len(np.unique(self._ts)))

    def __iter__(self) -> Iterator[list[Bar]]:
        ts, sym, sess, x = self._ts, self._sym, self._sess, self._ohlcv
        n = len(ts)
        bar = self.bar_ns
        i = 0
        prev_ts = prev_sess = None
        while i < n and not self._closed:
            j = i
            t = ts[i]
            while j < n and ts[j] == t:
                j += 1
            if self.speed > 0 and prev_ts is not None:
                gap = bar if sess[i] != prev_sess else int(t - prev_ts)
                self._sleep(gap / 1e9 / self.speed)
            batch = [Bar(str(sym[k]), int(t), int(t) + bar, int(sess[k]), float(x[k, 0]), float(x[k, 1]),
                         float(x[k, 2]), float(x[k, 3]), float(x[k, 4])) for k in range(i, j)]
            prev_ts, prev_sess = t, sess[i]
            self.delivered += 1
            yield batch
            i = j

    def close(self) -> None:
        self._closed = True


def _infer_bar(frame: pd.DataFrame) -> int:
    t = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    s = frame["symbol"].to_numpy()
    order = np.lexsort((t, s))
    t, s = t[order], s[order]
    d = np.diff(t)[s[1:] == s[:-1]]
    d = d[d > 0]
    if len(d) == 0:
        raise DataError("cannot infer the bar length: fewer than two bars of one symbol; pass bar=",
                        rule="bar_size")
    vals, counts = np.unique(d, return_counts=True)
    return int(vals[np.argmax(counts)])


FEEDS: dict[str, Callable[..., Feed]] = {"replay": lambda rest, **kw: ReplayFeed(rest, **kw)}


def open_feed(spec: str, **options) -> Feed:
    """A feed from a spec string ``SCHEME:REST`` (``replay:PATH``); ``options`` go to its factory."""
    scheme, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(f"feed spec {spec!r} must look like SCHEME:ARGUMENT, e.g. replay:data/bars.parquet")
    factory = FEEDS.get(scheme)
    if factory is None:
        raise ValueError(f"unknown feed scheme {scheme!r} in {spec!r}; known: {sorted(FEEDS)}")
    return factory(rest, **options)
