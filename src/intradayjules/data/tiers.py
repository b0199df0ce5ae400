"""Liquidity tiers: the one function that decides how liquid a symbol is on a date.

A symbol's tier on session ``d`` comes from its average daily dollar volume (ADV) over the
``adv_window_days`` sessions *before* ``d`` (``d`` itself excluded: its volume is not known when it
opens). Thresholds (``TierConfig``): ADV >= ``liquid_min_adv`` is ``liquid``; ADV < ``illiquid_max_adv``
is ``illiquid``; between is ``mid``. A symbol with fewer than ``min_history_days`` sessions of history
has no ADV yet and is treated as ``illiquid`` (the conservative choice for a name nobody has seen trade).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import TierConfig

TIERS = ("liquid", "mid", "illiquid")
TIER_CODE = {t: i for i, t in enumerate(TIERS)}


def tier_of(adv: np.ndarray | float, cfg: TierConfig | None = None) -> np.ndarray:
    """Tier names for ADV values in USD/day (NaN -> 'illiquid')."""
    cfg = cfg or TierConfig()
    adv = np.asarray(adv, dtype=float)
    out = np.where(adv >= cfg.liquid_min_adv, "liquid", np.where(adv >= cfg.illiquid_max_adv, "mid", "illiquid"))
    return np.where(np.isnan(adv), "illiquid", out)


def daily_dollar_volume(bars: pd.DataFrame) -> pd.DataFrame:
    """Per symbol and session: dollar volume (sum of close * volume), shares, bars and stale bars.

    Sorted by symbol, then session. Works on any row order; a canonical table (sorted by symbol, time) is
    summed in one pass over runs of equal (symbol, session), without a groupby's copies."""
    codes, uniques = pd.factorize(bars["symbol"], sort=True)
    sess = bars["session"].to_numpy(dtype="datetime64[ns]").view("int64")
    n = len(codes)
    order = None
    if n > 1 and ((np.diff(codes) < 0).any() or ((codes[1:] == codes[:-1]) & (sess[1:] < sess[:-1])).any()):
        order = np.lexsort((sess, codes))
        codes, sess = codes[order], sess[order]

    def col(name, dtype=np.float64):
        x = bars[name].to_numpy(dtype=dtype)
        return x[order] if order is not None else x

    close, vol, stale = col("close"), col("volume"), col("stale", bool)
    if n == 0:
        return pd.DataFrame({"symbol": pd.Series([], dtype=object), "session": pd.Series([], dtype="datetime64[ns]"),
                             "dollar_volume": [], "volume": [], "bars": [], "stale_bars": []})
    change = np.ones(n, bool)
    change[1:] = (codes[1:] != codes[:-1]) | (sess[1:] != sess[:-1])
    starts = np.flatnonzero(change)
    return pd.DataFrame({
        "symbol": np.asarray(uniques, dtype=object)[codes[starts]],
        "session": sess[starts].view("datetime64[ns]"),
        "dollar_volume": np.add.reduceat(close * vol, starts),
        "volume": np.add.reduceat(vol, starts),
        "bars": np.diff(np.r_[starts, n]),
        "stale_bars": np.add.reduceat(stale.astype(np.int64), starts),
    })


def trailing_adv(daily: pd.DataFrame, cfg: TierConfig | None = None) -> pd.DataFrame:
    """Add ``adv`` (known before each session: mean of the previous ``adv_window_days`` sessions) and
    ``tier`` to a ``daily_dollar_volume`` table."""
    cfg = cfg or TierConfig()
    out = daily.sort_values(["symbol", "session"]).reset_index(drop=True)
    prev = out.groupby("symbol", sort=False)["dollar_volume"].shift(1)
    out["adv"] = (
        prev.groupby(out["symbol"], sort=False)
        .rolling(cfg.adv_window_days, min_periods=cfg.min_history_days)
        .mean()
        .reset_index(level=0, drop=True)
        .sort_index()
    )
    out["tier"] = tier_of(out["adv"].to_numpy(), cfg)
    return out


def liquidity_tiers(bars: pd.DataFrame, cfg: TierConfig | None = None) -> pd.DataFrame:
    """Per symbol and session: ``adv`` and ``tier`` as known at that session's open."""
    return trailing_adv(daily_dollar_volume(bars), cfg)


def tier_as_of(bars: pd.DataFrame, date, cfg: TierConfig | None = None) -> pd.DataFrame:
    """Tier of every symbol on ``date`` using sessions strictly before it (per symbol: symbol, adv, tier).

    ``date`` may lie after the data's end (e.g. "tomorrow"): the ADV then uses the last sessions seen.
    """
    cfg = cfg or TierConfig()
    d = pd.Timestamp(date).tz_localize(None).normalize()
    daily = daily_dollar_volume(bars)
    daily = daily[daily["session"] < d]
    rows = []
    for sym, g in daily.groupby("symbol", sort=True):
        tail = g["dollar_volume"].to_numpy()[-cfg.adv_window_days:]
        adv = float(tail.mean()) if len(tail) >= cfg.min_history_days else float("nan")
        rows.append((sym, adv))
    out = pd.DataFrame(rows, columns=["symbol", "adv"])
    out["tier"] = tier_of(out["adv"].to_numpy(), cfg)
    return out
