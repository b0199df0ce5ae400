"""No look-ahead: the features at or before time t do not depend on any bar after t.

Two perturbations of everything after t (for every symbol at once): (1) rewrite the later bars with
different prices, volumes and stale bars; (2) delete them. Every feature row at or before t must stay
bit-for-bit identical (NaN positions included), and so must ``warm``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import FeaturesConfig
from intradayjules.features.pipeline import compute_features, feature_names

CFG = FeaturesConfig(price_levels=True)


def _perturb_after(frame: pd.DataFrame, t: pd.Timestamp, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    after = (out["timestamp"] > t).to_numpy()
    n = int(after.sum())
    scale = np.exp(rng.normal(0, 0.05, n))
    for c in ("open", "high", "low", "close"):
        out.loc[after, c] = out.loc[after, c].to_numpy() * scale
    out.loc[after, "high"] = out.loc[after, ["open", "high", "close"]].max(axis=1) * 1.01
    out.loc[after, "low"] = out.loc[after, ["open", "low", "close"]].min(axis=1) * 0.99
    vol = out.loc[after, "volume"].to_numpy() * rng.uniform(0, 3, n)
    vol[rng.random(n) < 0.2] = 0.0  # new stale bars
    out.loc[after, "volume"] = vol
    out.loc[after, "stale"] = vol == 0
    return out


def _assert_prefix_equal(a: pd.DataFrame, b: pd.DataFrame, t: pd.Timestamp) -> None:
    cols = feature_names(CFG) + ["warm"]
    ka = a[a["timestamp"] <= t].reset_index(drop=True)
    kb = b[b["timestamp"] <= t].reset_index(drop=True)
    assert len(ka) == len(kb) > 0
    pd.testing.assert_frame_equal(ka[["timestamp", "symbol", *cols]], kb[["timestamp", "symbol", *cols]],
                                  check_exact=True)


def _times(frame: pd.DataFrame) -> list[pd.Timestamp]:
    """Cut points: mid-session, the last bar of a session, the first bar of a session, early data."""
    ts = frame["timestamp"].sort_values().unique()
    sess = frame.drop_duplicates("session")["timestamp"].sort_values().to_numpy()
    return [pd.Timestamp(ts[len(ts) // 2]), pd.Timestamp(sess[5]) - pd.Timedelta("5min"),
            pd.Timestamp(sess[len(sess) // 3]), pd.Timestamp(ts[40])]


def _check(frame: pd.DataFrame) -> None:
    base = compute_features(frame, CFG)
    for i, t in enumerate(_times(frame)):
        changed = _perturb_after(frame, t, seed=i)
        feats = compute_features(changed, CFG)
        # the perturbation did change later features (the test can fail)
        later = (frame["timestamp"] > t).to_numpy()
        assert not np.allclose(base.loc[later, "rsi_14"].fillna(0), feats.loc[later, "rsi_14"].fillna(0))
        _assert_prefix_equal(base, feats, t)
        truncated = frame[frame["timestamp"] <= t].reset_index(drop=True)
        _assert_prefix_equal(base, compute_features(truncated, CFG), t)


def test_no_lookahead_synthetic(synthetic_market):
    _check(synthetic_market.bars.frame)


@pytest.mark.realdata
def test_no_lookahead_real(shared_bars):
    f = shared_bars.frame
    _check(f[f["symbol"].isin(["SPY", "WEBL", "MELI", "TSLA"])].reset_index(drop=True))
