"""The online feature engine against the batch pipeline: whole sessions replayed bar by bar, symbols
interleaved in time order as a live feed delivers them, on synthetic and real bars.

Parity rule: for every feature column, NaN at the same rows (warm-up included) and
``|online - batch| <= 1e-12 * max(1, |batch|)``; ``warm`` identical. (Measured: bit-for-bit equal.)
The perturbation tests show the check is sharp: a close moved by 1e-10, an EMA span off by one, an ADV
window off by one and a dropped bar each break it, and a bar fed twice is refused.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import FeaturesConfig
from intradayjules.errors import DataError
from intradayjules.features import online
from intradayjules.features.online import OnlineFeatures
from intradayjules.features.pipeline import compute_features, feature_names

TOL = 1e-12
ODD = FeaturesConfig(price_levels=True, rsi_window=5, ema_windows=[3, 7], return_horizons=[2, 1, 5],
                     vol_window=4, liquidity_window=3, adv_days=2)
REAL_SUBSET = ["AAPL", "JNUG", "MELI", "WEBL"]  # WEBL ~15 % stale bars, MELI ~5 %


def mismatches(batch: pd.DataFrame, onl: pd.DataFrame, cfg: FeaturesConfig) -> dict[str, str]:
    """Per failing column: what differs (empty dict = parity)."""
    out = {}
    for c in ["timestamp", "symbol", "session"]:
        if not (batch[c].to_numpy() == onl[c].to_numpy()).all():
            out[c] = "key column differs"
    for c in feature_names(cfg):
        x, y = batch[c].to_numpy(), onl[c].to_numpy()
        nan_x, nan_y = np.isnan(x), np.isnan(y)
        if (nan_x != nan_y).any():
            r = int(np.flatnonzero(nan_x != nan_y)[0])
            out[c] = f"NaN differs first at row {r}: batch {x[r]!r}, online {y[r]!r}"
            continue
        ok = ~nan_x
        err = np.abs(x[ok] - y[ok]) / np.maximum(1.0, np.abs(x[ok]))
        if len(err) and err.max() > TOL:
            r = int(np.flatnonzero(ok)[int(np.argmax(err))])
            out[c] = f"max scaled error {err.max():.3g} at row {r}: batch {x[r]!r}, online {y[r]!r}"
    if not (batch["warm"].to_numpy() == onl["warm"].to_numpy()).all():
        out["warm"] = "warm flag differs"
    return out


def assert_parity(frame: pd.DataFrame, cfg: FeaturesConfig) -> None:
    batch = compute_features(frame, cfg)
    onl = OnlineFeatures(cfg).replay(frame)
    assert mismatches(batch, onl, cfg) == {}
    # the replay covered warm-up and settled rows alike
    assert batch["warm"].any() and (~batch["warm"]).any()


@pytest.mark.parametrize("cfg", [FeaturesConfig(), ODD], ids=["default", "odd-windows"])
def test_parity_synthetic(synthetic_market, cfg):
    assert_parity(synthetic_market.bars.frame, cfg)


@pytest.mark.realdata
def test_parity_real_subset(shared_bars):
    f = shared_bars.frame
    frame = f[f["symbol"].isin(REAL_SUBSET)].reset_index(drop=True)
    assert frame["stale"].any()  # stale bars are part of what is compared
    assert_parity(frame, FeaturesConfig(price_levels=True))


@pytest.mark.realdata
@pytest.mark.slow
def test_parity_real_all_symbols(shared_bars):
    assert_parity(shared_bars.frame, FeaturesConfig(price_levels=True))


@pytest.mark.realdata
def test_parity_real_odd_windows_one_month(shared_bars):
    f = shared_bars.frame
    first = np.sort(f["session"].unique())[:22]
    frame = f[f["session"].isin(first) & f["symbol"].isin(REAL_SUBSET)].reset_index(drop=True)
    assert_parity(frame, ODD)


def test_values_are_bit_identical_on_synthetic(synthetic_market):
    """Stronger than the 1e-12 rule, and what the engine is written for: the same arithmetic in the
    same order. (If a numpy upgrade changes a ufunc's last bit, the 1e-12 tests above still hold.)"""
    f = synthetic_market.bars.frame
    cfg = FeaturesConfig(price_levels=True)
    b = compute_features(f, cfg)[feature_names(cfg)].to_numpy()
    o = OnlineFeatures(cfg).replay(f)[feature_names(cfg)].to_numpy()
    assert np.array_equal(b, o, equal_nan=True)


def test_session_by_session_matches_rows(synthetic_market):
    """``update`` itself (not only ``replay``): one session of one symbol, row by row."""
    f = synthetic_market.bars.frame
    cfg = FeaturesConfig()
    batch = compute_features(f, cfg)
    eng = OnlineFeatures(cfg)
    g = f[f["symbol"] == "IL01"]
    ts = g["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    ss = g["session"].to_numpy(dtype="datetime64[ns]").view("int64")
    seen_warm = seen_cold = False
    for k, (r, row) in enumerate(g.iterrows()):
        vals, warm = eng.update(row["symbol"], ts[k], ss[k], row["open"], row["high"], row["low"], row["close"],
                                row["volume"])
        want = batch.loc[r, feature_names(cfg)].to_numpy(dtype=np.float64)
        assert np.array_equal(vals, want, equal_nan=True), (r, row["timestamp"])
        assert warm == bool(batch.loc[r, "warm"])
        seen_warm |= warm
        seen_cold |= not warm
    assert seen_warm and seen_cold
    assert eng.bars_seen("IL01") == len(g)


def test_pickled_engine_continues_identically(synthetic_market):
    """A restart can restore the engine's state mid-stream (e.g. from a checkpoint) and carry on."""
    f = synthetic_market.bars.frame
    cfg = FeaturesConfig()
    order = f.sort_values(["timestamp", "symbol"], kind="stable")
    cut = len(order) // 2 + 17
    first, second = order.iloc[:cut], order.iloc[cut:]
    full = OnlineFeatures(cfg).replay(order)
    eng = OnlineFeatures(cfg)
    eng.replay(first)
    eng2 = pickle.loads(pickle.dumps(eng))
    rest = eng2.replay(second)
    want = full.iloc[cut:][feature_names(cfg)].to_numpy()
    assert np.array_equal(rest[feature_names(cfg)].to_numpy(), want, equal_nan=True)


# ------------------------------------------------------------------------------- the check can fail
@pytest.fixture(scope="module")
def small(synthetic_market):
    f = synthetic_market.bars.frame
    days = np.sort(f["session"].unique())[:8]
    return f[f["session"].isin(days)].reset_index(drop=True)


def test_tiny_price_change_breaks_parity(small):
    cfg = FeaturesConfig()
    batch = compute_features(small, cfg)
    moved = small.copy()
    r = int(np.flatnonzero((moved["symbol"] == "LQ01").to_numpy())[300])
    for c in ("open", "high", "low", "close"):
        moved.loc[r, c] *= 1.0 + 1e-10
    bad = mismatches(batch, OnlineFeatures(cfg).replay(moved), cfg)
    assert "logret_1" in bad and "rsi_14" in bad
    assert mismatches(batch, OnlineFeatures(cfg).replay(small), cfg) == {}


def test_ema_span_off_by_one_breaks_parity(small, monkeypatch):
    cfg = FeaturesConfig()
    batch = compute_features(small, cfg)
    real_init = online._Ewm.__init__

    def off_by_one(self, com, min_periods):
        is_ema = com == (min_periods - 1) / 2.0  # an EMA (span = min_periods), not RSI's smoothing
        real_init(self, com + 0.5 if is_ema else com, min_periods)

    monkeypatch.setattr(online._Ewm, "__init__", off_by_one)
    bad = mismatches(batch, OnlineFeatures(cfg).replay(small), cfg)
    assert set(bad) == {"ema_dev_10", "ema_dev_20", "ema_dev_50"}


def test_adv_window_off_by_one_breaks_parity(small):
    cfg = FeaturesConfig(adv_days=3)
    batch = compute_features(small, cfg)
    eng = OnlineFeatures(cfg.model_copy(update={"adv_days": 4}))  # one more session in the ADV
    bad = mismatches(batch, eng.replay(small), cfg)
    assert set(bad) == {"dv_adv_12"}


def test_dropped_bar_breaks_parity(small):
    cfg = FeaturesConfig()
    batch = compute_features(small, cfg)
    r = int(np.flatnonzero((small["symbol"] == "MD01").to_numpy())[200])
    onl = OnlineFeatures(cfg).replay(small.drop(index=r).reset_index(drop=True))  # never sees bar r
    bad = mismatches(batch.drop(index=r).reset_index(drop=True), onl, cfg)
    assert "logret_1" in bad and "ema_dev_10" in bad


def test_bar_fed_twice_is_refused(small):
    eng = OnlineFeatures()
    row = small.iloc[0]
    ts = int(pd.Timestamp(row["timestamp"]).value)
    ss = int(pd.Timestamp(row["session"]).value)
    args = (row["symbol"], ts, ss, row["open"], row["high"], row["low"], row["close"], row["volume"])
    eng.update(*args)
    with pytest.raises(DataError) as e:
        eng.update(*args)
    assert e.value.rule == "unsorted" and row["symbol"] in str(e.value)
    assert eng.bars_seen(row["symbol"]) == 1


def test_bad_bar_and_bad_session_are_refused():
    eng = OnlineFeatures()
    ts = int(pd.Timestamp("2025-01-02 15:00", tz="UTC").value)
    sess = int(pd.Timestamp("2025-01-02").value)
    with pytest.raises(DataError) as e:
        eng.update("X", ts, sess, 10.0, 10.0, 10.0, float("nan"), 5.0)
    assert e.value.rule == "bad_value" and e.value.column == "close"
    with pytest.raises(DataError) as e:
        eng.update("X", ts, int(pd.Timestamp("2025-01-04").value), 10.0, 10.0, 10.0, 10.0, 5.0)  # a Saturday
    assert e.value.rule == "bad_session"
