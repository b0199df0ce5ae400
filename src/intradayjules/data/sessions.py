"""Exchange sessions: which bars are regular-session bars, resampling, and filling gaps.

The regular session comes from a maintained exchange calendar (``exchange_calendars``), so holidays and
half days (e.g. the day after Thanksgiving closes at 13:00 New York time) are right without a table of
our own. Timestamps are bar starts: a bar belongs to the session whose ``open <= ts < close``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import DataError
from .bars import LoadReport


@lru_cache(maxsize=8)
def _calendar(name: str):
    import warnings

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


def assign_sessions(ts: pd.Series, calendar: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """For each UTC timestamp: session index into the returned schedule (-1 if none) and whether the
    bar lies inside the regular session. Bars of extended hours map to the session of that date."""
    if len(ts) == 0:
        return np.zeros(0, int), np.zeros(0, bool), schedule(calendar, "2000-01-03", "2000-01-03").iloc[:0]
    t0 = ts.min() - pd.Timedelta(days=4)
    t1 = ts.max() + pd.Timedelta(days=1)
    sched = schedule(calendar, t0, t1)
    opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
    closes = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")
    t = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    idx = np.searchsorted(opens, t, side="right") - 1
    inside = (idx >= 0) & (t < closes[np.clip(idx, 0, None)])
    # Extended-hours bars: assign by local calendar date of the open (same exchange day).
    tz = _calendar(calendar).tz
    local_day = ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize().to_numpy()
    day_idx = np.searchsorted(sched.index.to_numpy(), local_day)
    day_idx_ok = (day_idx < len(sched)) & (sched.index.to_numpy()[np.clip(day_idx, 0, len(sched) - 1)] == local_day)
    sess = np.where(inside, idx, np.where(day_idx_ok, day_idx, -1))
    return sess, inside, sched


def infer_bar(ts: pd.Series, symbols: np.ndarray) -> pd.Timedelta:
    """The most common spacing between consecutive bars of one symbol."""
    t = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    same = symbols[1:] == symbols[:-1]
    d = (t[1:] - t[:-1])[same]
    d = d[d > 0]
    if len(d) == 0:
        raise DataError("cannot infer the bar size: fewer than two bars per symbol", rule="bar_size")
    vals, counts = np.unique(d, return_counts=True)
    return pd.Timedelta(int(vals[np.argmax(counts)]), unit="ns")


def resample(df: pd.DataFrame, bar: pd.Timedelta, sched: pd.DataFrame, sess: np.ndarray) -> pd.DataFrame:
    """Aggregate to a coarser bar, aligned to each session's open: open=first, high=max, low=min,
    close=last, volume=sum. Zero-volume input bars don't set prices when the window has a trade."""
    opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
    t = df["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    o = opens[sess]
    step = bar.value
    bucket = o + ((t - o) // step) * step
    work = df[["symbol", "open", "high", "low", "close", "volume"]].copy()
    work["bucket"] = bucket
    work["_sess"] = sess
    traded = work["volume"].to_numpy() > 0
    # Only traded bars set prices, unless the whole window is untraded.
    has_trade = work.groupby(["symbol", "bucket"], sort=False)["volume"].transform("sum").to_numpy() > 0
    use = traded | ~has_trade
    priced = work[use]
    g = priced.groupby(["symbol", "bucket"], sort=True)
    out = pd.DataFrame(
        {
            "open": g["open"].first(),
            "high": g["high"].max(),
            "low": g["low"].min(),
            "close": g["close"].last(),
            "_sess": g["_sess"].first(),
        }
    )
    out["volume"] = work.groupby(["symbol", "bucket"], sort=True)["volume"].sum()
    out = out.reset_index()
    out["timestamp"] = pd.to_datetime(out["bucket"].to_numpy(), utc=True)
    return out.drop(columns="bucket")


def fill_gaps(df: pd.DataFrame, bar: pd.Timedelta, sched: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Insert the bars missing inside each regular session, between a symbol's first and last bar, as
    stale bars: open = high = low = close = the previous close, volume 0. No trade is invented."""
    step = bar.value
    opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
    closes = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")
    n_per = np.maximum((closes - opens + step - 1) // step, 0)
    pieces = []
    for symbol, g in df.groupby("symbol", sort=True):
        s0, s1 = int(g["_sess"].iloc[0]), int(g["_sess"].iloc[-1])
        counts = n_per[s0 : s1 + 1]
        grid = np.repeat(opens[s0 : s1 + 1], counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        ) * step
        sess_ids = np.repeat(np.arange(s0, s1 + 1), counts)
        t = g["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
        keep = (grid >= t[0]) & (grid <= t[-1])
        grid, sess_ids = grid[keep], sess_ids[keep]
        if len(grid) == len(t) and np.array_equal(grid, t):
            pieces.append(g)
            continue
        pos = np.searchsorted(grid, t)
        on_grid = (pos < len(grid)) & (grid[np.clip(pos, 0, len(grid) - 1)] == t)
        if not on_grid.all():
            bad = g.iloc[int(np.flatnonzero(~on_grid)[0])]
            raise DataError(
                f"{symbol}: bar at {bad['timestamp']} is off the {bar} grid of its session",
                rule="off_grid", line=int(bad["_line"]) if "_line" in g.columns and pd.notna(bad["_line"]) else None,
            )
        full = pd.DataFrame({"timestamp": grid, "_sess": sess_ids})
        present = np.zeros(len(grid), dtype=bool)
        present[pos] = True
        cols = {c: np.full(len(grid), np.nan) for c in ("open", "high", "low", "close", "volume")}
        for c in cols:
            cols[c][pos] = g[c].to_numpy()
        close = pd.Series(cols["close"]).ffill().to_numpy()
        for c in ("open", "high", "low", "close"):
            cols[c] = np.where(present, cols[c], close)
        cols["volume"] = np.where(present, cols["volume"], 0.0)
        filled = pd.DataFrame({"symbol": symbol, **cols})
        filled["timestamp"] = pd.to_datetime(grid, utc=True)
        filled["_sess"] = sess_ids
        report.filled_stale += int((~present).sum())
        pieces.append(filled)
    return pd.concat(pieces, ignore_index=True) if pieces else df
