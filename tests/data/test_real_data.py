"""The shared real 5-minute bars (skipped when ../shared/data/intraday_5min is absent)."""

import pandas as pd

from intradayjules.data import summarize, tier_as_of
from intradayjules.data.bars import find_problems


def test_shared_set_loads_and_validates(shared_bars):
    f = shared_bars.frame
    assert f["symbol"].nunique() == 30
    assert find_problems(f) == []
    assert f.groupby("symbol")["timestamp"].is_monotonic_increasing.all()
    # regular session only: 09:30-15:55 New York, 78 bars on full days
    local = f["timestamp"].dt.tz_convert("America/New_York")
    mins = local.dt.hour * 60 + local.dt.minute
    assert mins.min() == 9 * 60 + 30 and mins.max() == 15 * 60 + 55
    spy = f[f["symbol"] == "SPY"]
    assert spy.groupby("session").size().mode().iloc[0] == 78


def test_tiers_spy_liquid_webl_illiquid(shared_bars):
    s = summarize(shared_bars).set_index("symbol")
    assert s.loc["SPY", "tier"] == "liquid"
    assert s.loc["WEBL", "tier"] == "illiquid"
    assert 0.10 < s.loc["WEBL", "stale_share"] < 0.20
    assert s.loc["SPY", "stale_share"] == 0


def test_tiers_use_only_the_past(shared_bars):
    f = shared_bars.frame
    d = pd.Timestamp("2025-09-02")
    before = tier_as_of(f, d)
    # Changing everything from d on (here: volumes x1000) leaves the tier on d unchanged.
    g = f.copy()
    g.loc[g["session"] >= d, "volume"] *= 1000
    pd.testing.assert_frame_equal(before, tier_as_of(g, d))
