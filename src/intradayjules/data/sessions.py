"""Exchange sessions: calendars, which bars are regular-session bars, bar sizes, resampling.

The regular session comes from a maintained exchange calendar (``exchange_calendars``), so holidays and
half days (e.g. the day after Thanksgiving closes at 13:00 New York time) are right without a table of
our own. Timestamps are bar starts: a bar belongs to the session whose ``open <= ts < close``.

Bar size (:func:`bar_sizes`). Per symbol and session, ``g`` = the greatest common divisor of the bars'
offsets from the session open: 1-minute bars give 1 min even when sparse, 5-minute bars 5 min. A
symbol's bar is the median ``g`` of its sessions. Bar sizes are *mixed* when two symbols have different
bars, or when a session with at least ``MIN_BARS_FOR_SIZE`` bars has a coarser ``g`` (a multiple of the
symbol's bar), or a finer one that at least half of its spacings show (a session of 1-minute bars in a
5-minute series). Mixed sizes are an error unless resampling to a common multiple was asked for.

Config checks (:func:`check_calendar`, :func:`check_bar`) are plain functions that raise ``ValueError``
with the reason, so the config schema can call them from a validator.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ..config.checks import calendar_names, check_bar, check_calendar  # noqa: F401  (re-exported)
from ..errors import DataError

MIN_BARS_FOR_SIZE = 20  # a session needs this many bars before its grid says anything about the bar size
DAY_NS = 86_400 * 10**9


@lru_cache(maxsize=8)
def _calendar(name: str):
    import exchange_calendars as xcals

    # exchange_calendars 4.13 trips pandas 3's deprecation of Series.values on tz-aware data while it
    # builds a calendar; the schedule it returns is unaffected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcals.get_calendar(name, start="1990-01-01")


def schedule(calendar: str, start, end) -> pd.DataFrame:
    """Sessions between two dates (inclusive) with UTC ``open`` and ``close`` columns."""
    cal = _calendar(calendar)
    start = pd.Timestamp(start).tz_localize(None).normalize()
    end = pd.Timestamp(end).tz_localize(None).normalize()
    sched = cal.schedule.loc[start:end, ["open", "close"]]
    sched.index = pd.DatetimeIndex(sched.index).tz_localize(None)
    sched.index.name = "session"
    return sched


def open_close_ns(sched: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return (sched["open"].to_numpy(dtype="datetime64[ns]").view("int64"),
            sched["close"].to_numpy(dtype="datetime64[ns]").view("int64"))


def schedule_for(t: np.ndarray, calendar: str) -> pd.DataFrame:
    """The schedule covering UTC nanosecond times ``t`` (with a few days of margin)."""
    lo, hi = int(t.min()), int(t.max())
    return schedule(calendar, pd.Timestamp(lo - 4 * DAY_NS, unit="ns"), pd.Timestamp(hi + DAY_NS, unit="ns"))


def inside_session(t: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last session opening at or before each time (-1 if none) and whether the time lies
    inside that session."""
    idx = np.searchsorted(opens, t, side="right") - 1
    inside = (idx >= 0) & (t < closes[np.clip(idx, 0, None)])
    return idx, inside


def assign_sessions(t: np.ndarray, calendar: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """For UTC nanosecond times: session index into the returned schedule (-1 if none; int32) and whether
    the bar lies inside the regular session. Bars outside it map to the session of their local calendar
    date (extended hours of that exchange day), or -1 on a day without a session."""
    if len(t) == 0:
        sched = schedule(calendar, "2000-01-03", "2000-01-03").iloc[:0]
        return np.zeros(0, np.int32), np.zeros(0, bool), sched
    sched = schedule_for(t, calendar)
    opens, closes = open_close_ns(sched)
    idx, inside = inside_session(t, opens, closes)
    sess = np.where(inside, idx, -1).astype(np.int32)
    out = np.flatnonzero(~inside)
    if len(out):  # local calendar date of the outside bars only (usually few)
        tz = _calendar(calendar).tz
        local = (pd.DatetimeIndex(t[out].view("M8[ns]"), tz="UTC").tz_convert(tz).tz_localize(None)
                 .normalize().to_numpy(dtype="datetime64[ns]"))
        days = sched.index.to_numpy(dtype="datetime64[ns]")
        di = np.searchsorted(days, local)
        ok = (di < len(days)) & (days[np.clip(di, 0, len(days) - 1)] == local)
        sess[out] = np.where(ok, di, -1)
    return sess, inside, sched


def bars_per_session(sched: pd.DataFrame, bar: pd.Timedelta) -> np.ndarray:
    """Regular-session bars of each session (a last partial bar counts)."""
    opens, closes = open_close_ns(sched)
    step = bar.value
    return np.maximum((closes - opens + step - 1) // step, 0)


def group_starts(*keys: np.ndarray) -> np.ndarray:
    """Start positions of runs of equal keys in sorted arrays."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, np.int64)
    change = np.zeros(n, bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def infer_bar(ts: pd.Series, symbols: np.ndarray) -> pd.Timedelta:
    """The most common spacing between consecutive bars of one symbol (kept for callers of the old API)."""
    t = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    same = symbols[1:] == symbols[:-1]
    d = (t[1:] - t[:-1])[same]
    d = d[d > 0]
    if len(d) == 0:
        raise DataError("cannot infer the bar size: fewer than two bars per symbol", rule="bar_size")
    vals, counts = np.unique(d, return_counts=True)
    return pd.Timedelta(int(vals[np.argmax(counts)]), unit="ns")


@dataclass
class BarSizes:
    """Per symbol code: its bar (ns, 0 if unknown) and the first session whose grid disagrees with it."""

    per_symbol: np.ndarray            # int64 ns per symbol code
    odd_row: np.ndarray               # row of the first disagreeing session per symbol (-1 if none)
    odd_size: np.ndarray              # that session's grid (ns)


def bar_sizes(sym: np.ndarray, sess: np.ndarray, t: np.ndarray, opens: np.ndarray, n_symbols: int) -> BarSizes:
    """Bar size per symbol and the first session that disagrees with it (module docstring).

    Arrays sorted by symbol then time; ``sess`` indexes ``opens``; rows outside sessions are allowed (their
    offset from the session open is used as is)."""
    per = np.zeros(n_symbols, np.int64)
    odd_row = np.full(n_symbols, -1, np.int64)
    odd_size = np.zeros(n_symbols, np.int64)
    if len(t) == 0:
        return BarSizes(per, odd_row, odd_size)
    off = np.abs(t - opens[sess])
    starts = group_starts(sym, sess)
    g = np.gcd.reduceat(off, starts)
    n = np.diff(np.r_[starts, len(t)])
    gsym = sym[starts]
    # a one-bar session at the open has g = 0: no information
    for s in np.unique(gsym):
        m = (gsym == s) & (g > 0) & (n >= 2)
        if not m.any():
            m = (gsym == s) & (g > 0)
        if m.any():
            gs = np.sort(g[m])
            per[s] = int(gs[(len(gs) - 1) // 2])  # lower median: always one of the sessions' grids
    # sessions that disagree with their symbol's bar
    b = per[gsym]
    big = n >= MIN_BARS_FOR_SIZE
    coarse = big & (b > 0) & (g > b) & (g % np.maximum(b, 1) == 0)
    finer = big & (b > 0) & (g > 0) & (g < b) & (b % np.maximum(g, 1) == 0)
    if finer.any():  # finer only when most of the session's spacings are at the finer grid
        d = np.diff(t)
        same = np.r_[sym[1:] == sym[:-1]] & (sess[1:] == sess[:-1])
        grp = np.repeat(np.arange(len(starts)), n)
        at_g = np.zeros(len(starts), np.int64)
        hit = same & (d == g[grp[1:]])
        np.add.at(at_g, grp[1:][hit], 1)
        finer &= at_g * 2 >= (n - 1)
    odd = np.flatnonzero(coarse | finer)
    for k in odd[::-1]:  # keep the first odd session per symbol
        s = gsym[k]
        odd_row[s] = starts[k]
        odd_size[s] = g[k]
    return BarSizes(per, odd_row, odd_size)


def resample_arrays(cols: dict[str, np.ndarray], bar: pd.Timedelta, opens: np.ndarray) -> dict[str, np.ndarray]:
    """Aggregate to a coarser bar, aligned to each session's open: open = first, high = max, low = min,
    close = last, volume = sum. Zero-volume input bars don't set prices when the window has a trade.

    ``cols``: ``sym, sess, t, open, high, low, close, volume, line, file`` sorted by symbol then time; the
    output keeps the first line/file of each window."""
    t, sess, sym = cols["t"], cols["sess"], cols["sym"]
    o = opens[sess]
    step = bar.value
    bucket = o + ((t - o) // step) * step
    starts = group_starts(sym, bucket)
    vol = cols["volume"]
    traded = vol > 0
    has_trade = np.add.reduceat(traded.astype(np.int64), starts) > 0
    idx = np.arange(len(t))
    big = len(t)
    first_tr = np.minimum.reduceat(np.where(traded, idx, big), starts)
    last_tr = np.maximum.reduceat(np.where(traded, idx, -1), starts)
    ends = np.r_[starts[1:], len(t)] - 1
    first = np.where(has_trade, first_tr, starts)
    last = np.where(has_trade, last_tr, ends)
    hi_tr = np.maximum.reduceat(np.where(traded, cols["high"], -np.inf), starts)
    lo_tr = np.minimum.reduceat(np.where(traded, cols["low"], np.inf), starts)
    hi_all = np.maximum.reduceat(cols["high"], starts)
    lo_all = np.minimum.reduceat(cols["low"], starts)
    return {
        "sym": sym[starts], "sess": sess[starts], "t": bucket[starts],
        "open": cols["open"][first], "high": np.where(has_trade, hi_tr, hi_all),
        "low": np.where(has_trade, lo_tr, lo_all), "close": cols["close"][last],
        "volume": np.add.reduceat(vol, starts), "line": cols["line"][starts], "file": cols["file"][starts],
    }


def resample(df: pd.DataFrame, bar: pd.Timedelta, sched: pd.DataFrame, sess: np.ndarray) -> pd.DataFrame:
    """DataFrame wrapper of :func:`resample_arrays` (columns symbol, timestamp, OHLCV; sorted)."""
    codes, uniq = pd.factorize(df["symbol"], sort=True)
    cols = {"sym": codes, "sess": np.asarray(sess), "t": df["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64"),
            "line": np.zeros(len(df), np.int64), "file": np.zeros(len(df), np.int32)}
    for c in ("open", "high", "low", "close", "volume"):
        cols[c] = df[c].to_numpy(dtype=float)
    out = resample_arrays(cols, bar, open_close_ns(sched)[0])
    frame = pd.DataFrame({c: out[c] for c in ("open", "high", "low", "close", "volume")})
    frame.insert(0, "symbol", np.asarray(uniq)[out["sym"]])
    frame["timestamp"] = pd.to_datetime(out["t"], utc=True)
    frame["_sess"] = out["sess"]
    return frame
