"""Incremental features: one closed bar in, that bar's feature row out, equal to the batch pipeline.

``OnlineFeatures(cfg, calendar).update(symbol, ts_ns, session_ns, open, high, low, close, volume)``
returns ``(values, warm)``: a float64 vector in ``feature_names(cfg)`` order and the ``warm`` flag
(True when any value is NaN), exactly what ``pipeline.compute_features`` gives the same bar when it sees
the symbol's whole history at once. Symbols are independent; bars of different symbols may interleave in
any order, bars of one symbol must arrive in strictly increasing time (else ``DataError`` naming the
symbol, the time and the rule ``unsorted``): a bar fed twice is refused, not counted twice.

Cost per bar per symbol: constant (independent of the history length). Windowed sums are recomputed
over a ring buffer of the last ``window`` bars (O(window), window fixed by the config) in the batch
kernels' order, rather than kept as running sums: a running sum drifts from the batch value by
rounding, a recomputed one does not. Memory per symbol: the rings, the current session's per-bar
dollar volumes (for the daily sum) and ``adv_days`` daily dollar volumes.

Floating-point parity. Each feature repeats the batch kernel's arithmetic in the same order:

* EMA and RSI: pandas' ``ewm(adjust=False)`` recursion with its seeding and its ``weighted != x`` test
  (``indicators._ewm_adjust_false``); RSI's first move is 0, RSI = 100 where the average down move is 0.
* logs, sin and cos go through numpy on scalars (``np.log(np.float64(x))``): numpy's SIMD ``log``
  differs from ``math.log`` in the last bit for some inputs, and the batch side uses numpy.
* the daily dollar volume behind the ADV is ``np.add.reduceat`` over the session's bar values, as in
  ``indicators.adv_before_session`` (its summation order is neither sequential nor ``np.add.reduce``'s).
* The session clock (open/close for the time of day) comes from ``data.sessions.schedule``, loaded a
  year ahead at a time, so a new session does not cost a calendar lookup.

The session of a bar is given (``session_ns``: the session date at midnight, int64 ns, as in the
canonical bar table's ``session`` column); a change of session resets the VWAP and closes the previous
session's daily dollar volume into the ADV history.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..config import FeaturesConfig
from ..data.sessions import schedule
from ..errors import DataError
from .pipeline import KEY_COLUMNS, feature_names

_ZERO_START = np.zeros(1, dtype=np.intp)
_NAN = float("nan")
_TWO_PI = 2.0 * np.pi
_SCHEDULE_DAYS = 400  # calendar days of schedule loaded per lookup miss


def _np_log(x: float) -> float:
    return float(np.log(np.float64(x)))


class _Ewm:
    """pandas ``ewm(com=com, adjust=False, min_periods=min_periods).mean()`` one value at a time."""

    __slots__ = ("old_wt", "new_wt", "min_periods", "weighted", "nobs")

    def __init__(self, com: float, min_periods: int):
        alpha = 1.0 / (1.0 + com)
        self.old_wt = 1.0 - alpha
        self.new_wt = alpha
        self.min_periods = min_periods
        self.weighted = _NAN
        self.nobs = 0

    def update(self, x: float) -> float:
        if self.nobs == 0:
            self.weighted = x
        elif self.weighted != x:
            w = self.old_wt * self.weighted + self.new_wt * x
            self.weighted = w / (self.old_wt + self.new_wt)
        self.nobs += 1
        return self.weighted if self.nobs >= self.min_periods else _NAN


class _SymbolState:
    """Everything one symbol's features need from its past."""

    __slots__ = ("n", "last_ts", "session", "prev_close", "emas", "rsi_up", "rsi_dn", "logc", "r1", "dv",
                 "vol", "intraday", "pv", "sv", "session_dv", "daily_dv", "adv", "last_trade_ts",
                 "amihud_last", "roll_last")

    def __init__(self, cfg: FeaturesConfig, ring: int, logc_ring: int):
        self.n = 0  # bars seen
        self.last_ts = None
        self.session = None
        self.prev_close = _NAN
        self.emas = [_Ewm((w - 1) / 2.0, w) for w in cfg.ema_windows]
        alpha = 1.0 / cfg.rsi_window
        com = (1.0 - alpha) / alpha
        self.rsi_up = _Ewm(com, cfg.rsi_window)
        self.rsi_dn = _Ewm(com, cfg.rsi_window)
        self.logc: deque[float] = deque(maxlen=logc_ring)
        self.r1: deque[float] = deque(maxlen=ring)
        self.dv: deque[float] = deque(maxlen=ring)
        self.vol: deque[float] = deque(maxlen=ring)
        self.intraday: deque[bool] = deque(maxlen=ring)
        self.pv = 0.0
        self.sv = 0.0
        self.session_dv: list[float] = []
        self.daily_dv: deque[float] = deque(maxlen=cfg.adv_days)
        self.adv = _NAN
        self.last_trade_ts = None
        self.amihud_last = _NAN
        self.roll_last = _NAN


class OnlineFeatures:
    """Incremental twin of ``compute_features`` (module docstring). Picklable: its state is plain data.

    >>> eng = OnlineFeatures()                       # doctest: +SKIP
    >>> values, warm = eng.update("SPY", ts_ns, session_ns, o, h, l, c, v)   # doctest: +SKIP
    """

    def __init__(self, cfg: FeaturesConfig | None = None, calendar: str = "XNYS"):
        self.cfg = cfg = cfg or FeaturesConfig()
        self.calendar = calendar
        self.names = feature_names(cfg)
        self.n_features = len(self.names)
        self._max_k = max(cfg.return_horizons)
        L = cfg.liquidity_window
        self._ring = max(L, cfg.vol_window) + 1
        self._states: dict[str, _SymbolState] = {}
        self._bounds: dict[int, tuple[int, int]] = {}
        self._tod_cache: tuple[int, int, float, float] | None = None  # (ts, session, sin, cos)
        self.last: dict[str, tuple[np.ndarray, bool]] = {}

    # ------------------------------------------------------------------------------------ public
    @property
    def symbols(self) -> list[str]:
        return sorted(self._states)

    def bars_seen(self, symbol: str) -> int:
        s = self._states.get(symbol)
        return 0 if s is None else s.n

    def last_timestamp(self, symbol: str) -> int | None:
        """int64 ns of the symbol's last bar, or None before its first bar."""
        s = self._states.get(symbol)
        return None if s is None else s.last_ts

    def update(self, symbol: str, ts_ns: int, session_ns: int, open_: float, high: float, low: float,
               close: float, volume: float) -> tuple[np.ndarray, bool]:
        """Fold in one closed bar; return its feature vector (float64) and ``warm``."""
        ts_ns, session_ns = int(ts_ns), int(session_ns)
        st = self._states.get(symbol)
        if st is None:
            st = self._states[symbol] = _SymbolState(self.cfg, self._ring, self._max_k + 1)
        self._check(symbol, st, ts_ns, session_ns, open_, high, low, close, volume)
        cfg = self.cfg
        c = float(close)
        v = float(volume)
        new_session = st.session != session_ns
        if new_session:
            if st.session_dv:  # close the previous session into the ADV history
                st.daily_dv.append(float(np.add.reduceat(np.asarray(st.session_dv), _ZERO_START)[0]))
            st.session_dv = []
            st.pv = 0.0
            st.sv = 0.0
            st.session = session_ns
            st.adv = self._trailing_adv(st.daily_dv)
        i = st.n  # position of this bar in the symbol's series
        st.n = i + 1
        st.last_ts = ts_ns

        # RSI (Wilder, ta's seeding): the move into the first bar is 0
        up = dn = 0.0
        if i > 0:
            d = c - st.prev_close
            if d > 0:
                up = d
            elif d < 0:
                dn = -d
        st.prev_close = c
        eu = st.rsi_up.update(up)
        ed = st.rsi_dn.update(dn)
        if ed != ed:  # NaN: warm-up
            rsi = _NAN
        elif ed == 0:
            rsi = 100.0
        else:
            rsi = 100.0 - (100.0 / (1.0 + eu / ed))
        out = [rsi]
        emas = [e.update(c) for e in st.emas]
        if cfg.price_levels:
            out += emas
        out += [c / e - 1.0 for e in emas]

        # session VWAP with typical price (h + l + c) / 3
        tp = (float(high) + float(low) + c) / 3.0
        st.pv += tp * v
        st.sv += v
        vwap = st.pv / st.sv if st.sv > 0 else c
        if cfg.price_levels:
            out.append(vwap)
        out.append(c / vwap - 1.0)
        out += self._tod(ts_ns, session_ns)

        # returns
        lc = _np_log(c)
        st.logc.append(lc)
        logc = st.logc
        r1 = lc - logc[-2] if i >= 1 else _NAN
        for k in cfg.return_horizons:
            out.append(r1 if k == 1 else (lc - logc[-1 - k] if i >= k else _NAN))
        dv = c * v
        st.r1.append(r1)
        st.dv.append(dv)
        st.vol.append(v)
        st.intraday.append(not new_session)
        st.session_dv.append(dv)

        # realised vol over vol_window 1-bar returns
        w = cfg.vol_window
        if i >= w:
            acc = 0.0
            r = st.r1
            for j in range(len(r) - w, len(r)):
                acc += r[j] * r[j]
            out.append(math.sqrt(acc))
        else:
            out.append(_NAN)

        L = cfg.liquidity_window
        ring = len(st.r1)
        lo = ring - L
        # dollar volume of the window / ADV known before the session
        if i >= L - 1 and st.adv > 0:
            acc = 0.0
            for j in range(lo, ring):
                acc += st.dv[j]
            out.append(acc / st.adv)
        else:
            out.append(_NAN)
        # Amihud: 1e6 * sum|r| / sum dollar volume, the last defined value carried
        if i >= L:
            sr = 0.0
            sdv = 0.0
            for j in range(lo, ring):
                sr += abs(st.r1[j])
                sdv += st.dv[j]
            if sdv > 0:
                st.amihud_last = 1e6 * sr / sdv
            out.append(st.amihud_last)
        else:
            out.append(_NAN)
        # Roll spread over pairs of consecutive intraday returns in the window
        if i >= L:
            n = 0
            sx = sy = sxy = 0.0
            first = max(i - L + 1, 2) - i + ring - 1  # ring index of the window's first usable bar
            for j in range(first, ring):
                if st.intraday[j] and st.intraday[j - 1]:
                    n += 1
                    a, b = st.r1[j], st.r1[j - 1]
                    sx += a
                    sy += b
                    sxy += a * b
            if n >= 2:
                cov = sxy / n - (sx / n) * (sy / n)
                st.roll_last = 2.0 * np.sqrt(-cov) if cov < 0 else 0.0
            out.append(float(st.roll_last))
        else:
            out.append(_NAN)
        # share of bars without a trade
        if i >= L - 1:
            cnt = 0
            for j in range(lo, ring):
                if st.vol[j] <= 0:
                    cnt += 1
            out.append(cnt / L)
        else:
            out.append(_NAN)
        # seconds since the last bar with a trade
        if v > 0:
            st.last_trade_ts = ts_ns
        out.append(_NAN if st.last_trade_ts is None else (ts_ns - st.last_trade_ts) / 1e9)

        values = np.array(out, dtype=np.float64)
        warm = bool(np.isnan(values).any())
        self.last[symbol] = (values, warm)
        return values, warm

    def update_bar(self, bar) -> tuple[np.ndarray, bool]:
        """``update`` from any object with ``symbol, ts, session, open, high, low, close, volume``
        (``ts``/``session`` int64 ns), e.g. ``live.feed.Bar``."""
        return self.update(bar.symbol, bar.ts, bar.session, bar.open, bar.high, bar.low, bar.close, bar.volume)

    def replay(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Feed a canonical bar table bar by bar in time order (symbols interleaved, as a live feed
        delivers them) and return the rows in ``frame``'s order, laid out like ``compute_features``."""
        n = len(frame)
        order = np.lexsort((frame["symbol"].to_numpy(), frame["timestamp"].to_numpy()))
        ts = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
        sess = frame["session"].to_numpy(dtype="datetime64[ns]").view("int64")
        sym = frame["symbol"].to_numpy()
        cols = [frame[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume")]
        block = np.empty((n, self.n_features))
        warm = np.empty(n, dtype=bool)
        for r in order.tolist():
            block[r], warm[r] = self.update(sym[r], ts[r], sess[r], cols[0][r], cols[1][r], cols[2][r],
                                            cols[3][r], cols[4][r])
        out = frame[KEY_COLUMNS].reset_index(drop=True).copy()
        feats = pd.DataFrame(block, columns=self.names)
        feats["warm"] = warm
        return pd.concat([out, feats], axis=1)

    # ------------------------------------------------------------------------------------ helpers
    def _trailing_adv(self, daily: Iterable[float]) -> float:
        """Mean of the previous (up to) adv_days daily dollar volumes, summed newest first."""
        acc = 0.0
        n = 0
        for x in reversed(daily):
            acc += x
            n += 1
        return acc / n if n > 0 else _NAN

    def _tod(self, ts_ns: int, session_ns: int) -> list[float]:
        c = self._tod_cache
        if c is not None and c[0] == ts_ns and c[1] == session_ns:
            return [c[2], c[3]]
        b = self._bounds.get(session_ns)
        if b is None:
            b = self._load_bounds(session_ns)
        o, cl = b
        ang = _TWO_PI * ((ts_ns - o) / float(cl - o))
        s, co = float(np.sin(np.float64(ang))), float(np.cos(np.float64(ang)))
        self._tod_cache = (ts_ns, session_ns, s, co)
        return [s, co]

    def _load_bounds(self, session_ns: int) -> tuple[int, int]:
        day = pd.Timestamp(session_ns)
        sched = schedule(self.calendar, day - pd.Timedelta(days=7), day + pd.Timedelta(days=_SCHEDULE_DAYS))
        keys = sched.index.to_numpy(dtype="datetime64[ns]").view("int64")
        opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
        closes = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")
        for k, o, c in zip(keys.tolist(), opens.tolist(), closes.tolist()):
            self._bounds[k] = (o, c)
        b = self._bounds.get(session_ns)
        if b is None:
            raise DataError(f"session {day.date()} is not a {self.calendar} session", rule="bad_session",
                            column="session")
        return b

    def _check(self, symbol, st: _SymbolState, ts_ns, session_ns, o, h, lo, c, v) -> None:
        label = "<online bar>"
        for name, x in (("open", o), ("high", h), ("low", lo), ("close", c)):
            if not (math.isfinite(x) and x > 0):
                raise DataError(f"{symbol}: {name}={x!r} at {pd.Timestamp(ts_ns, tz='UTC')} is invalid",
                                file=label, rule="bad_value", column=name)
        if not (math.isfinite(v) and v >= 0):
            raise DataError(f"{symbol}: volume={v!r} at {pd.Timestamp(ts_ns, tz='UTC')} is invalid",
                            file=label, rule="bad_value", column="volume")
        if st.last_ts is not None and ts_ns <= st.last_ts:
            raise DataError(f"{symbol}: bar at {pd.Timestamp(ts_ns, tz='UTC')} is not after the previous bar "
                            f"({pd.Timestamp(st.last_ts, tz='UTC')}); a bar must not be fed twice or out of "
                            f"order", file=label, rule="unsorted", column="timestamp")
        if st.session is not None and session_ns < st.session:
            raise DataError(f"{symbol}: session {pd.Timestamp(session_ns).date()} is before the previous bar's "
                            f"session {pd.Timestamp(st.session).date()}", file=label, rule="unsorted",
                            column="session")
