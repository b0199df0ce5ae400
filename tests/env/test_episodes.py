"""Episode building: splits, warm-up, per-session ADV / sigma / half-spread as known before the
session, feature alignment and standardisation on training sessions only."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import SplitConfig
from intradayjules.env import prepare
from intradayjules.env.episodes import build_panel, pick_symbols, session_splits

from .helpers import config, features, market


@pytest.fixture(scope="module")
def mk():
    return market(days=30)


def test_splits_chronological_disjoint_without_warmup():
    s = pd.bdate_range("2025-01-01", periods=50)
    sp = session_splits(s, SplitConfig(train_frac=0.6, val_frac=0.2), warmup=20)
    assert len(sp["train"]) == 30 - 20 and len(sp["val"]) == 10 and len(sp["test"]) == 10
    assert sp["train"][0] == np.datetime64(s[20]) and sp["train"][-1] < sp["val"][0] < sp["test"][0]
    explicit = session_splits(s, SplitConfig(train_end=dt.date(2025, 2, 14), val_end=dt.date(2025, 2, 28)), 0)
    assert explicit["train"][-1] == np.datetime64("2025-02-14") and explicit["val"][-1] == np.datetime64("2025-02-28")
    assert explicit["test"][0] == np.datetime64("2025-03-03")


def test_training_episodes_skip_adv_warmup(mk):
    cfg = config("multi")
    data = prepare(cfg, mk.bars.frame, mk.universe, features(mk.bars.frame))
    sessions = np.unique(mk.bars.frame["session"].to_numpy())
    assert data.splits["train"][0] == sessions[cfg.data.tiers.adv_window_days]
    idx = data.session_indices("train")
    assert len(idx) == len(data.splits["train"])
    assert data.panel.sessions[idx].min() >= sessions[cfg.data.tiers.adv_window_days]


def test_per_session_adv_uses_previous_sessions_only(mk):
    cfg = config("multi")
    f = mk.bars.frame
    data = prepare(cfg, f, mk.universe, features(f))
    p = data.panel
    i = 12
    for k, s in enumerate(p.symbols):
        g = f[f["symbol"] == s]
        dv = (g["close"] * g["volume"]).groupby(g["session"]).sum()
        assert p.adv[i, k] == pytest.approx(dv.iloc[i - 5:i].mean(), rel=1e-12)
    # changing the session's own volume leaves its ADV, tier and sigma alone
    f2 = f.copy()
    f2.loc[f2["session"] == p.sessions[i], "volume"] *= 100
    d2 = prepare(cfg, f2, mk.universe, features(f2))
    np.testing.assert_array_equal(d2.panel.adv[i], p.adv[i])
    np.testing.assert_array_equal(d2.panel.sigma[i], p.sigma[i])
    np.testing.assert_array_equal(d2.panel.tier[i], p.tier[i])
    assert not np.array_equal(d2.panel.adv[i + 1], p.adv[i + 1])


@pytest.mark.parametrize("source", ["universe", "tier", "estimate"])
def test_half_spread_sources(mk, source):
    cfg = config("multi")
    cfg.market.half_spread_source = source
    data = prepare(cfg, mk.bars.frame, mk.universe, features(mk.bars.frame))
    p = data.panel
    i = data.session_indices("val")[0]
    truth = mk.universe.set_index("symbol").loc[list(p.symbols), "half_spread_bps"].to_numpy()
    hs = p.half_spread[i]
    if source == "universe":
        np.testing.assert_array_equal(hs, truth)
    elif source == "tier":
        want = [cfg.market.tier_half_spread_bps[t] for t in p.tier[i]]
        np.testing.assert_array_equal(hs, want)
    else:  # Roll estimate from previous sessions: mid and illiquid names within 30 % of the truth
        for k, t in enumerate(p.tier[i]):
            if t != "liquid":
                assert hs[k] == pytest.approx(truth[k], rel=0.3)


def test_symbols_round_robin_across_tiers(mk):
    syms = pick_symbols(mk.bars.frame, 4, mk.universe, config().data.tiers, "2025-03-01")
    assert syms == ["LQ01", "MD01", "IL01", "LQ02"]
    with pytest.raises(ValueError, match="asked for 9 symbols"):
        pick_symbols(mk.bars.frame, 9, mk.universe, config().data.tiers, "2025-03-01")


def test_standardisation_from_training_sessions_only(mk):
    cfg = config("multi")
    f = mk.bars.frame
    feats = features(f)
    data = prepare(cfg, f, mk.universe, feats)
    tr = data.splits["train"]
    p = data.panel
    rows = np.isin(np.repeat(p.sessions, np.diff(p.starts)), tr)
    z = p.feat[rows].astype(float)
    nz = z[np.abs(z).sum(axis=2) > 0]  # warm rows are 0
    assert abs(nz.mean()) < 0.05 and 0.8 < nz.std() < 1.2
    # perturbing only test-session features leaves the training-session values alone
    feats2 = feats.copy()
    test_rows = feats2["session"].isin(data.splits["test"]).to_numpy()
    feats2.loc[test_rows, "ret_1"] *= 50
    d2 = prepare(cfg, f, mk.universe, feats2)
    np.testing.assert_array_equal(d2.panel.feat[rows], p.feat[rows])


def test_misaligned_features_name_the_row(mk):
    f = mk.bars.frame
    feats = features(f)
    bad = feats.copy()
    bad.loc[17, "symbol"] = "ZZZ"
    with pytest.raises(ValueError, match="row 17: symbol='ZZZ'"):
        build_panel(f, bad, ["LQ01"], standardize=False)
    with pytest.raises(ValueError, match="same rows"):
        build_panel(f, feats.iloc[:-1], ["LQ01"], standardize=False)
    with pytest.raises(ValueError, match="not in the bars"):
        build_panel(f, feats, ["NOPE"], standardize=False)


def test_observation_window_is_lookback_bars(mk):
    cfg = config("single", symbols=["LQ01"])
    f = mk.bars.frame
    data = prepare(cfg, f, mk.universe, features(f))
    p = data.panel
    i = data.session_indices("val")[0]
    ep = p.episode(i, 5)
    F = len(p.feature_names)
    r0 = p.starts[i]
    t = 3  # the window reaches back into the previous session
    want = p.feat[r0 + t - 4:r0 + t + 1, 0, :].reshape(-1)
    np.testing.assert_array_equal(ep.obs_feat[t], want)
    assert ep.obs_feat.shape == (ep.n_bars, 5 * F)


def test_time_of_day_from_the_calendar_not_the_data(mk):
    """A session whose data stop early must not tell the agent the close is near."""
    cfg = config("single", symbols=["LQ01"])
    f = mk.bars.frame
    last = f["session"].max()
    pos = f.groupby(["symbol", "session"]).cumcount().to_numpy()
    cut = f[~((f["session"] == last).to_numpy() & (pos >= 40))].reset_index(drop=True)
    data = prepare(cfg, cut, mk.universe, features(cut))
    p = data.panel
    r0, r1 = p.starts[-2], p.starts[-1]
    assert r1 - r0 == 40
    assert p.tod[r1 - 1] == pytest.approx(40 / 78)
    assert p.tod[p.starts[-2] - 1] == pytest.approx(1.0)  # the full session before it ends at 1
