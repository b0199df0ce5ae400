"""From canonical bars to the feature table, and the training-only scaler.

``compute_features(frame, cfg)`` returns one row per bar, in the bars' row order, with columns
``timestamp, symbol, session``, one float64 column per ``feature_names(cfg)`` and a bool ``warm``.

Conventions (docs/features.md has the full table):

* Every feature at row t uses bars of the same symbol at or before t only (no look-ahead). Indicators
  that are not session-bound (EMA, RSI, returns, rolling windows) run over each symbol's whole series,
  across session boundaries. The VWAP restarts every session; time of day is measured within the
  bar's own exchange session (calendar open/close, known in advance); the ADV uses sessions strictly
  before the bar's session.
* Warm-up: a value that needs more history than the symbol has is NaN, and ``warm`` is True on every
  row where any feature is NaN (so a row with ``warm == False`` is complete). In practice the warm
  rows are the first session of each symbol (no ADV yet) plus, if longer, the longest window's bars.
  Rows are never dropped here: the caller filters on ``warm``.

Start-up: importing this module (and ``store``) loads neither numba (the kernels compile or load on
their first call, ``indicators.njit``) nor the pydantic config schema (~0.1 s; ``_default_cfg``
imports it only when no config is passed), so a feature-store hit in a fresh process costs little
more than decoding the Parquet file (``benchmarks/features.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from . import indicators as ind
from .scaler import Scaler  # noqa: F401  (re-exported: features.pipeline.Scaler)

if TYPE_CHECKING:
    from ..config import FeaturesConfig

PIPELINE_VERSION = 1  # bump when compute_features changes numbers without an indicator version change
KEY_COLUMNS = ["timestamp", "symbol", "session"]


def _default_cfg() -> FeaturesConfig:
    from ..config import FeaturesConfig  # the pydantic schema: only when no config is given (module docstring)

    return FeaturesConfig()


def feature_names(cfg: FeaturesConfig | None = None) -> list[str]:
    """Feature column names in output order for a config."""
    cfg = cfg or _default_cfg()
    names = [f"rsi_{cfg.rsi_window}"]
    if cfg.price_levels:
        names += [f"ema_{w}" for w in cfg.ema_windows]
    names += [f"ema_dev_{w}" for w in cfg.ema_windows]
    if cfg.price_levels:
        names.append("vwap")
    names += ["vwap_dev", "tod_sin", "tod_cos"]
    names += [f"logret_{k}" for k in cfg.return_horizons]
    L = cfg.liquidity_window
    names += [f"rv_{cfg.vol_window}", f"dv_adv_{L}", f"amihud_{L}", f"roll_spread_{L}", f"stale_share_{L}",
              "secs_since_trade"]
    return names


def feature_spec(cfg: FeaturesConfig | None = None, calendar: str = "XNYS") -> dict:
    """What determines the numbers: the indicator settings (not ``lookback`` or ``store_dir``, which
    do not change a feature value), the calendar, and the code versions. Part of the store key."""
    cfg = cfg or _default_cfg()
    settings = cfg.model_dump(mode="json", exclude={"lookback", "store_dir"})
    return {"settings": settings, "calendar": calendar, "pipeline_version": PIPELINE_VERSION,
            "indicator_versions": dict(sorted(ind.VERSIONS.items())), "columns": feature_names(cfg)}


def _check_input(frame: pd.DataFrame, label: str) -> None:
    need = ["timestamp", "symbol", "open", "high", "low", "close", "volume", "session"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(f"feature input lacks columns {missing}", file=label, rule="missing_column")
    if str(frame["timestamp"].dtype) != "datetime64[ns, UTC]":
        raise DataError(f"timestamp must be datetime64[ns, UTC], is {frame['timestamp'].dtype}", file=label,
                        rule="bad_timestamp", column="timestamp")
    for c in ("open", "high", "low", "close", "volume"):
        v = frame[c].to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(v) | ((v < 0) if c == "volume" else ~(v > 0)))
        if len(bad):
            r = int(bad[0])
            raise DataError(f"{frame['symbol'].iloc[r]}: {c}={v[r]!r} at {frame['timestamp'].iloc[r]} is invalid "
                            f"({len(bad)} such rows)", file=label, line=r + 1, rule="bad_value", column=c)


def _order_check(sym_codes: np.ndarray, t: np.ndarray, frame: pd.DataFrame, label: str) -> None:
    """Rows must be grouped by symbol and strictly increasing in time within a symbol."""
    if len(t) < 2:
        return
    same = sym_codes[1:] == sym_codes[:-1]
    bad = np.flatnonzero(same & (t[1:] <= t[:-1]))
    if len(bad):
        r = int(bad[0]) + 1
        raise DataError(f"{frame['symbol'].iloc[r]}: bar at {frame['timestamp'].iloc[r]} is not after the previous "
                        f"bar; features need bars sorted by symbol then time", file=label, line=r + 1, rule="unsorted")
    starts = ind.segment_starts(sym_codes)
    if len(np.unique(sym_codes[starts])) != len(starts):
        raise DataError("a symbol's bars are not contiguous; sort by symbol then time", file=label, rule="unsorted")


def _session_bounds(session: np.ndarray, calendar: str) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the UTC open and close (int64 ns) of its exchange session."""
    from ..data.sessions import schedule  # here, not at the top: a feature-store hit never needs it (start-up)

    days = np.unique(session)
    sched = schedule(calendar, pd.Timestamp(days[0]), pd.Timestamp(days[-1]))
    idx = np.searchsorted(sched.index.to_numpy(dtype="datetime64[ns]"), days)
    found = (idx < len(sched)) & (sched.index.to_numpy(dtype="datetime64[ns]")[np.clip(idx, 0, len(sched) - 1)] == days)
    if not found.all():
        raise DataError(f"session {pd.Timestamp(days[~found][0]).date()} is not a {calendar} session",
                        rule="bad_session", column="session")
    opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")[idx]
    closes = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")[idx]
    day_pos = np.searchsorted(days, session)
    return opens[day_pos], closes[day_pos]


def compute_features(frame: pd.DataFrame, cfg: FeaturesConfig | None = None, *, calendar: str = "XNYS",
                     label: str = "<bars>") -> pd.DataFrame:
    """Feature table for a canonical bar table (see the module docstring for conventions).

    ``frame`` must be sorted by symbol then time (as every loader returns it); otherwise a
    ``DataError`` names the first offending row. ``calendar`` (the data's exchange calendar) gives
    session open and close for the time-of-day features.
    """
    cfg = cfg or _default_cfg()
    _check_input(frame, label)
    n = len(frame)
    names = feature_names(cfg)
    if n == 0:
        out = frame[KEY_COLUMNS].reset_index(drop=True).copy()
        for c in names:
            out[c] = np.zeros(0)
        out["warm"] = np.zeros(0, dtype=bool)
        return out
    sym_codes, _ = pd.factorize(frame["symbol"], sort=False)
    sym_codes = sym_codes.astype(np.int64)
    t = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    _order_check(sym_codes, t, frame, label)
    sess = frame["session"].to_numpy(dtype="datetime64[ns]")
    sess_i = sess.view("int64")
    o, h, lo, c, v = (frame[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume"))

    starts = ind.segment_starts(sym_codes)
    change = np.zeros(n, dtype=bool)
    change[starts] = True
    change[1:] |= sess_i[1:] != sess_i[:-1]
    sess_starts = np.flatnonzero(change).astype(np.int64)

    # every feature is written into its row of one (features, bars) block as soon as it is computed;
    # the DataFrame is built on that block without a copy (pandas keeps a float block as (columns, rows))
    block = np.empty((len(names), n), dtype=np.float64)
    row = {name: j for j, name in enumerate(names)}

    def put(name: str, values) -> None:
        if name in row:
            block[row[name]] = values

    put(f"rsi_{cfg.rsi_window}", ind.rsi(c, starts, cfg.rsi_window))
    for w in cfg.ema_windows:
        e = ind.ema(c, starts, w)
        put(f"ema_{w}", e)
        np.divide(c, e, out=e)
        e -= 1.0
        put(f"ema_dev_{w}", e)
        del e
    vwap = ind.session_vwap(h, lo, c, v, sess_starts)
    put("vwap", vwap)
    np.divide(c, vwap, out=vwap)
    vwap -= 1.0
    put("vwap_dev", vwap)
    del vwap
    open_ns, close_ns = _session_bounds(sess, calendar)
    tod_sin, tod_cos = ind.time_of_day(t, open_ns, close_ns)
    del open_ns, close_ns
    put("tod_sin", tod_sin)
    put("tod_cos", tod_cos)
    del tod_sin, tod_cos
    r1 = ind.log_return(c, starts, 1)
    for k in cfg.return_horizons:
        put(f"logret_{k}", r1 if k == 1 else ind.log_return(c, starts, k))
    put(f"rv_{cfg.vol_window}", ind.realized_vol(r1, starts, cfg.vol_window))
    L = cfg.liquidity_window
    adv = ind.adv_before_session(c, v, sym_codes, sess_starts, cfg.adv_days)
    put(f"dv_adv_{L}", ind.dollar_volume_adv(c, v, adv, starts, L))
    del adv
    put(f"amihud_{L}", ind.amihud(r1, c, v, starts, L))
    put(f"roll_spread_{L}", ind.roll_spread(r1, change, starts, L))
    del r1
    put(f"stale_share_{L}", ind.stale_share(v, starts, L))
    put("secs_since_trade", ind.secs_since_trade(t, v, starts))

    warm = np.zeros(n, dtype=bool)
    for j in range(len(names)):
        warm |= np.isnan(block[j])
    feats = pd.DataFrame(block.T, columns=names, copy=False)
    for i, key in enumerate(KEY_COLUMNS):
        feats.insert(i, key, frame[key].array)  # shares the input's memory; copy-on-write keeps them apart
    feats["warm"] = warm
    return feats


def train_sessions(sessions, splits) -> list[pd.Timestamp]:
    """The training sessions of a chronological split (``cfg.data.splits``): sessions up to
    ``train_end`` (inclusive) if set, else the first ``train_frac`` of the sorted unique sessions
    (at least one)."""
    days = pd.DatetimeIndex(pd.to_datetime(pd.unique(np.asarray(sessions)))).sort_values()
    if splits.train_end is not None:
        return list(days[days <= pd.Timestamp(splits.train_end)])
    k = max(1, int(np.floor(len(days) * splits.train_frac)))
    return list(days[:k])
