"""The synthetic market: deterministic for a seed, tier statistics inside the documented ranges."""

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import SyntheticConfig, TierConfig
from intradayjules.data import load_bars, tier_as_of
from intradayjules.data.bars import find_problems
from intradayjules.data.synthetic import TIER_PARAMS, generate
from intradayjules.data.tiers import daily_dollar_volume


def test_deterministic_for_a_seed():
    a = generate(SyntheticConfig(n_symbols=3, days=5, seed=7))
    b = generate(SyntheticConfig(n_symbols=3, days=5, seed=7))
    c = generate(SyntheticConfig(n_symbols=3, days=5, seed=8))
    pd.testing.assert_frame_equal(a.bars.frame, b.bars.frame)
    pd.testing.assert_frame_equal(a.universe, b.universe)
    assert not np.allclose(a.bars.frame["close"], c.bars.frame["close"])


def test_valid_canonical_bars_and_written_files_reload(tmp_path):
    m = generate(SyntheticConfig(n_symbols=6, days=5))
    assert find_problems(m.bars.frame) == []
    paths = m.write(tmp_path)
    again = load_bars(paths["bars"]).frame
    pd.testing.assert_frame_equal(again, m.bars.frame)
    uni = pd.read_parquet(paths["universe"])
    assert set(uni.columns) >= {"symbol", "tier", "adv_usd", "spread_bps"}
    assert sorted(uni["tier"].value_counts().to_dict().items()) == [("illiquid", 2), ("liquid", 2), ("mid", 2)]


def test_half_days_have_fewer_bars():
    m = generate(SyntheticConfig(n_symbols=1, days=3, start="2025-11-26"))
    per_day = m.bars.frame.groupby("session").size()
    assert per_day.loc["2025-11-26"] == 78 and per_day.loc["2025-11-28"] == 42


def test_tier_statistics_within_documented_ranges(synthetic_market):
    f = synthetic_market.bars.frame
    uni = synthetic_market.universe.set_index("symbol")
    daily = daily_dollar_volume(f)
    med = daily.groupby("symbol")["dollar_volume"].median()
    stale = f.groupby("symbol")["stale"].mean()
    for sym, row in uni.iterrows():
        target = TIER_PARAMS[row.tier]["adv"]
        assert 0.5 * target < med[sym] < 2.0 * target, (sym, med[sym])
        if row.tier == "illiquid":
            assert 0.10 <= stale[sym] <= 0.40
        elif row.tier == "mid":
            assert stale[sym] < 0.05
        else:
            assert stale[sym] == 0
    # the tier function classifies every symbol into its generating tier
    tiers = tier_as_of(f, f["session"].max() + pd.Timedelta(days=1), TierConfig()).set_index("symbol")["tier"]
    assert (tiers == uni["tier"]).all()


def test_u_shaped_volume(synthetic_market):
    f = synthetic_market.bars.frame
    liquid = f[f["symbol"].str.startswith("LQ")].copy()
    liquid["slot"] = liquid.groupby(["symbol", "session"]).cumcount()
    prof = liquid.groupby("slot")["volume"].mean()
    assert prof.iloc[:6].mean() > 1.8 * prof.iloc[33:45].mean()
    assert prof.iloc[-6:].mean() > 1.8 * prof.iloc[33:45].mean()


def test_bid_ask_bounce_trap_in_illiquid_names(synthetic_market):
    """Close-to-close returns of illiquid names mean-revert (Roll bounce); liquid ones don't. A naive
    'buy after a down bar, sell after an up bar' rule earns its gross edge only in the illiquid names,
    and the edge is smaller than the spread it must cross."""
    f = synthetic_market.bars.frame
    uni = synthetic_market.universe.set_index("symbol")
    for sym, g in f.groupby("symbol"):
        r = np.diff(np.log(g["close"].to_numpy()))
        ac = np.corrcoef(r[1:], r[:-1])[0, 1]
        gross = np.mean(-np.sign(r[:-1]) * r[1:]) * 1e4  # bps per bar, before costs
        if uni.loc[sym, "tier"] == "illiquid":
            assert ac < -0.1
            assert gross > 2.0
            assert gross < 2 * uni.loc[sym, "half_spread_bps"]  # a round trip costs the full spread
        elif uni.loc[sym, "tier"] == "liquid":
            assert abs(ac) < 0.05


@pytest.mark.parametrize("n", [1, 2, 7])
def test_any_symbol_count(n):
    m = generate(SyntheticConfig(n_symbols=n, days=2))
    assert m.bars.frame["symbol"].nunique() == n


def test_more_days_than_the_calendar_holds_is_a_config_error_naming_the_setting(tmp_path):
    import subprocess
    import sys

    from intradayjules.data.sessions import _calendar
    from intradayjules.errors import ConfigError

    last = _calendar("XNYS").sessions[-1]
    with pytest.raises(ConfigError, match=r"data\.synthetic\.days: 100000 sessions .* at most \d+ fit"):
        generate(SyntheticConfig(days=100_000))
    with pytest.raises(ConfigError, match=r"data\.synthetic\.start: .* after the last session"):
        generate(SyntheticConfig(days=5, start=(last + pd.Timedelta(days=30)).date()))
    # the boundary: exactly the sessions left fit
    start = _calendar("XNYS").sessions[-3].date()
    assert generate(SyntheticConfig(n_symbols=3, days=3, start=start)).bars.frame["session"].nunique() == 3
    with pytest.raises(ConfigError, match="at most 3 fit"):
        generate(SyntheticConfig(n_symbols=3, days=4, start=start))
    # the command line prints the message, not a traceback
    import os
    from pathlib import Path

    import intradayjules

    env = {**os.environ, "PYTHONPATH": str(Path(intradayjules.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", "from intradayjules.cli import main; main()", "data", "synth",
                          "--days", "100000", "--out", str(tmp_path / "syn")], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 2 and "data.synthetic.days" in out.stderr and "Traceback" not in out.stderr
# ------------------------------------------------------------------------------- the planted edge
def _conditional_move_bps(frame: pd.DataFrame, symbol: str) -> tuple[float, float]:
    """Mean of sign(previous bar's printed log return) x (log close - log open of the bar), bars 2.. of each
    session, in bps, and its standard error: an estimate of the planted edge from the bars alone."""
    d = frame[frame["symbol"] == symbol]
    lc, lo = np.log(d["close"].to_numpy()), np.log(d["open"].to_numpy())
    pos = d.groupby("session").cumcount().to_numpy()
    prev = np.r_[np.nan, np.nan, lc[1:-1] - lc[:-2]]  # printed return of bar k-1 (same session when pos >= 2)
    ok = pos >= 2
    x = np.sign(prev[ok]) * (lc - lo)[ok] * 1e4
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))


def test_planted_edge_is_measurable_from_the_bars_and_only_where_planted():
    plain = generate(SyntheticConfig(n_symbols=6, days=80, seed=3)).bars.frame
    edged = generate(SyntheticConfig(n_symbols=6, days=80, seed=3, edge_bps=5.0)).bars.frame
    for sym in ("LQ01", "LQ02"):
        m, se = _conditional_move_bps(edged, sym)
        assert abs(m - 5.0) < 4 * se and se < 0.5, (sym, m, se)
        m0, se0 = _conditional_move_bps(plain, sym)
        assert abs(m0) < 4 * se0, (sym, m0, se0)  # no edge without the option
    # the other tiers' bars are the same market, draw for draw
    for sym in ("MD01", "MD02", "IL01", "IL02"):
        a = plain[plain["symbol"] == sym].reset_index(drop=True)
        b = edged[edged["symbol"] == sym].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    # the edged names keep their trades and staleness (only the mid path moved)
    lq = [plain["symbol"] == "LQ01", edged["symbol"] == "LQ01"]
    assert (plain.loc[lq[0], "stale"].to_numpy() == edged.loc[lq[1], "stale"].to_numpy()).all()


def test_edge_tiers_select_where_the_edge_goes_and_zero_edge_changes_nothing():
    base = generate(SyntheticConfig(n_symbols=6, days=60, seed=4)).bars.frame
    zero = generate(SyntheticConfig(n_symbols=6, days=60, seed=4, edge_bps=0.0, edge_tiers=["mid"])).bars.frame
    pd.testing.assert_frame_equal(base, zero)
    mid = generate(SyntheticConfig(n_symbols=6, days=60, seed=4, edge_bps=8.0, edge_tiers=["mid"])).bars.frame
    m, se = _conditional_move_bps(mid, "MD01")
    assert m > 8.0 - 4 * se and se < 1.5
    pd.testing.assert_frame_equal(base[base["symbol"] == "LQ01"], mid[mid["symbol"] == "LQ01"])
