"""Independent reference implementations (pandas, per symbol, written from the definitions in
docs/features.md, not from the kernels) and helpers shared by the feature tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ta_session_vwap(frame: pd.DataFrame) -> pd.Series:
    """The session VWAP from ``ta.volume.VolumeWeightedAveragePrice``, which is a *rolling* VWAP of a
    fixed window. At the k-th bar of a session (k = 0, 1, ...), ta's VWAP with window k + 1 over the
    symbol's whole series covers exactly that session's bars 0..k, so it equals a VWAP that restarts
    each session. One ta call per symbol and window length; every row is compared. NaN where the
    session has not traded yet (ta divides 0 by 0)."""
    from ta.volume import VolumeWeightedAveragePrice

    out = pd.Series(np.nan, index=frame.index)
    k = frame.groupby(["symbol", "session"], sort=False).cumcount()
    for _, g in frame.groupby("symbol", sort=False):
        kg = k.loc[g.index]
        for w in range(1, int(kg.max()) + 2):
            rows = kg.index[kg.to_numpy() == w - 1]
            v = VolumeWeightedAveragePrice(g["high"], g["low"], g["close"], g["volume"], window=w)
            out.loc[rows] = v.volume_weighted_average_price().loc[rows].to_numpy()
    return out


def per_symbol(frame: pd.DataFrame, fn) -> pd.Series:
    """Apply ``fn(group) -> Series`` per symbol and return it aligned to ``frame``."""
    parts = [fn(g) for _, g in frame.groupby("symbol", sort=False)]
    return pd.concat(parts).reindex(frame.index)


def ref_log_return(g: pd.DataFrame, k: int) -> pd.Series:
    return np.log(g["close"] / g["close"].shift(k))


def ref_realized_vol(g: pd.DataFrame, w: int) -> pd.Series:
    r = np.log(g["close"] / g["close"].shift(1))
    return np.sqrt((r**2).rolling(w, min_periods=w).sum())


def ref_stale_share(g: pd.DataFrame, w: int) -> pd.Series:
    return (g["volume"] == 0).astype(float).rolling(w, min_periods=w).mean()


def ref_amihud(g: pd.DataFrame, w: int) -> pd.Series:
    r = np.log(g["close"] / g["close"].shift(1)).abs()
    dv = g["close"] * g["volume"]
    s_r = r.rolling(w, min_periods=w).sum()
    s_dv = dv.rolling(w, min_periods=w).sum()
    val = (1e6 * s_r / s_dv).where(s_dv > 0)
    # a window with no trade carries the last defined value; NaN only before the first
    out = val.ffill()
    return out.where(s_r.notna())


def ref_roll(g: pd.DataFrame, w: int) -> pd.Series:
    r = np.log(g["close"] / g["close"].shift(1)).to_numpy()
    first = (g["session"] != g["session"].shift(1)).to_numpy()
    n = len(g)
    out = np.full(n, np.nan)
    last = np.nan
    for i in range(w, n):
        xs, ys = [], []
        for j in range(i - w + 1, i + 1):
            if j >= 2 and not first[j] and not first[j - 1]:
                xs.append(r[j])
                ys.append(r[j - 1])
        if len(xs) >= 2:
            cov = np.mean(np.array(xs) * np.array(ys)) - np.mean(xs) * np.mean(ys)
            last = 2 * np.sqrt(-cov) if cov < 0 else 0.0
        out[i] = last
    return pd.Series(out, index=g.index)


def ref_dv_adv(g: pd.DataFrame, w: int, adv: pd.Series) -> pd.Series:
    dv = (g["close"] * g["volume"]).rolling(w, min_periods=w).sum()
    a = adv.loc[g.index]
    return (dv / a).where(a > 0)
