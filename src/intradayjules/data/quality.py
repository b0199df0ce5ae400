"""What ``data validate`` reports beyond the rules: coverage, holes, one-window liquidity, tier changes,
regime shifts, and whether the sessions are enough for a run.

* :func:`summarize`: one row per symbol. Whole-file columns: ``first``, ``last``, ``sessions`` (with bars),
  ``holes`` and ``missing_sessions`` (not filled, see ``gaps.py``), ``bars`` (rows of the table),
  ``coverage`` (input bars / the calendar's bars from the first to the last session; filled bars never
  count) and ``stale_share`` (stale rows / rows). Liquidity columns, all from **one window**: ``adv`` (mean
  daily dollar volume of the symbol's last ``adv_window_days`` sessions before ``as_of``, default the day
  after the data end), the ``tier`` that ADV gives (``tiers.tier_of``, the same rule as everywhere), and
  ``window`` (the sessions it covers).
* :func:`tier_changes`: per symbol, the sessions where the tier at the open (ADV of the previous
  ``adv_window_days`` sessions, ``tiers.liquidity_tiers``) differs from the session before.
* :func:`regime_shifts`: per symbol and session ``k``, the median of a daily series over the
  ``window`` sessions before ``k`` and over the ``window`` sessions from ``k`` on; where their ratio
  (either way) exceeds ``factor``, a :class:`Shift` names the session, placed where the mean of the log
  series changes most between the two windows (the medians form a plateau around a step). Two series:
  daily dollar volume and the share of the session's bars that traded (1 - share of empty bars; a
  single-venue feed is sparse, a consolidated one is not). Only sessions the input had bars in count.
* :func:`split_counts`: the sessions a run would train, validate and test on, by the same rule as
  ``env.episodes.session_splits`` (tested to agree), and the error a run would stop with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import SplitConfig, TierConfig
from .loaders import Bars
from .tiers import daily_dollar_volume, liquidity_tiers, tier_of


def daily_table(bars: Bars) -> pd.DataFrame:
    """``Bars.daily`` (what the input held per symbol and session), or the same from the table itself."""
    if bars.daily is not None:
        return bars.daily
    d = daily_dollar_volume(bars.frame)
    return pd.DataFrame({"symbol": d["symbol"], "session": d["session"], "bars": d["bars"],
                         "traded_bars": d["bars"] - d["stale_bars"], "volume": d["volume"],
                         "dollar_volume": d["dollar_volume"], "expected_bars": d["bars"]})


def summarize(bars: Bars, tier_cfg: TierConfig | None = None, as_of=None) -> pd.DataFrame:
    """Per-symbol table (module docstring)."""
    cfg = tier_cfg or TierConfig()
    f = bars.frame
    fd = daily_dollar_volume(f)
    end = pd.Timestamp(f["session"].max())
    as_of = pd.Timestamp(as_of).normalize() if as_of is not None else end + pd.Timedelta(days=1)
    cov = bars.coverage.set_index("symbol") if bars.coverage is not None else None
    rows = []
    for sym, g in fd.groupby("symbol", sort=True):
        before = g[g["session"] < as_of]
        tail = before.tail(cfg.adv_window_days)
        adv = float(tail["dollar_volume"].mean()) if len(tail) >= cfg.min_history_days else float("nan")
        window = (f"{len(tail)} sessions {pd.Timestamp(tail['session'].iloc[0]).date()}.."
                  f"{pd.Timestamp(tail['session'].iloc[-1]).date()}" if len(tail) else "none")
        row = {"symbol": sym, "first": pd.Timestamp(g["session"].iloc[0]), "last": pd.Timestamp(g["session"].iloc[-1]),
               "sessions": int(len(g)), "holes": 0, "missing_sessions": 0, "filled_sessions": 0,
               "bars": int(g["bars"].sum()), "coverage": float("nan"),
               "stale_share": float(g["stale_bars"].sum() / max(g["bars"].sum(), 1)),
               "adv": adv, "tier": str(tier_of(adv, cfg)), "window": window}
        if cov is not None and sym in cov.index:
            c = cov.loc[sym]
            row.update(sessions=int(c["sessions"]), holes=int(c["holes"]), missing_sessions=int(c["missing_sessions"]),
                       filled_sessions=int(c["filled_sessions"]),
                       coverage=float(c["input_bars"] / c["expected_bars"]) if c["expected_bars"] else float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def tier_changes(bars: Bars, tier_cfg: TierConfig | None = None) -> pd.DataFrame:
    """``symbol, session, from_tier, to_tier, adv``: each change of the tier known at a session's open."""
    cfg = tier_cfg or TierConfig()
    lt = liquidity_tiers(bars.frame, cfg)
    lt = lt[lt["adv"].notna()]
    prev = lt.groupby("symbol", sort=False)["tier"].shift(1)
    ch = lt[prev.notna() & (lt["tier"] != prev)]
    return pd.DataFrame({"symbol": ch["symbol"].to_numpy(), "session": ch["session"].to_numpy(),
                         "from_tier": prev[ch.index].to_numpy(), "to_tier": ch["tier"].to_numpy(),
                         "adv": ch["adv"].to_numpy()})


@dataclass
class Shift:
    """A level shift of one daily series of one symbol, first visible on ``session``."""

    symbol: str
    series: str          # "dollar_volume" or "traded_share"
    session: pd.Timestamp
    before: float        # median over the window before
    after: float         # median over the window from the session on
    window: int

    @property
    def factor(self) -> float:
        if self.before <= 0:
            return float("inf")
        return self.after / self.before

    def __str__(self) -> str:
        if self.series == "dollar_volume":
            what = f"daily dollar volume x{self.factor:.3g} (${self.before:,.0f} -> ${self.after:,.0f})"
        else:
            what = f"share of bars that traded x{self.factor:.3g} ({self.before:.0%} -> {self.after:.0%})"
        return (f"{self.symbol}: {what} from {self.session.date()} (medians of {self.window} sessions before and "
                "after): a feed or data-source change? Figures across it are not comparable")


def _largest_shift(x: np.ndarray, w: int, factor: float) -> tuple[int, float, float] | None:
    """The session ``k`` where the medians of ``x[k-w:k]`` and ``x[k:k+w]`` differ by more than ``factor``
    (ratio either way), placed where the mean log level changes most (medians plateau around a step)."""
    n = len(x)
    if n < 2 * w:
        return None
    med = np.median(np.lib.stride_tricks.sliding_window_view(x, w), axis=1)  # med[j] = median of x[j:j+w]
    before, after = med[: n - 2 * w + 1], med[w:]      # for k = w .. n-w: x[k-w:k] vs x[k:k+w]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((before > 0) & (after > 0), np.maximum(after / before, before / after), np.inf)
    ratio = np.where((before <= 0) & (after <= 0), 1.0, ratio)
    big = ratio > factor
    if not big.any():
        return None
    eps = 1e-9 * max(float(np.max(x)), 1e-300)
    lx = np.log(np.maximum(x, 0) + eps)
    mean = np.convolve(lx, np.ones(w) / w, mode="valid")   # mean[j] = mean of lx[j:j+w]
    step = np.abs(mean[w:] - mean[: n - 2 * w + 1])
    j = int(np.argmax(np.where(big, step, -np.inf)))
    return j + w, float(before[j]), float(after[j])


def regime_shifts(bars: Bars, window: int = 20, factor: float = 5.0) -> list[Shift]:
    """The largest shift of each series per symbol, where it exceeds ``factor`` (module docstring)."""
    d = daily_table(bars)
    d = d[d["bars"] > 0]
    out: list[Shift] = []
    for sym, g in d.groupby("symbol", sort=True):
        sess = pd.DatetimeIndex(g["session"].to_numpy())
        series = {"dollar_volume": g["dollar_volume"].to_numpy(dtype=float),
                  "traded_share": (g["traded_bars"] / g["expected_bars"].clip(lower=1)).to_numpy(dtype=float)}
        for name, x in series.items():
            hit = _largest_shift(x, window, factor)
            if hit is not None:
                out.append(Shift(str(sym), name, sess[hit[0]], hit[1], hit[2], window))
    return out


@dataclass
class SplitCounts:
    sessions: int
    warmup: int
    train: int
    val: int
    test: int

    def problem(self) -> str | None:
        """The error a run would stop with (None: a run can start)."""
        if self.train == 0:
            return (f"{self.sessions} sessions leave no training session after the {self.warmup}-session ADV warm-up "
                    "(a run stops here): use more data or change data.splits / data.tiers.adv_window_days")
        return None

    def warnings(self) -> list[str]:
        out = []
        if self.val == 0:
            out.append("no validation sessions (data.splits.val_frac / val_end): early stopping and tuning have none")
        if self.test == 0:
            out.append("no test sessions: nothing is left to evaluate on")
        return out


def sorted_sessions(sessions) -> np.ndarray:
    """Sorted unique session dates as datetime64[ns] (the order every split rule counts in)."""
    return np.unique(np.asarray(pd.to_datetime(np.asarray(sessions)), dtype="datetime64[ns]"))


def split_bounds(sessions, splits: SplitConfig) -> tuple[np.ndarray, int, int]:
    """The one chronological split rule: sorted unique sessions (datetime64[ns]), the end of train and
    the end of validation (indices). Fractions of all sessions (floor), or the explicit inclusive
    ``train_end``/``val_end`` dates when given. ``env.episodes.session_splits`` uses it too."""
    s = sorted_sessions(sessions)
    n = len(s)
    if splits.train_end is not None:
        n_train = int(np.searchsorted(s, np.datetime64(splits.train_end, "ns"), side="right"))
    else:
        n_train = int(np.floor(splits.train_frac * n))
    if splits.val_end is not None:
        n_tv = int(np.searchsorted(s, np.datetime64(splits.val_end, "ns"), side="right"))
    else:
        n_tv = n_train + int(np.floor(splits.val_frac * n))
    return s, n_train, max(n_tv, n_train)


def split_counts(sessions, splits: SplitConfig, warmup: int) -> SplitCounts:
    """Train / val / test session counts by :func:`split_bounds` (as ``env.episodes.session_splits``)."""
    s, n_train, n_tv = split_bounds(sessions, splits)
    n = len(s)
    return SplitCounts(n, warmup, max(n_train - min(warmup, n_train), 0), n_tv - n_train, n - n_tv)
