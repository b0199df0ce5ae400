"""compute_features: the contract (rows, columns, dtypes, warm), every feature against an independent
pandas implementation, bad input, and the training-only Scaler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import FeaturesConfig, SplitConfig, TierConfig
from intradayjules.data.tiers import liquidity_tiers
from intradayjules.errors import DataError
from intradayjules.features.pipeline import Scaler, compute_features, feature_names, train_sessions

from . import reference as ref

CFG = FeaturesConfig()


@pytest.fixture(scope="module")
def feats(synthetic_market):
    return compute_features(synthetic_market.bars.frame, CFG)


def test_contract_rows_columns_dtypes(synthetic_market, feats):
    frame = synthetic_market.bars.frame
    names = feature_names(CFG)
    assert list(feats.columns) == ["timestamp", "symbol", "session", *names, "warm"]
    assert len(feats) == len(frame)
    for c in ("timestamp", "symbol", "session"):
        assert (feats[c].to_numpy() == frame[c].to_numpy()).all()
    assert all(feats[c].dtype == np.float64 for c in names)
    assert feats["warm"].dtype == bool
    assert str(feats["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_default_feature_names():
    assert feature_names(CFG) == [
        "rsi_14", "ema_dev_10", "ema_dev_20", "ema_dev_50", "vwap_dev", "tod_sin", "tod_cos", "logret_1",
        "logret_12", "rv_12", "dv_adv_12", "amihud_12", "roll_spread_12", "stale_share_12", "secs_since_trade"]
    assert "ema_10" in feature_names(FeaturesConfig(price_levels=True))


def test_warm_rows_are_exactly_the_incomplete_ones(synthetic_market, feats):
    x = feats[feature_names(CFG)].to_numpy()
    warm = feats["warm"].to_numpy()
    assert not np.isnan(x[~warm]).any() and not np.isinf(x[~warm]).any()
    assert np.isnan(x[warm]).any(axis=1).all()
    # warm-up = each symbol's first session (no ADV before it); nothing later for this data
    first_session = feats.groupby("symbol")["session"].transform("min")
    np.testing.assert_array_equal(warm, (feats["session"] == first_session).to_numpy())


def test_features_match_independent_pandas(synthetic_market, feats):
    f = synthetic_market.bars.frame
    W = CFG.liquidity_window
    checks = {
        "logret_1": ref.per_symbol(f, lambda g: ref.ref_log_return(g, 1)),
        "logret_12": ref.per_symbol(f, lambda g: ref.ref_log_return(g, 12)),
        "rv_12": ref.per_symbol(f, lambda g: ref.ref_realized_vol(g, CFG.vol_window)),
        f"stale_share_{W}": ref.per_symbol(f, lambda g: ref.ref_stale_share(g, W)),
        f"amihud_{W}": ref.per_symbol(f, lambda g: ref.ref_amihud(g, W)),
        f"roll_spread_{W}": ref.per_symbol(f, lambda g: ref.ref_roll(g, W)),
    }
    # ADV: the tiers module's trailing ADV (sessions strictly before), joined onto bars
    tiers = liquidity_tiers(f, TierConfig(adv_window_days=CFG.adv_days, min_history_days=1))
    adv = f[["symbol", "session"]].merge(tiers[["symbol", "session", "adv"]], how="left")["adv"]
    adv.index = f.index
    checks[f"dv_adv_{W}"] = ref.per_symbol(f, lambda g: ref.ref_dv_adv(g, W, adv))
    checks["secs_since_trade"] = f["secs_since_trade"]
    for name, expected in checks.items():
        got = feats[name].to_numpy()
        exp = expected.to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(exp)), name
        np.testing.assert_allclose(got[~np.isnan(exp)], exp[~np.isnan(exp)], rtol=1e-9, atol=1e-12, err_msg=name)
    # the liquidity features separate the tiers the synthetic market was built with
    by_tier = feats.assign(tier=feats["symbol"].str[:2])[~feats["warm"]].groupby("tier")
    assert by_tier[f"stale_share_{W}"].mean()["IL"] > 0.1 > by_tier[f"stale_share_{W}"].mean()["LQ"]
    assert by_tier[f"amihud_{W}"].median()["IL"] > 10 * by_tier[f"amihud_{W}"].median()["LQ"]
    assert by_tier[f"roll_spread_{W}"].median()["IL"] > by_tier[f"roll_spread_{W}"].median()["LQ"]


def test_time_of_day_from_the_exchange_clock(synthetic_market, feats):
    f = synthetic_market.bars.frame
    local = f["timestamp"].dt.tz_convert("America/New_York")
    minutes = (local.dt.hour * 60 + local.dt.minute - 570).to_numpy()
    full_day = f.groupby("session")["timestamp"].transform("size") / f["symbol"].nunique() == 78
    x = minutes[full_day.to_numpy()] / 390.0
    np.testing.assert_allclose(feats.loc[full_day, "tod_sin"], np.sin(2 * np.pi * x), atol=1e-12)
    np.testing.assert_allclose(feats.loc[full_day, "tod_cos"], np.cos(2 * np.pi * x), atol=1e-12)


def test_unsorted_or_bad_input_is_rejected_with_the_row(synthetic_market):
    f = synthetic_market.bars.frame.head(300)
    swapped = f.iloc[[1, 0, *range(2, len(f))]].reset_index(drop=True)
    with pytest.raises(DataError, match="not after the previous bar") as e:
        compute_features(swapped, CFG, label="x.parquet")
    assert e.value.line == 2 and e.value.file == "x.parquet"
    bad = f.copy()
    bad.loc[7, "close"] = np.nan
    with pytest.raises(DataError, match="close") as e:
        compute_features(bad, CFG)
    assert e.value.line == 8 and e.value.column == "close"
    with pytest.raises(DataError, match="volume"):
        compute_features(f.drop(columns="volume"), CFG)


def test_symbols_are_independent(synthetic_market, feats):
    f = synthetic_market.bars.frame
    one = f[f["symbol"] == "MD01"].reset_index(drop=True)
    alone = compute_features(one, CFG)
    together = feats[feats["symbol"] == "MD01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, together, check_exact=True)


def test_scaler_uses_training_sessions_only(feats):
    train = train_sessions(feats["session"], SplitConfig(train_frac=0.6, val_frac=0.2))
    assert len(train) == 36 and max(train) < feats["session"].max()
    sc = Scaler.fit(feats, train)
    # changing everything after the training period does not change the scaler
    later = ~feats["session"].isin(train)
    moved = feats.copy()
    names = feature_names(CFG)
    moved.loc[later, names] = moved.loc[later, names] * 7 + 3
    assert Scaler.fit(moved, train) == sc
    # on the training rows the transform is standardised
    z = sc.transform(feats)
    zt = z.loc[feats["session"].isin(train) & ~feats["warm"], names]
    np.testing.assert_allclose(zt.mean(), 0, atol=1e-9)
    np.testing.assert_allclose(zt.std(ddof=0), 1, atol=1e-9)
    assert z.loc[feats["warm"], names].isna().any(axis=1).all()
    assert Scaler.from_json(sc.to_json()) == sc
    with pytest.raises(ValueError, match="no non-warm"):
        Scaler.fit(feats, [feats["session"].min()])


def test_train_sessions_explicit_end():
    days = pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07"])
    sp = SplitConfig(train_end="2025-01-03", val_end="2025-01-06")
    assert train_sessions(np.repeat(days.to_numpy(), 3), sp) == list(days[:2])


@pytest.mark.parametrize("bad", [{"ema_windows": [10, 10]}, {"ema_windows": []}, {"return_horizons": [0, 12]}])
def test_features_config_rejects_bad_windows(bad):
    from intradayjules.config import ExperimentConfig, config_from_dict
    from intradayjules.errors import ConfigError

    with pytest.raises(ConfigError, match=f"features.{next(iter(bad))}"):
        config_from_dict({"features": bad})
    assert isinstance(config_from_dict({"features": {"ema_windows": [5, 30]}}), ExperimentConfig)
