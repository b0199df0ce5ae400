"""Precomputed per-episode numpy arrays: bars + features + tiers -> what ``step()`` reads.

All pandas work happens here, once; the environment's ``step()`` only indexes numpy arrays.

* ``session_splits``/``fold_splits``: chronological train / val / test sessions from ``cfg.data.splits``
  (one fixed split, or walk-forward folds); the first ``warmup`` sessions (the ADV window,
  ``data.tiers.adv_window_days``) never train.
* ``build_panel``: the chosen symbols aligned on one bar grid (bars a symbol lacks inside a session are
  stale: price carried, volume 0), per-session ``adv`` (USD/day), ``tier``, ``sigma_daily`` (std of
  daily close-to-close log returns) and half-spread (bps), each from **previous sessions only**, and the
  feature table standardised by the one ``features.scaler.Scaler`` (per symbol and feature, fitted on
  the training sessions; NaN -> 0, clipped to +-clip).
* ``Panel.episode(i, lookback)``: one session's arrays, with the observation window of every decision
  bar precomputed (bars of the previous session fill the window at the open; zeros before the data).
* Bar times and partial sessions: the panel keeps every bar's start time, the bar length and, per session,
  the number of bars the exchange calendar's session has at that bar size (``calendar_bar_counts``; 78
  five-minute bars on a full NYSE day, 42 on a half day). A session with fewer bars in the data is
  *partial* (``Panel.partial``, ``Episode.partial``): statistics exclude it by default (``evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..config import MarketConfig, SplitConfig, TierConfig
from ..data.quality import sorted_sessions, split_bounds
from ..data.sessions import schedule
from ..data.tiers import TIER_CODE, TIERS, liquidity_tiers, tier_as_of
from ..features.scaler import Scaler

BASE_COLUMNS = ("timestamp", "symbol", "session")


def fold_splits(sessions, splits: SplitConfig, warmup: int = 0) -> list[dict[str, np.ndarray]]:
    """Every fold's ``train``/``val``/``test`` session arrays (datetime64[ns]), in time order.

    ``fixed`` mode: one fold (fractions or explicit dates; the first ``warmup`` sessions never train).
    ``walk_forward``: ``splits.folds`` folds laid out as in ``SplitConfig``'s docstring; raises
    ``ValueError`` naming the sizes when they do not fit the sessions. Test blocks never overlap, and in
    every fold ``train < val < test`` with ``embargo`` sessions between blocks.
    """
    if splits.mode == "fixed":
        s, n_train, n_tv = split_bounds(sessions, splits)
        return [{"train": s[min(warmup, n_train):n_train], "val": s[n_train:n_tv], "test": s[n_tv:]}]
    s = sorted_sessions(sessions)
    n = len(s)
    k, e = splits.folds, splits.embargo
    usable = n - warmup
    train0 = int(np.floor(splits.train_frac * usable))
    t = splits.test_sessions or max((usable - train0 - 2 * e) // (k + 1), 0)
    v = splits.val_sessions or t
    first_test = n - k * t
    train_len0 = first_test - e - v - e - warmup
    need = warmup + 1 + 2 * e + v + k * t
    if t < 1 or v < 1 or train_len0 < 1:
        raise ValueError(
            f"data.splits (walk_forward): {k} folds x {t} test sessions + {v} validation + 2 x {e} embargo + >= 1 "
            f"training session need {need} sessions including the {warmup}-session ADV warm-up; the data has {n}")
    roll = splits.train_sessions or train_len0
    out = []
    for i in range(k):
        a = first_test + i * t
        val_lo = a - e - v
        tr_hi = val_lo - e
        tr_lo = warmup if splits.window == "expanding" else max(warmup, tr_hi - roll)
        out.append({"train": s[tr_lo:tr_hi], "val": s[val_lo:a - e], "test": s[a:a + t]})
    return out


def session_splits(sessions, splits: SplitConfig, warmup: int = 0) -> dict[str, np.ndarray]:
    """The ``train``/``val``/``test`` sessions a run uses (datetime64[ns]).

    ``fixed``: fractions of all sessions (floor), or the explicit inclusive ``train_end``/``val_end``
    dates; the first ``warmup`` sessions are dropped from ``train`` (their ADV/tier is not yet known).
    ``walk_forward``: fold ``splits.fold`` of ``fold_splits`` (the last fold when None).
    """
    folds = fold_splits(sessions, splits, warmup)
    return folds[-1 if splits.fold is None else splits.fold]


@dataclass
class Episode:
    """One session for K symbols. Row ``t`` is bar ``t`` of the session (T rows, T-1 decisions).

    ``obs_feat[t]`` is the flattened (lookback, K, F) feature window ending at bar t (float32).
    Prices USD, volume shares, ``secs`` seconds since the last trade, ``tod`` fraction of the session
    elapsed at the end of the bar (from the calendar's bar count). ``half_spread_bps``/``sigma_daily``/
    ``adv_usd`` are per symbol, known before the session.
    """

    session: str
    symbols: tuple[str, ...]
    tiers: tuple[str, ...]
    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    stale: np.ndarray
    secs: np.ndarray
    tod: np.ndarray
    obs_feat: np.ndarray
    half_spread_bps: np.ndarray
    sigma_daily: np.ndarray
    adv_usd: np.ndarray
    timestamps: np.ndarray | None = None  # (T,) bar starts, datetime64[ns] UTC (naive)
    bar_ns: int = 0  # bar length in ns (0: unknown)
    expected_bars: int = 0  # bars the exchange calendar's session has at this bar size (0: unknown)

    @property
    def n_bars(self) -> int:
        return len(self.open)

    @property
    def partial(self) -> bool:
        """Fewer bars than the calendar's session at this bar size (a data hole, the last day of a file)."""
        return 0 < self.n_bars < self.expected_bars


@dataclass
class Panel:
    symbols: tuple[str, ...]
    feature_names: tuple[str, ...]
    sessions: np.ndarray  # (S,) datetime64[ns]
    starts: np.ndarray  # (S+1,) row offsets into the grid
    open: np.ndarray  # (N, K)
    close: np.ndarray
    volume: np.ndarray
    stale: np.ndarray
    secs: np.ndarray
    feat: np.ndarray  # (N, K, F) float32, standardised, NaN -> 0, clipped
    tod: np.ndarray  # (N,) float32
    adv: np.ndarray  # (S, K) USD/day before the session
    tier: np.ndarray  # (S, K) tier names
    sigma: np.ndarray  # (S, K) daily vol before the session
    half_spread: np.ndarray  # (S, K) bps
    valid: np.ndarray  # (S,) bool: usable as an episode
    scaler: Scaler | None = None  # the standardisation applied to ``feat`` (None: raw features)
    timestamps: np.ndarray | None = None  # (N,) bar starts of the grid, datetime64[ns] UTC (naive)
    bar_ns: int = 0  # bar length in ns (median spacing inside sessions; 0: unknown)
    expected_bars: np.ndarray | None = None  # (S,) the calendar's bars per session at bar_ns (0: unknown)
    raw_feat: np.ndarray | None = field(default=None, repr=False)  # (N, K, F) float64 before standardising
    clip: float = 10.0
    _cache: dict = field(default_factory=dict, repr=False)

    def restandardized(self, scaler: Scaler) -> "Panel":
        """The same panel with ``feat`` standardised by ``scaler`` (e.g. fitted on another fold's training
        sessions); every other array is shared, the episode cache starts empty."""
        if self.raw_feat is None:
            raise ValueError("this panel keeps no raw features (built with standardize=False): nothing to "
                             "re-standardise")
        feat = standardize_features(self.raw_feat, scaler, self.symbols, self.feature_names, self.clip)
        return replace(self, feat=feat, scaler=scaler, _cache={})

    @property
    def times(self) -> np.ndarray | None:
        """``timestamps`` as int64 ns UTC (the live loop's clock), None when unknown."""
        return None if self.timestamps is None else self.timestamps.view("int64")

    @property
    def max_bars(self) -> int:
        return int(np.diff(self.starts).max())

    def partial(self) -> np.ndarray:
        """(S,) bool: sessions with fewer bars than the exchange calendar's session at this bar size."""
        if self.expected_bars is None:
            return np.zeros(len(self.sessions), bool)
        return (self.expected_bars > 0) & (np.diff(self.starts) < self.expected_bars)

    def partial_dates(self) -> list[str]:
        """The partial sessions as ``YYYY-MM-DD``."""
        return [str(np.datetime_as_string(d, unit="D")) for d in self.sessions[self.partial()]]

    def session_index(self, sessions) -> np.ndarray:
        """Indices of the given sessions that are valid episodes here (others are skipped)."""
        want = np.asarray(pd.to_datetime(np.asarray(sessions)), dtype="datetime64[ns]")
        idx = np.flatnonzero(np.isin(self.sessions, want) & self.valid)
        return idx

    def episode(self, i: int, lookback: int) -> Episode:
        key = (int(i), int(lookback))
        ep = self._cache.get(key)
        if ep is not None:
            return ep
        r0, r1 = int(self.starts[i]), int(self.starts[i + 1])
        K, F = self.feat.shape[1], self.feat.shape[2]
        lo = r0 - lookback + 1
        win = self.feat[max(lo, 0):r1]
        if lo < 0:
            win = np.concatenate([np.zeros((-lo, K, F), np.float32), win])
        windows = np.lib.stride_tricks.sliding_window_view(win, lookback, axis=0)  # (T, K, F, L)
        obs_feat = np.ascontiguousarray(windows.transpose(0, 3, 1, 2)).reshape(r1 - r0, lookback * K * F)
        ep = Episode(
            session=str(pd.Timestamp(self.sessions[i]).date()), symbols=self.symbols,
            tiers=tuple(str(t) for t in self.tier[i]),
            open=self.open[r0:r1], close=self.close[r0:r1], volume=self.volume[r0:r1],
            stale=self.stale[r0:r1], secs=self.secs[r0:r1], tod=self.tod[r0:r1],
            obs_feat=obs_feat.astype(np.float32, copy=False),
            half_spread_bps=self.half_spread[i].copy(), sigma_daily=self.sigma[i].copy(),
            adv_usd=self.adv[i].copy(),
            timestamps=self.timestamps[r0:r1] if self.timestamps is not None else None, bar_ns=self.bar_ns,
            expected_bars=int(self.expected_bars[i]) if self.expected_bars is not None else 0)
        self._cache[key] = ep
        return ep


def _comparable(col: pd.Series) -> np.ndarray:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    return col.to_numpy()


def check_features(bars: pd.DataFrame, features: pd.DataFrame) -> list[str]:
    """Feature column names; raises ``ValueError`` naming the first row where the feature table does
    not line up with the bars (contract: same rows and order, columns timestamp, symbol, session)."""
    missing = [c for c in BASE_COLUMNS if c not in features.columns]
    if missing:
        raise ValueError(f"feature table: missing columns {missing}")
    if len(features) != len(bars):
        raise ValueError(f"feature table has {len(features)} rows, bars have {len(bars)}: must be the same rows")
    for c in ("timestamp", "symbol"):
        a, b = _comparable(bars[c]), _comparable(features[c])
        bad = np.flatnonzero(a != b)
        if len(bad):
            r = int(bad[0])
            raise ValueError(f"feature table row {r}: {c}={b[r]!r} but bars have {a[r]!r} (rows must align)")
    names = [c for c in features.columns if c not in BASE_COLUMNS and c != "warm"]
    for c in names:
        if not np.issubdtype(features[c].dtype, np.number):
            raise ValueError(f"feature table column {c!r} is {features[c].dtype}, not numeric")
    if not names:
        raise ValueError("feature table has no feature columns")
    return names


def daily_sigma(bars: pd.DataFrame, window: int, default: float) -> pd.DataFrame:
    """Per symbol and session: std (ddof=1) of daily close-to-close log returns over the ``window``
    sessions before it (``default`` until five returns exist)."""
    last = bars.groupby(["symbol", "session"], sort=True)["close"].last().reset_index()
    last["ret"] = np.log(last["close"]).groupby(last["symbol"]).diff()
    prev = last.groupby("symbol")["ret"].shift(1)
    sig = prev.groupby(last["symbol"]).rolling(window, min_periods=min(5, window)).std().reset_index(level=0, drop=True)
    last["sigma"] = sig.sort_index().fillna(default).to_numpy()
    return last[["symbol", "session", "sigma"]]


def roll_half_spread_bps(bars: pd.DataFrame, window: int) -> pd.DataFrame:
    """Roll (1984) half-spread in bps per symbol and session from the previous ``window`` sessions:
    ``1e4 * sqrt(-cov(r_i, r_{i-1}))`` over consecutive traded-bar log close changes within a session
    (NaN where the autocovariance is not negative)."""
    f = bars.loc[~bars["stale"].to_numpy(), ["symbol", "session", "close"]]
    lc = np.log(f["close"].to_numpy())
    key = f["symbol"].to_numpy().astype(str).astype(object) + "|" + f["session"].astype(str).to_numpy().astype(object)
    same = np.r_[False, key[1:] == key[:-1]]
    r = np.where(same, np.r_[np.nan, np.diff(lc)], np.nan)
    same2 = np.r_[False, same[1:] & same[:-1]]
    prod = np.where(same2, r * np.r_[np.nan, r[:-1]], np.nan)
    work = pd.DataFrame({"symbol": f["symbol"].to_numpy(), "session": f["session"].to_numpy(),
                         "p": np.nan_to_num(prod), "n": (~np.isnan(prod)).astype(float)})
    g = work.groupby(["symbol", "session"], sort=True)[["p", "n"]].sum().reset_index()
    out = []
    for _, d in g.groupby("symbol", sort=False):
        ps = d["p"].shift(1).rolling(window, min_periods=1).sum()
        ns = d["n"].shift(1).rolling(window, min_periods=1).sum()
        cov = ps / ns
        out.append(pd.Series(np.where((ns > 10) & (cov < 0), 1e4 * np.sqrt(-cov.clip(upper=0)), np.nan),
                             index=d.index))
    g["half_spread_bps"] = pd.concat(out).sort_index().to_numpy() if out else []
    return g[["symbol", "session", "half_spread_bps"]]


def bar_length_ns(ts, sess_of_row) -> int:
    """The bar length: median spacing of consecutive bars inside a session (0 when no session has two)."""
    t = np.asarray(pd.to_datetime(ts, utc=True).tz_convert(None), dtype="datetime64[ns]").view("int64")
    same = sess_of_row[1:] == sess_of_row[:-1]
    if len(t) < 2 or not same.any():
        return 0
    return int(np.median(np.diff(t)[same]))


def _calendar_bounds(sessions, calendar: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(open, close) in int64 ns UTC for each session from the exchange calendar; None when unknown."""
    if calendar is None or len(sessions) == 0:
        return None
    try:
        sched = schedule(calendar, sessions[0], sessions[-1])
    except Exception:  # an unknown calendar or dates outside it
        return None
    idx = sched.index.get_indexer(pd.DatetimeIndex(sessions))
    if (idx < 0).any():
        return None
    o = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")[idx]
    c = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")[idx]
    return o, c


def calendar_bar_counts(sessions, bar_ns: int, calendar: str | None) -> np.ndarray:
    """Bars each session has in the exchange calendar at this bar size: ``ceil((close - open) / bar)``
    (78 five-minute bars on a full NYSE day, 42 on a half day); 0 for every session when unknown (no
    calendar, a session outside it, no bar size). A session with fewer bars than this is *partial*."""
    bounds = _calendar_bounds(sessions, calendar) if bar_ns > 0 else None
    if bounds is None:
        return np.zeros(len(sessions), np.int64)
    o, c = bounds
    return np.ceil((c - o) / bar_ns).astype(np.int64)


def session_fraction(ts, sess_of_row, sessions, starts, calendar: str | None) -> np.ndarray:
    """Fraction of the session elapsed at each bar's end: ``(bar end - open) / (close - open)`` from the
    exchange calendar (half days known in advance); without a calendar, bar position / bars in the
    session."""
    counts = np.diff(starts)
    N = len(ts)
    pos_in = np.arange(N) - np.repeat(starts[:-1], counts)
    fallback = ((pos_in + 1) / np.repeat(counts, counts)).astype(np.float32)
    if calendar is None or N < 2:
        return fallback
    bar = bar_length_ns(ts, sess_of_row)
    bounds = _calendar_bounds(sessions, calendar) if bar > 0 else None
    if bounds is None:
        return fallback
    t = np.asarray(pd.to_datetime(ts, utc=True).tz_convert(None), dtype="datetime64[ns]").view("int64")
    o, c = np.repeat(bounds[0], counts), np.repeat(bounds[1], counts)
    return np.clip((t + bar - o) / (c - o), 0.0, 1.0).astype(np.float32)


def build_panel(bars: pd.DataFrame, features: pd.DataFrame, symbols: list[str], *,
                universe: pd.DataFrame | None = None, market: MarketConfig | None = None,
                tiers: TierConfig | None = None, train_sessions=None, standardize: bool = True,
                clip: float = 10.0, calendar: str | None = "XNYS", scaler: Scaler | None = None) -> Panel:
    """Align ``symbols`` of a canonical bar table and its feature table (see module docstring).

    Standardisation: ``scaler`` (fitted on training sessions, e.g. the feature store's), else one fitted
    here on ``train_sessions``."""
    market = market or MarketConfig()
    tiers = tiers or TierConfig()
    names = check_features(bars, features)
    known = set(bars["symbol"].unique())
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise ValueError(f"symbols not in the bars: {unknown}")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"duplicate symbols: {symbols}")
    mask = bars["symbol"].isin(symbols).to_numpy()
    b = bars.loc[mask].reset_index(drop=True)
    fv = features.loc[mask, names].to_numpy(dtype=np.float64)
    K, F = len(symbols), len(names)

    # the bar grid: every timestamp any chosen symbol has, each with its session
    grid = b[["timestamp", "session"]].drop_duplicates("timestamp").sort_values("timestamp")
    ts = grid["timestamp"].to_numpy()
    sess_of_row = grid["session"].to_numpy(dtype="datetime64[ns]")
    N = len(ts)
    row = np.searchsorted(ts, b["timestamp"].to_numpy())
    col = pd.Index(symbols).get_indexer(b["symbol"])

    def pivot(values, fill=np.nan, dtype=np.float64):
        out = np.full((N, K), fill, dtype=dtype)
        out[row, col] = values
        return out

    close = pivot(b["close"].to_numpy())
    present = ~np.isnan(close)
    close = pd.DataFrame(close).ffill().to_numpy()  # carried price for bars a symbol lacks
    open_ = pivot(b["open"].to_numpy())
    open_ = np.where(present, open_, close)
    volume = np.where(present, pivot(b["volume"].to_numpy()), 0.0)
    stale = np.where(present, pivot(b["stale"].to_numpy(), fill=True, dtype=bool), True)
    secs = pivot(b["secs_since_trade"].to_numpy())
    secs = np.where(present, secs, np.nan)
    secs = np.nan_to_num(pd.DataFrame(secs).ffill().to_numpy(), nan=1e9)
    feat = np.full((N, K, F), np.nan)
    feat[row, col, :] = fv

    sessions, starts = np.unique(sess_of_row, return_index=True)
    starts = np.r_[starts, N]
    S = len(sessions)
    counts = np.diff(starts)
    tod = session_fraction(ts, sess_of_row, sessions, starts, calendar)

    # per-session knowledge from previous sessions only
    def per_session(table: pd.DataFrame, value: str, fill=np.nan, dtype=np.float64) -> np.ndarray:
        out = np.full((S, K), fill, dtype=dtype)
        t = table[table["symbol"].isin(symbols)]
        si = np.searchsorted(sessions, t["session"].to_numpy(dtype="datetime64[ns]"))
        ok = (si < S) & (sessions[np.minimum(si, S - 1)] == t["session"].to_numpy(dtype="datetime64[ns]"))
        out[si[ok], pd.Index(symbols).get_indexer(t["symbol"])[ok]] = t[value].to_numpy()[ok]
        return out

    lt = liquidity_tiers(b, tiers)
    adv = per_session(lt, "adv")
    tier = per_session(lt, "tier", fill="illiquid", dtype=object)
    sigma = per_session(daily_sigma(b, market.sigma_window_days, market.default_sigma_daily), "sigma")
    sigma = np.where(np.isnan(sigma), market.default_sigma_daily, sigma)
    tier_hs = np.vectorize(lambda t: market.tier_half_spread_bps.get(t, np.nan), otypes=[float])(tier)
    if np.isnan(tier_hs).any():
        raise ValueError(f"market.tier_half_spread_bps needs keys {list(TIERS)}, has "
                         f"{sorted(market.tier_half_spread_bps)}")
    half_spread = tier_hs
    if market.half_spread_source == "universe" and universe is not None and "half_spread_bps" in universe:
        u = universe.set_index("symbol")["half_spread_bps"]
        per_sym = np.array([float(u.get(s, np.nan)) for s in symbols])
        half_spread = np.where(np.isnan(per_sym)[None, :], tier_hs, per_sym[None, :])
    elif market.half_spread_source == "estimate":
        est = per_session(roll_half_spread_bps(b, market.sigma_window_days), "half_spread_bps")
        half_spread = np.where(np.isnan(est), tier_hs, est)

    first_rows = starts[:-1]
    valid = (counts >= 2) & np.isfinite(adv).all(1) & (adv > 0).all(1) & ~np.isnan(close[first_rows]).any(1)

    raw = None
    if standardize:
        if scaler is None:
            if train_sessions is None:
                raise ValueError("standardize=True needs a scaler or train_sessions (statistics from "
                                 "training sessions only)")
            try:
                scaler = Scaler.fit(features.loc[mask].reset_index(drop=True), train_sessions, by_symbol=True)
            except ValueError as e:
                raise ValueError(f"no training-session rows to fit the feature standardisation on ({e})") from None
        raw = feat
    else:
        scaler = None
    bar_ns = bar_length_ns(ts, sess_of_row)
    times = np.asarray(pd.to_datetime(ts, utc=True).tz_convert(None), dtype="datetime64[ns]")
    return Panel(tuple(symbols), tuple(names), sessions, starts, open_, close, volume, stale, secs,
                 standardize_features(feat, scaler, symbols, names, clip), tod, adv, tier, sigma, half_spread,
                 valid, scaler, times, bar_ns, calendar_bar_counts(sessions, bar_ns, calendar), raw, clip)


def standardize_features(raw: np.ndarray, scaler: Scaler | None, symbols, names, clip: float) -> np.ndarray:
    """``(raw - mean) / std`` per symbol and feature (``scaler``; None: raw), NaN -> 0, clipped to
    +-``clip``, float32: the observation features of a panel."""
    feat = raw
    if scaler is not None:
        mu, sd = scaler.arrays(list(symbols), list(names))
        feat = (raw - mu[None]) / sd[None]
    return np.clip(np.nan_to_num(feat, nan=0.0, posinf=clip, neginf=-clip), -clip, clip).astype(np.float32)


def pick_symbols(bars: pd.DataFrame, n: int, universe: pd.DataFrame | None, tiers: TierConfig,
                 as_of) -> list[str]:
    """``n`` symbols round-robin across tiers (liquid, mid, illiquid, liquid, ...), alphabetical within a
    tier. Tiers from the universe table when it has them, else as of ``as_of`` (previous sessions)."""
    if universe is not None and "tier" in universe:
        tab = universe[["symbol", "tier"]]
    else:
        tab = tier_as_of(bars, as_of, tiers)[["symbol", "tier"]]
    groups = [sorted(tab.loc[tab["tier"] == t, "symbol"].astype(str)) for t in TIERS]
    out: list[str] = []
    while len(out) < n and any(groups):
        for g in groups:
            if g and len(out) < n:
                out.append(g.pop(0))
    if len(out) < n:
        raise ValueError(f"asked for {n} symbols, the data has {len(out)}")
    return out


__all__ = ["Episode", "Panel", "TIER_CODE", "build_panel", "check_features", "daily_sigma", "fold_splits",
           "pick_symbols", "roll_half_spread_bps", "session_splits", "standardize_features"]
