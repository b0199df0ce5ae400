"""data validate beyond the rules: regime shifts, tier changes, one window for ADV and tier, sessions
enough for a run. Numbers computed by hand from the fixture."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from intradayjules.config import SplitConfig, TierConfig
from intradayjules.data import load_bars
from intradayjules.data.quality import regime_shifts, split_counts, summarize, tier_changes

from .helpers import write_csv

runner = CliRunner()
SPARSE = list(range(0, 78, 10))  # 8 bars of 78 traded on the single-venue feed


def xnys_sessions(n: int, start: str = "2025-01-02") -> list[pd.Timestamp]:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start="2024-01-01")
    s = cal.sessions[cal.sessions >= pd.Timestamp(start)][:n]
    return [pd.Timestamp(d).tz_localize(None) for d in s]


def feed_change(days: list[pd.Timestamp], switch: int) -> pd.DataFrame:
    """Price 10 throughout; sessions before ``switch`` have 8 bars of volume 100 (dollar volume 8,000),
    from ``switch`` on all 78 bars trade 1,000 shares (780,000)."""
    out = []
    for i, d in enumerate(days):
        ts = pd.date_range(f"{d.date()} 09:30", periods=78, freq="5min")
        rows = SPARSE if i < switch else list(range(78))
        vol = 100.0 if i < switch else 1000.0
        out.append(pd.DataFrame({"datetime": ts[rows].strftime("%Y-%m-%d %H:%M:%S"), "open": 10.0, "high": 10.0,
                                 "low": 10.0, "close": 10.0, "volume": vol}))
    return pd.concat(out, ignore_index=True)


@pytest.fixture
def feed(tmp_path):
    days = xnys_sessions(50)
    path = write_csv(feed_change(days, 25), tmp_path / "FEED_5min.csv")
    return load_bars(path), days, path


def test_feed_change_is_a_regime_shift_on_its_date(feed):
    bars, days, _ = feed
    shifts = {s.series: s for s in regime_shifts(bars, window=20, factor=5.0)}
    dv, share = shifts["dollar_volume"], shifts["traded_share"]
    assert dv.session == days[25] and share.session == days[25]
    assert (dv.before, dv.after) == (8_000.0, 780_000.0) and dv.factor == pytest.approx(97.5)
    assert share.before == pytest.approx(8 / 78) and share.after == 1.0
    assert str(days[25].date()) in str(dv)
    # a factor above both jumps finds nothing; a stable series finds nothing
    assert regime_shifts(bars, window=20, factor=100.0) == []


def test_no_shift_without_a_change(tmp_path):
    days = xnys_sessions(50)
    bars = load_bars(write_csv(feed_change(days, 0), tmp_path / "FLAT.csv"))
    assert regime_shifts(bars, window=20, factor=5.0) == []


def test_tier_changes_and_one_window(feed):
    bars, days, _ = feed
    tiers = TierConfig(adv_window_days=20, liquid_min_adv=500_000, illiquid_max_adv=100_000)
    ch = tier_changes(bars, tiers)
    # trailing ADV with k dense sessions in the previous 20: (780,000 k + 8,000 (20 - k)) / 20
    # -> k = 3 first reaches 100,000 (123,800: mid) at session 28; k = 13 first reaches 500,000 at session 38
    assert [(pd.Timestamp(r.session), r.from_tier, r.to_tier) for r in ch.itertuples()] == [
        (days[28], "illiquid", "mid"), (days[38], "mid", "liquid")]
    assert ch["adv"].tolist() == pytest.approx([(3 * 780_000 + 17 * 8_000) / 20, (13 * 780_000 + 7 * 8_000) / 20])
    s = summarize(bars, tiers).set_index("symbol").loc["FEED"]
    assert s["adv"] == 780_000.0 and s["tier"] == "liquid"
    assert s["window"] == f"20 sessions {days[30].date()}..{days[49].date()}"
    # as of an earlier date: the same window rule, so ADV and tier agree with each other there too
    s2 = summarize(bars, tiers, as_of=days[26]).set_index("symbol").loc["FEED"]
    assert s2["adv"] == pytest.approx((780_000 + 19 * 8_000) / 20) and s2["tier"] == "illiquid"


def test_cli_lists_the_shift_and_the_tier_changes(feed, tmp_path):
    from intradayjules.cli import app

    _, days, path = feed
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  tiers: {liquid_min_adv: 500000, illiquid_max_adv: 100000}\n"
                   "  splits: {train_frac: 0.6, val_frac: 0.2}\n")
    res = runner.invoke(app, ["data", "validate", path, "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert f"regime shift: FEED: daily dollar volume x97.5 ($8,000 -> $780,000) from {days[25].date()}" in out
    assert f"{days[28].date()} illiquid->mid" in out and f"{days[38].date()} mid->liquid" in out
    assert "ADV 20d" in out and "liquid" in out


@pytest.mark.parametrize("splits, n, warmup", [
    (SplitConfig(), 50, 20), (SplitConfig(), 30, 20), (SplitConfig(train_frac=0.5, val_frac=0.0), 41, 5),
    (SplitConfig(train_end="2025-02-14", val_end="2025-03-03"), 60, 10), (SplitConfig(), 10, 0)])
def test_split_counts_agree_with_the_env_rule(splits, n, warmup):
    from intradayjules.env.episodes import session_splits

    days = xnys_sessions(n)
    ref = session_splits(days, splits, warmup=warmup)
    c = split_counts(days, splits, warmup)
    assert (c.train, c.val, c.test) == (len(ref["train"]), len(ref["val"]), len(ref["test"]))


def test_too_few_sessions_are_found_by_validate(tmp_path):
    from intradayjules.cli import app

    days = xnys_sessions(30)
    path = write_csv(feed_change(days, 0), tmp_path / "FEW.csv")
    res = runner.invoke(app, ["data", "validate", path])
    assert res.exit_code == 0  # the data are valid; the warning says a run would stop
    assert "warning: 30 sessions leave no training session after the 20-session ADV warm-up" in " ".join(res.output.split())
    res = runner.invoke(app, ["data", "validate", write_csv(feed_change(xnys_sessions(60), 0), tmp_path / "OK.csv")])
    assert "no training session" not in res.output
    c = split_counts(days, SplitConfig(), 20)
    assert (c.train, c.val, c.test) == (0, 6, 6)  # floor(0.6*30)=18 sessions, all in the warm-up


def test_summary_coverage_ignores_filled_bars(feed):
    bars, days, _ = feed
    s = summarize(bars).set_index("symbol").loc["FEED"]
    # input: 25 x 8 + 25 x 78 bars over 50 full sessions of 78
    assert s["coverage"] == pytest.approx((25 * 8 + 25 * 78) / (50 * 78))
    # the sparse sessions are filled to 78 bars (segments run from 09:30 of the first to 15:55 of the last)
    assert len(bars.frame) == 50 * 78 and np.isclose(s["stale_share"], 25 * 70 / (50 * 78))


def test_daily_dollar_volume_matches_a_groupby(synthetic_market):
    from intradayjules.data.tiers import daily_dollar_volume

    f = synthetic_market.bars.frame
    ref = (f.assign(dv=f["close"] * f["volume"]).groupby(["symbol", "session"])
           .agg(dollar_volume=("dv", "sum"), volume=("volume", "sum"), bars=("stale", "size"),
                stale_bars=("stale", "sum")).reset_index())
    for frame in (f, f.sample(frac=1.0, random_state=0)):  # canonical order, and any order
        got = daily_dollar_volume(frame)
        assert list(got.columns) == list(ref.columns)
        np.testing.assert_array_equal(got["symbol"].astype(str), ref["symbol"].astype(str))
        np.testing.assert_array_equal(got["session"].to_numpy(), ref["session"].to_numpy())
        for c in ("dollar_volume", "volume"):
            np.testing.assert_allclose(got[c], ref[c], rtol=1e-12)
        np.testing.assert_array_equal(got["bars"], ref["bars"])
        np.testing.assert_array_equal(got["stale_bars"], ref["stale_bars"])
