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
    """Per symbol and session: dollar volume (sum of close * volume), shares, bars and stale bars."""
    dv = bars["close"].to_numpy() * bars["volume"].to_numpy()
    work = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "session": bars["session"].to_numpy(),
                         "dollar_volume": dv, "volume": bars["volume"].to_numpy(),
                         "stale": bars["stale"].to_numpy()})
    g = work.groupby(["symbol", "session"], sort=True)
    return pd.DataFrame({"dollar_volume": g["dollar_volume"].sum(), "volume": g["volume"].sum(),
                         "bars": g["stale"].size(), "stale_bars": g["stale"].sum()}).reset_index()


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
