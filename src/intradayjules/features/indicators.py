"""Indicator kernels: pure numpy / numba functions over flat arrays, no pandas.

Every kernel takes the values of *many* series laid end to end (e.g. all symbols of a bar table sorted
by symbol, time) plus ``starts``: the sorted start offsets of each series (``starts[0] == 0``). A kernel
never looks across a series boundary, and the value at row ``t`` only uses rows ``<= t`` of its series
(no look-ahead). Rows still in warm-up are NaN.

Conventions (units in each docstring):

* Prices are in the quote currency (USD), volumes in shares, returns are natural-log returns.
* EMA and RSI reproduce ``ta`` 0.11 (pandas ``ewm(adjust=False)``) exactly, including its seeding;
  the recursion is written the way pandas computes it, so values agree to ~1e-13 or better.

``VERSIONS`` holds a code version per indicator. It is part of every feature-store key: bump the
entry of an indicator whenever its numbers change, and every stored entry that uses it is rebuilt.
"""

from __future__ import annotations

from functools import wraps

import numpy as np


def njit(cache: bool = True):
    """``numba.njit(cache=True)``, applied on first call: importing this module (for ``VERSIONS``, or
    a feature-store hit in a fresh process) does not import numba (~0.6 s)."""

    def deco(fn):
        compiled = None

        @wraps(fn)
        def call(*args):
            nonlocal compiled
            if compiled is None:
                from numba import njit as _njit

                compiled = _njit(cache=cache)(fn)
            return compiled(*args)

        return call

    return deco

VERSIONS: dict[str, int] = {
    "ema": 1,
    "rsi": 1,
    "vwap": 1,
    "time_of_day": 1,
    "log_return": 1,
    "realized_vol": 1,
    "dollar_volume_adv": 1,
    "amihud": 1,
    "roll_spread": 1,
    "stale_share": 1,
    "secs_since_trade": 1,
}


def segment_starts(keys: np.ndarray) -> np.ndarray:
    """Start offsets of the runs of equal consecutive values in ``keys`` (int64, starts[0] == 0)."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    change[1:] = keys[1:] != keys[:-1]
    return np.flatnonzero(change).astype(np.int64)


def _ends(starts: np.ndarray, n: int) -> np.ndarray:
    ends = np.empty(len(starts), dtype=np.int64)
    ends[:-1] = starts[1:]
    if len(starts):
        ends[-1] = n
    return ends


# ------------------------------------------------------------------------------------ recursions
@njit(cache=True)
def _ewm_adjust_false(x, starts, ends, com, min_periods):
    """pandas ``ewm(com=com, adjust=False, min_periods=...).mean()`` for NaN-free x, per segment."""
    out = np.empty(len(x))
    alpha = 1.0 / (1.0 + com)
    old_wt_factor = 1.0 - alpha
    new_wt = alpha
    for s in range(len(starts)):
        a, b = starts[s], ends[s]
        if a >= b:
            continue
        weighted = x[a]
        nobs = 1
        out[a] = weighted if nobs >= min_periods else np.nan
        for i in range(a + 1, b):
            cur = x[i]
            nobs += 1
            old_wt = old_wt_factor  # old_wt is reset to 1 after each step when adjust=False
            if weighted != cur:
                weighted = old_wt * weighted + new_wt * cur
                weighted /= old_wt + new_wt
            out[i] = weighted if nobs >= min_periods else np.nan
    return out


def ema(close: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average of ``close`` (USD), span ``window`` (alpha = 2 / (window + 1)).

    Seeded with the series' first value; the first ``window - 1`` rows of each series are warm-up
    (NaN). Identical to ``ta.trend.EMAIndicator(close, window).ema_indicator()``.
    """
    close = np.ascontiguousarray(close, dtype=np.float64)
    com = (window - 1) / 2.0
    return _ewm_adjust_false(close, starts, _ends(starts, len(close)), com, window)


@njit(cache=True)
def _up_down(close, starts, ends):
    up = np.zeros(len(close))
    dn = np.zeros(len(close))
    for s in range(len(starts)):
        for i in range(starts[s] + 1, ends[s]):
            d = close[i] - close[i - 1]
            if d > 0:
                up[i] = d
            elif d < 0:
                dn[i] = -d
    return up, dn


def rsi(close: np.ndarray, starts: np.ndarray, window: int = 14) -> np.ndarray:
    """Relative strength index in [0, 100] with Wilder smoothing (alpha = 1 / window).

    As in ``ta.momentum.RSIIndicator``: the move into the first bar counts as 0 (no previous close),
    both averages are seeded with that first move (not with Wilder's simple average of the first
    ``window`` moves), the first ``window - 1`` rows are warm-up (NaN), and RSI is 100 wherever the
    average down move is exactly 0.
    """
    close = np.ascontiguousarray(close, dtype=np.float64)
    ends = _ends(starts, len(close))
    up, dn = _up_down(close, starts, ends)
    alpha = 1.0 / window
    com = (1.0 - alpha) / alpha  # pandas' centre of mass for a given alpha
    emaup = _ewm_adjust_false(up, starts, ends, com, window)
    emadn = _ewm_adjust_false(dn, starts, ends, com, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = emaup / emadn
        out = np.where(emadn == 0, 100.0, 100.0 - (100.0 / (1.0 + rs)))
    out[np.isnan(emadn)] = np.nan
    return out


# ---------------------------------------------------------------------------------- session VWAP
@njit(cache=True)
def _session_vwap(tp, volume, close, starts, ends):
    out = np.empty(len(tp))
    for s in range(len(starts)):
        pv = 0.0
        v = 0.0
        for i in range(starts[s], ends[s]):
            pv += tp[i] * volume[i]
            v += volume[i]
            out[i] = pv / v if v > 0 else close[i]
    return out


def session_vwap(high, low, close, volume, session_starts: np.ndarray) -> np.ndarray:
    """VWAP (USD) that restarts at each session: sum(tp * volume) / sum(volume) over the session's bars
    up to and including the current one, with typical price ``tp = (high + low + close) / 3``.

    ``session_starts`` are the starts of (symbol, session) runs. Before the session's first trade
    (cumulative volume 0) the VWAP is undefined; it is set to the bar's close (the last traded price,
    which stale bars carry), so the deviation from it is 0 rather than a hole in mid-data.
    """
    high, low, close, volume = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close, volume))
    tp = (high + low + close) / 3.0
    return _session_vwap(tp, volume, close, session_starts, _ends(session_starts, len(close)))


# ----------------------------------------------------------------------------- returns, windows
@njit(cache=True)
def _log_return(logc, starts, ends, k):
    out = np.full(len(logc), np.nan)
    for s in range(len(starts)):
        for i in range(starts[s] + k, ends[s]):
            out[i] = logc[i] - logc[i - k]
    return out


def log_return(close: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """``log(close[t] / close[t-k])`` within each series (spans session boundaries); first k rows NaN."""
    logc = np.log(np.ascontiguousarray(close, dtype=np.float64))
    return _log_return(logc, starts, _ends(starts, len(logc)), k)


@njit(cache=True)
def _realized_vol(r1, starts, ends, w):
    out = np.full(len(r1), np.nan)
    for s in range(len(starts)):
        a, b = starts[s], ends[s]
        for i in range(a + w, b):  # needs w returns; r1 is NaN at a
            acc = 0.0
            for j in range(i - w + 1, i + 1):
                acc += r1[j] * r1[j]
            out[i] = np.sqrt(acc)
    return out


def realized_vol(r1: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Realised volatility: sqrt of the sum of squared 1-bar log returns over the last ``window`` bars
    (not annualised; a fraction of price). Spans session boundaries (the overnight return counts).
    First ``window`` rows of a series are warm-up."""
    return _realized_vol(np.ascontiguousarray(r1), starts, _ends(starts, len(r1)), window)


@njit(cache=True)
def _stale_share(volume, starts, ends, w):
    out = np.full(len(volume), np.nan)
    for s in range(len(starts)):
        a, b = starts[s], ends[s]
        for i in range(a + w - 1, b):
            n = 0
            for j in range(i - w + 1, i + 1):
                if volume[j] <= 0:
                    n += 1
            out[i] = n / w
    return out


def stale_share(volume: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Share (0..1) of the last ``window`` bars without a trade (volume 0). First window-1 rows NaN."""
    v = np.ascontiguousarray(volume, dtype=np.float64)
    return _stale_share(v, starts, _ends(starts, len(v)), window)


@njit(cache=True)
def _secs_since_trade(t_ns, volume, starts, ends):
    out = np.full(len(t_ns), np.nan)
    for s in range(len(starts)):
        last = -1
        for i in range(starts[s], ends[s]):
            if volume[i] > 0:
                last = i
            if last >= 0:
                out[i] = (t_ns[i] - t_ns[last]) / 1e9
    return out


def secs_since_trade(t_ns: np.ndarray, volume: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Seconds from the start of the last bar with a trade to the start of this bar (0 on a traded bar;
    NaN before the series' first trade). ``t_ns``: bar start, int64 ns since the epoch."""
    v = np.ascontiguousarray(volume, dtype=np.float64)
    return _secs_since_trade(np.ascontiguousarray(t_ns, dtype=np.int64), v, starts, _ends(starts, len(v)))


# --------------------------------------------------------------------------------------- liquidity
@njit(cache=True)
def _trailing_adv(daily_dv, sym_of_day, adv_days):
    """Mean of the previous (up to) adv_days daily values of the same symbol; NaN with no history."""
    out = np.full(len(daily_dv), np.nan)
    for d in range(len(daily_dv)):
        acc = 0.0
        n = 0
        j = d - 1
        while j >= 0 and n < adv_days and sym_of_day[j] == sym_of_day[d]:
            acc += daily_dv[j]
            n += 1
            j -= 1
        if n > 0:
            out[d] = acc / n
    return out


def adv_before_session(close, volume, sym_codes: np.ndarray, session_starts: np.ndarray, adv_days: int) -> np.ndarray:
    """Per row: ADV in USD/day, the mean daily dollar volume (sum of close * volume) of the symbol's
    previous ``adv_days`` sessions, strictly before the row's session (``data/tiers.py`` convention
    with ``min_history_days = 1``). NaN in a symbol's first session."""
    dv = np.ascontiguousarray(close, dtype=np.float64) * np.ascontiguousarray(volume, dtype=np.float64)
    daily = np.add.reduceat(dv, session_starts) if len(dv) else dv
    sym_of_day = np.ascontiguousarray(sym_codes[session_starts], dtype=np.int64)
    adv = _trailing_adv(daily, sym_of_day, adv_days)
    counts = np.diff(np.append(session_starts, len(dv)))
    return np.repeat(adv, counts)


@njit(cache=True)
def _dollar_volume_adv(dv, adv, starts, ends, w):
    out = np.full(len(dv), np.nan)
    for s in range(len(starts)):
        for i in range(starts[s] + w - 1, ends[s]):
            if adv[i] > 0:
                acc = 0.0
                for j in range(i - w + 1, i + 1):
                    acc += dv[j]
                out[i] = acc / adv[i]
    return out


def dollar_volume_adv(close, volume, adv: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Dollar volume of the last ``window`` bars (sum of close * volume, USD) divided by the ADV known
    before the session (USD/day): the fraction of a normal day's dollar volume traded in the window."""
    dv = np.ascontiguousarray(close, dtype=np.float64) * np.ascontiguousarray(volume, dtype=np.float64)
    return _dollar_volume_adv(dv, np.ascontiguousarray(adv), starts, _ends(starts, len(dv)), window)


@njit(cache=True)
def _amihud(r1, dv, starts, ends, w):
    out = np.full(len(r1), np.nan)
    for s in range(len(starts)):
        last = np.nan
        for i in range(starts[s] + w, ends[s]):
            sr = 0.0
            sdv = 0.0
            for j in range(i - w + 1, i + 1):
                sr += abs(r1[j])
                sdv += dv[j]
            if sdv > 0:
                last = 1e6 * sr / sdv
            out[i] = last
    return out


def amihud(r1: np.ndarray, close, volume, starts: np.ndarray, window: int) -> np.ndarray:
    """Amihud illiquidity over the last ``window`` bars as a ratio of sums: ``1e6 * sum|r| / sum(close *
    volume)`` = absolute log return per USD 1M traded. A window with no trade at all carries the last
    defined value (NaN until there is one). First ``window`` rows of a series are warm-up."""
    dv = np.ascontiguousarray(close, dtype=np.float64) * np.ascontiguousarray(volume, dtype=np.float64)
    return _amihud(np.ascontiguousarray(r1), dv, starts, _ends(starts, len(dv)), window)


@njit(cache=True)
def _roll_spread(r1, intraday, starts, ends, w):
    out = np.full(len(r1), np.nan)
    for s in range(len(starts)):
        a, b = starts[s], ends[s]
        last = np.nan
        for i in range(a + w, b):
            n = 0
            sx = 0.0
            sy = 0.0
            sxy = 0.0
            for j in range(max(i - w + 1, a + 2), i + 1):
                if intraday[j] and intraday[j - 1]:
                    n += 1
                    sx += r1[j]
                    sy += r1[j - 1]
                    sxy += r1[j] * r1[j - 1]
            if n >= 2:
                cov = sxy / n - (sx / n) * (sy / n)
                last = 2.0 * np.sqrt(-cov) if cov < 0 else 0.0
            out[i] = last
    return out


def roll_spread(r1: np.ndarray, first_of_session: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Roll (1984) effective spread estimate, relative to price: ``2 * sqrt(-cov(r[t], r[t-1]))`` over the
    pairs of consecutive 1-bar log returns in the last ``window`` bars, 0 when the autocovariance is
    >= 0. Returns into a session's first bar (they hold the overnight gap) are left out of the pairs.
    With fewer than 2 pairs the last value is carried. First ``window`` rows of a series are warm-up."""
    intraday = ~np.asarray(first_of_session, dtype=bool)
    return _roll_spread(np.ascontiguousarray(r1), intraday, starts, _ends(starts, len(r1)), window)


def time_of_day(t_ns: np.ndarray, open_ns: np.ndarray, close_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sin(2 pi x), cos(2 pi x)`` with ``x = (bar start - session open) / (session close - session
    open)``, the fraction of the bar's own session elapsed (a half day runs 0..1 faster). Open and close
    come from the exchange calendar, so they are known in advance."""
    x = (t_ns - open_ns) / (close_ns - open_ns).astype(np.float64)
    ang = 2.0 * np.pi * x
    return np.sin(ang), np.cos(ang)
