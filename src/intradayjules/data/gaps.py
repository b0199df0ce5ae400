"""Missing bars: fill short gaps as stale bars, never invent across a hole; coverage per symbol.

For each symbol, the sessions it has bars in are compared with the exchange calendar:

* a run of at most ``max_fill_sessions`` (``data.max_fill_sessions``, default 1) whole sessions missing
  between two sessions with bars is filled: every bar of those sessions is a stale bar;
* a longer run is a **hole**: nothing is filled there, the symbol's history is split into segments, and
  the hole is reported (symbol, last session before, first after, sessions missing);
* inside each segment, bars missing between its first and its last bar are inserted as stale bars:
  open = high = low = close = the previous close, volume 0. Nothing is filled before a segment's first
  bar or after its last, so no price is carried across a hole.

A bar that is not on its session's bar grid (open + k x bar) is an ``off_grid`` error naming its line.

Coverage (``coverage`` table) counts only bars that were in the input (after resampling): ``input_bars /
expected_bars``, where ``expected_bars`` is the calendar's regular-session bars of every session from the
symbol's first to its last session, holes included. Filled bars never count as coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from .bars import Hole, LoadReport
from .sessions import group_starts


@dataclass
class GapResult:
    cols: dict[str, np.ndarray] | None   # filled arrays (None: nothing was filled)
    coverage: pd.DataFrame               # per symbol


def fill_gaps(cols: dict[str, np.ndarray], symbols: list[str], files: list[str], sched: pd.DataFrame,
              n_per: np.ndarray, bar: pd.Timedelta | None, max_fill_sessions: int, fill: bool,
              report: LoadReport) -> GapResult:
    """Plan and apply the rules of the module docstring on arrays sorted by symbol then time.

    ``cols``: ``sym, sess, t, open, high, low, close, volume, line, file, inside``; ``n_per``: bars per
    session of ``sched`` (at ``bar``). With ``fill`` False only holes and coverage are computed."""
    sym, sess, t = cols["sym"], cols["sess"], cols["t"]
    days = sched.index
    opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
    step = bar.value if bar is not None else 0
    starts = group_starts(sym)
    ends = np.r_[starts[1:], len(sym)]
    grids, gsess, positions = [], [], []
    out_len = 0
    rows = []
    n_fill_in = n_fill_sess = n_fill_sess_bars = 0
    for a, b in zip(starts, ends):
        s = int(sym[a])
        ss, tt = sess[a:b], t[a:b]
        ps = group_starts(ss)
        present = ss[ps].astype(np.int64)
        gap = np.diff(present) - 1
        hole_at = np.flatnonzero(gap > max_fill_sessions)
        for h in hole_at:
            report.holes.append(Hole(symbols[s], days[present[h]], days[present[h + 1]], int(gap[h])))
        short = np.flatnonzero((gap >= 1) & (gap <= max_fill_sessions))
        filled_missing = (np.concatenate([np.arange(present[k] + 1, present[k + 1]) for k in short])
                          if len(short) else np.zeros(0, np.int64))
        n_in = int(cols["inside"][a:b].sum())
        rows.append({"symbol": symbols[s], "first": days[present[0]], "last": days[present[-1]],
                     "sessions": len(present), "holes": len(hole_at), "missing_sessions": int(gap[hole_at].sum()),
                     "filled_sessions": len(filled_missing), "input_bars": n_in,
                     "expected_bars": int(n_per[present[0]:present[-1] + 1].sum())})
        if not fill:
            continue
        # the grid: present and short-gap sessions, clipped to each segment's first and last bar
        S = np.union1d(present, filled_missing)
        counts = n_per[S]
        total = int(counts.sum())
        base = np.repeat(np.cumsum(counts) - counts, counts)
        grid = np.repeat(opens[S], counts) + (np.arange(total) - base) * step
        gs = np.repeat(S, counts)
        seg_first = present[np.r_[0, hole_at + 1]]                  # first session of each segment
        seg_t0 = tt[ps[np.r_[0, hole_at + 1]]]
        seg_t1 = tt[np.r_[ps[hole_at + 1] - 1, len(tt) - 1]] if len(hole_at) else tt[[len(tt) - 1]]
        seg = np.searchsorted(seg_first, gs, side="right") - 1
        keep = (grid >= seg_t0[seg]) & (grid <= seg_t1[seg])
        grid, gs = grid[keep], gs[keep]
        pos = np.searchsorted(grid, tt)
        on = (pos < len(grid)) & (grid[np.clip(pos, 0, max(len(grid) - 1, 0))] == tt)
        if not on.all():
            k = int(np.flatnonzero(~on)[0])
            raise DataError(f"{symbols[s]}: bar at {pd.Timestamp(int(tt[k]), unit='ns', tz='UTC')} is off the {bar} "
                            "grid of its session (bars start at the session open plus a whole number of bars)",
                            file=files[int(cols['file'][a + k])], line=int(cols["line"][a + k]), rule="off_grid",
                            column="timestamp")
        n_new = len(grid) - len(tt)
        if n_new:
            whole = np.isin(gs, filled_missing)
            n_fill_sess_bars += int(whole.sum())
            n_fill_in += n_new - int(whole.sum())
        n_fill_sess += len(filled_missing)
        grids.append(grid)
        gsess.append(gs.astype(np.int32))
        positions.append(pos + out_len)
        out_len += len(grid)
    report.filled_stale += n_fill_in
    report.filled_sessions += n_fill_sess
    report.filled_session_bars += n_fill_sess_bars
    coverage = pd.DataFrame(rows)
    if not fill or out_len == len(t):
        return GapResult(None, coverage)
    return GapResult(_apply(cols, grids, gsess, positions, out_len), coverage)


def _gather(parts: list[np.ndarray], n: int, dtype) -> np.ndarray:
    """Concatenate ``parts`` into one array, freeing each part as soon as it is copied."""
    out = np.empty(n, dtype)
    k = 0
    for i in range(len(parts)):
        p = parts[i]
        out[k:k + len(p)] = p
        k += len(p)
        parts[i] = None  # type: ignore[call-overload]
    parts.clear()
    return out


def _apply(cols, grids, gsess, positions, n_out) -> dict[str, np.ndarray]:
    """Scatter the input rows into the grid; missing rows carry the previous close, volume 0."""
    n_in = sum(len(p) for p in positions)
    pos = _gather(positions, n_in, np.int64)
    present = np.zeros(n_out, bool)
    present[pos] = True
    idx = np.int32 if n_out < 2**31 else np.int64
    last = np.arange(n_out, dtype=idx)
    last[~present] = 0
    np.maximum.accumulate(last, out=last)  # every symbol starts with a real bar
    out: dict[str, np.ndarray] = {"t": _gather(grids, n_out, np.int64), "sess": _gather(gsess, n_out, np.int32)}
    sym = np.empty(n_out, cols["sym"].dtype)
    sym[pos] = cols.pop("sym")
    out["sym"] = sym[last]
    del sym
    close = np.empty(n_out)
    close[pos] = cols.pop("close")
    close = close[last]
    for c in ("open", "high", "low"):
        x = np.empty(n_out)
        x[pos] = cols.pop(c)
        np.copyto(x, close, where=~present)
        out[c] = x
    out["close"] = close
    v = np.zeros(n_out)
    v[pos] = cols.pop("volume")
    out["volume"] = v
    for c in ("line", "file"):
        x = np.zeros(n_out, cols[c].dtype)
        x[pos] = cols.pop(c)
        out[c] = x
    return out
