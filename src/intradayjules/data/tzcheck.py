"""Time-zone sanity for naive timestamps: catch files written in another zone than ``data.timezone``.

Naive timestamps are read as wall-clock times in ``data.timezone``. If they were really written in UTC
(a common export format), most bars land outside the exchange session and would be dropped as
"extended hours", silently. So, for each file with naive timestamps, the share of its bars (a sample of
up to ~20,000 rows plus every 50th after) inside a regular session of ``data.calendar`` is computed

* as read (``data.timezone``), and
* for the same wall-clock times read in UTC, the calendar's own zone, a few exchange zones and every
  whole-hour fixed offset from UTC-12 to UTC+14.

The file is refused (``timezone_mismatch``, naming the file, the first sampled line outside the session
and the reading that fits) when under ``MAX_INSIDE_AS_READ`` (50 %) of its bars fall inside as read and
another reading puts at least ``MIN_INSIDE_OTHER`` (90 %) inside and ``MIN_GAIN`` (40 points) more.
Files whose bars all share one time of day (daily bars), or with under 20 sampled bars, are not judged.
A file of extended-hours bars in the right zone (04:00-20:00 New York) is not flagged: no reading puts
much more of it inside the session.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .reader import FileArrays
from .sessions import _calendar, inside_session, open_close_ns, schedule_for

MAX_INSIDE_AS_READ = 0.5
MIN_INSIDE_OTHER = 0.9
MIN_GAIN = 0.4
MIN_SAMPLE = 20
NAMED = ("UTC", "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Berlin",
         "Asia/Tokyo", "Asia/Hong_Kong", "Australia/Sydney")
HOUR = 3600 * 10**9


def _as_utc(wall: np.ndarray, tz: str) -> np.ndarray:
    idx = pd.DatetimeIndex(wall.view("M8[ns]"))
    loc = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return loc.tz_convert("UTC").asi8


def inside_share(utc: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> tuple[float, np.ndarray]:
    ok = utc != np.iinfo(np.int64).min
    _, inside = inside_session(utc, opens, closes)
    inside &= ok
    return float(inside.mean()) if len(utc) else 0.0, inside


def readings(calendar: str) -> list[tuple[str, int | None]]:
    """(time zone name, fixed offset in hours or None for a named zone), preferred first."""
    cal_tz = str(_calendar(calendar).tz)
    names = ["UTC", cal_tz] + [n for n in NAMED if n not in ("UTC", cal_tz)]
    fixed = [(f"Etc/GMT{-h:+d}", h) for h in range(-12, 15) if h != 0]
    return [(n, None) for n in names] + fixed


def check_timezone(fa: FileArrays, tz: str, calendar: str) -> None:
    """Raise ``DataError`` (rule ``timezone_mismatch``) when the file's naive times fit another zone
    much better than ``tz`` (module docstring); return quietly otherwise."""
    wall, lines = fa.naive_sample, fa.sample_line
    if not fa.naive or len(wall) < MIN_SAMPLE:
        return
    if len(np.unique(wall % (24 * HOUR))) < 2:
        return
    margin = 15 * HOUR
    sched = schedule_for(np.array([wall.min() - margin, wall.max() + margin]), calendar)
    opens, closes = open_close_ns(sched)
    cur, inside = inside_share(_as_utc(wall, tz), opens, closes)
    if cur >= MAX_INSIDE_AS_READ:
        return
    best_name, best_share = None, -1.0
    for name, hours in readings(calendar):
        if name == tz:
            continue
        utc = wall - hours * HOUR if hours is not None else _as_utc(wall, name)
        share, _ = inside_share(utc, opens, closes)
        if share > best_share + 0.005:
            best_name, best_share = name, share
    if best_share < MIN_INSIDE_OTHER or best_share - cur < MIN_GAIN:
        return
    p = int(np.flatnonzero(~inside)[0])
    label = best_name if not best_name.startswith("Etc/GMT") else f"{best_name} (fixed UTC{-int(best_name[7:]):+d}:00)"
    raise DataError(
        f"{1 - cur:.0%} of the bars fall outside the {calendar} regular session when their naive timestamps "
        f"are read as {tz} (first: {pd.Timestamp(int(wall[p]), unit='ns')}), so they would be dropped as extended "
        f"hours; read as {label}, {best_share:.0%} fall inside. The times look like {label}: pass "
        f"--timezone {best_name} (or set data.timezone: {best_name})",
        file=fa.file, line=int(lines[p]), rule="timezone_mismatch", column="timestamp")
