"""A minimal causal feature table in the features contract's shape, used by ``make_env`` only while
``intradayjules.features.pipeline`` is not available (and by tests that need features independent of
it). Columns: ``timestamp, symbol, session``, ``ret_1`` (log close change over 1 bar), ``ret_12``
(over 12 bars), ``vol_z`` (log(1 + volume) z-scored against the previous 12 bars), bool ``warm``.
Row t uses bars <= t of the same symbol only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FALLBACK_FEATURES = ("ret_1", "ret_12", "vol_z")


def fallback_features(frame: pd.DataFrame, window: int = 12) -> pd.DataFrame:
    sym = frame["symbol"].to_numpy()
    lc = np.log(frame["close"].to_numpy(dtype=np.float64))
    lv = np.log1p(frame["volume"].to_numpy(dtype=np.float64))
    g = pd.Series(lc).groupby(sym, sort=False)
    ret_1 = g.diff(1).to_numpy()
    ret_12 = g.diff(window).to_numpy()
    v = pd.Series(lv).groupby(sym, sort=False)
    prev = v.shift(1)
    mu = prev.groupby(sym, sort=False).rolling(window, min_periods=window).mean().reset_index(level=0, drop=True).sort_index()
    sd = prev.groupby(sym, sort=False).rolling(window, min_periods=window).std().reset_index(level=0, drop=True).sort_index()
    vol_z = ((pd.Series(lv) - mu) / sd.where(sd > 0, 1.0)).to_numpy()
    out = pd.DataFrame({"timestamp": frame["timestamp"].reset_index(drop=True), "symbol": sym,
                        "session": frame["session"].reset_index(drop=True), "ret_1": ret_1, "ret_12": ret_12,
                        "vol_z": vol_z})
    out["warm"] = out[list(FALLBACK_FEATURES)].isna().any(axis=1).to_numpy()
    return out
