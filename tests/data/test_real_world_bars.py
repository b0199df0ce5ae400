"""Bars as users have them (issue 20): holes, time zones, mixed bar sizes, offsets among naive rows,
infinities, big files read in blocks, data synth folders. Expected numbers are computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from intradayjules.data import load_bars, reader
from intradayjules.errors import DataError

from .helpers import session_bars, write_csv

runner = CliRunner()


def days_bars(days, **kw) -> pd.DataFrame:
    return pd.concat([session_bars(d, **kw) for d in days], ignore_index=True)


# ------------------------------------------------------------------------------------------ holes
def test_a_long_hole_is_not_filled_and_splits_the_history(tmp_path):
    # Sessions with bars: Jun 2, 3, 5 and Jun 16 2025. Jun 4 (one session) is filled by the default
    # max_fill_sessions=1; Jun 6..13 (6 sessions) is a hole.
    raw = days_bars(["2025-06-02", "2025-06-03", "2025-06-05", "2025-06-16"])
    raw.loc[raw.index[-78:], ["open", "high", "low", "close"]] += 50  # the price jumps across the hole
    bars = load_bars(write_csv(raw, tmp_path / "HOLE_5min.csv"))
    f = bars.frame
    per_day = f.groupby("session").size()
    assert list(per_day.index.strftime("%m-%d")) == ["06-02", "06-03", "06-04", "06-05", "06-16"]
    assert (per_day == 78).all()
    jun4 = f[f["session"] == "2025-06-04"]
    assert jun4["stale"].all() and (jun4["close"] == f[f["session"] == "2025-06-03"]["close"].iloc[-1]).all()
    # nothing in the hole, and the first bar after it is the real one (no carried price)
    first_after = f[f["session"] == "2025-06-16"].iloc[0]
    assert first_after["open"] == raw.iloc[-78]["open"] and not first_after["stale"]
    assert bars.report.filled_sessions == 1 and bars.report.filled_session_bars == 78
    assert len(bars.report.holes) == 1
    h = bars.report.holes[0]
    assert (h.symbol, h.sessions, str(h.last_before.date()), str(h.first_after.date())) == (
        "HOLE", 6, "2025-06-05", "2025-06-16")
    # coverage: 4 input sessions x 78 bars over the 11 calendar sessions Jun 2..16
    cov = bars.coverage.set_index("symbol").loc["HOLE"]
    assert (cov["input_bars"], cov["expected_bars"], cov["holes"], cov["missing_sessions"]) == (312, 858, 1, 6)
    from intradayjules.data import summarize

    s = summarize(bars).set_index("symbol").loc["HOLE"]
    assert s["coverage"] == pytest.approx(312 / 858)


def test_max_fill_sessions_zero_fills_no_whole_session(tmp_path):
    raw = days_bars(["2025-06-02", "2025-06-04"])
    bars = load_bars(write_csv(raw, tmp_path / "Z.csv"), max_fill_sessions=0)
    assert bars.report.filled_sessions == 0 and len(bars.report.holes) == 1
    assert bars.frame["session"].nunique() == 2
    bars2 = load_bars(tmp_path / "Z.csv", max_fill_sessions=2)
    assert bars2.report.filled_sessions == 1 and bars2.frame["session"].nunique() == 3


def test_two_files_of_one_symbol_with_a_7_month_gap_stay_two_segments(tmp_path):
    # Jan 4 .. Jul 31 2024: 150 weekdays (Jan 20, Feb 21, Mar 21, Apr 22, May 23, Jun 20, Jul 23) minus 6
    # NYSE holidays (Jan 15, Feb 19, Mar 29, May 27, Jun 19, Jul 4) = 144 sessions missing.
    d = tmp_path / "two"
    d.mkdir()
    write_csv(days_bars(["2024-01-02", "2024-01-03"]), d / "ABC_a.csv")
    write_csv(days_bars(["2024-08-01", "2024-08-02"], price=150), d / "ABC_b.csv")
    bars = load_bars(d)
    assert len(pd.bdate_range("2024-01-04", "2024-07-31")) == 150
    assert len(bars.frame) == 4 * 78 and bars.report.filled_sessions == 0 and bars.report.filled_stale == 0
    (h,) = bars.report.holes
    assert (h.sessions, str(h.last_before.date()), str(h.first_after.date())) == (144, "2024-01-03", "2024-08-01")
    cov = bars.coverage.set_index("symbol").loc["ABC"]
    # 148 sessions of 78 bars, but Jul 3 2024 closes at 13:00 (42 bars)
    assert (cov["input_bars"], cov["expected_bars"]) == (4 * 78, 148 * 78 - (78 - 42))


# ------------------------------------------------------------------------------------- time zones
def utc_naive(days, n=78) -> pd.DataFrame:
    """Regular-session bars written as naive UTC wall clock (13:30 UTC in summer)."""
    out = []
    for d in days:
        ny = pd.date_range(f"{d} 09:30", periods=n, freq="5min", tz="America/New_York")
        p = 100 + 0.01 * np.arange(n)
        out.append(pd.DataFrame({"datetime": ny.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S"), "open": p,
                                 "high": p + 0.05, "low": p - 0.05, "close": p + 0.01, "volume": 1000.0}))
    return pd.concat(out, ignore_index=True)


def test_naive_utc_file_is_refused_with_the_option_that_fits(tmp_path):
    path = write_csv(utc_naive(["2025-06-02", "2025-06-03", "2025-12-01"]), tmp_path / "UTCX_5min.csv")
    with pytest.raises(DataError) as e:
        load_bars(path)
    err = e.value
    assert err.rule == "timezone_mismatch" and err.file == path and "--timezone UTC" in str(err)
    # read as New York, 13:30-15:55 is inside the session; 16:00 (row 31, line 32) is the first bar outside
    assert err.line == 32
    ok = load_bars(path, timezone="UTC")
    assert len(ok.frame) == 3 * 78 and ok.report.dropped_outside_session == 0
    # dollar volume is not cut: every bar kept
    assert ok.frame["volume"].sum() == 3 * 78 * 1000


def test_extended_hours_in_the_right_zone_is_not_flagged(tmp_path):
    raw = session_bars("2025-06-02", n=16 * 12, start="04:00")  # 04:00-19:55 New York
    bars = load_bars(write_csv(raw, tmp_path / "EXT.csv"))
    assert len(bars.frame) == 78 and bars.report.dropped_outside_session == 16 * 12 - 78


def test_tokyo_times_suggest_tokyo(tmp_path):
    ny = pd.date_range("2025-06-02 09:30", periods=78, freq="5min", tz="America/New_York")
    raw = session_bars("2025-06-02", n=78)
    raw["datetime"] = ny.tz_convert("Asia/Tokyo").strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(DataError) as e:
        load_bars(write_csv(raw, tmp_path / "TKY.csv"))
    assert e.value.rule == "timezone_mismatch" and "--timezone Asia/Tokyo" in str(e.value)


def test_an_offset_among_naive_rows_is_a_rule_error_with_its_line(tmp_path):
    raw = session_bars("2025-06-02", n=10)
    raw.loc[6, "datetime"] = "2025-06-02 14:00:00+00:00"
    with pytest.raises(DataError) as e:
        load_bars(write_csv(raw, tmp_path / "MIX.csv"))
    assert (e.value.rule, e.value.line, e.value.column) == ("mixed_timezone", 8, "timestamp")


def test_offset_row_in_a_later_block_is_found_by_the_second_pass(tmp_path, monkeypatch):
    raw = days_bars(["2025-06-02", "2025-06-03", "2025-06-04"])
    raw.loc[200, "datetime"] = "2025-06-04 13:30:00-04:00"
    path = write_csv(raw, tmp_path / "MIX2.csv")
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4096)  # ~70 rows a block: the offset is in block 3
    with pytest.raises(DataError) as e:
        load_bars(path)
    assert (e.value.rule, e.value.line) == ("mixed_timezone", 202)


@pytest.mark.parametrize("cell, column", [("inf", "high"), ("+inf", "close"), ("-inf", "low"), ("inf", "volume")])
def test_infinities_are_rule_errors_with_their_line(tmp_path, cell, column):
    raw = session_bars("2025-06-02", n=10).astype({column: object})
    raw.loc[4, column] = cell
    with pytest.raises(DataError) as e:
        load_bars(write_csv(raw, tmp_path / "INF.csv"))
    assert (e.value.rule, e.value.line, e.value.column) == ("not_finite", 6, column)


def test_blocks_give_the_same_table_and_the_same_error_lines(tmp_path, monkeypatch):
    raw = days_bars(["2025-06-02", "2025-06-03", "2025-06-04"]).assign(symbol="AAA")
    raw2 = days_bars(["2025-06-02", "2025-06-03", "2025-06-04"], price=50).assign(symbol="BBB")
    long = pd.concat([raw, raw2]).sort_values("datetime", kind="stable")
    path = write_csv(long, tmp_path / "long.csv")
    whole = load_bars(path).frame
    monkeypatch.setattr(reader, "BLOCK_BYTES", 2048)
    pd.testing.assert_frame_equal(load_bars(path).frame, whole)
    bad = long.copy()
    bad.iloc[400, bad.columns.get_loc("low")] = 1e6  # low above open/close on line 402
    with pytest.raises(DataError) as e:
        load_bars(write_csv(bad, tmp_path / "bad.csv"))
    assert (e.value.rule, e.value.line) == ("low_above", 402)


# ------------------------------------------------------------------------------------- bar sizes
def test_a_1min_file_next_to_a_5min_file_is_an_error_naming_both(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    write_csv(session_bars("2025-06-02", n=390, freq="1min"), d / "ONE_1min.csv")
    write_csv(session_bars("2025-06-02", n=78), d / "FIVE_5min.csv")
    with pytest.raises(DataError) as e:
        load_bars(d)
    msg = str(e.value)
    assert e.value.rule == "mixed_bar_size" and "ONE_1min.csv" in msg and "FIVE_5min.csv" in msg
    assert "1min" in msg and "5min" in msg and "--bar 5min" in msg
    # resampling is an explicit choice, and then both come out as 78 five-minute bars, none invented
    bars = load_bars(d, bar="5min")
    assert (bars.frame.groupby("symbol").size() == 78).all() and bars.report.filled_stale == 0
    assert "1min" in bars.report.resampled_from and "5min" in bars.report.resampled_from


def test_both_bar_sizes_for_one_symbol_in_one_file(tmp_path):
    raw = pd.concat([session_bars("2025-06-02", n=390, freq="1min"), session_bars("2025-06-03", n=78)])
    with pytest.raises(DataError) as e:
        load_bars(write_csv(raw, tmp_path / "BOTH.csv"))
    assert e.value.rule == "mixed_bar_size" and e.value.line == 392 and "2025-06-03" in str(e.value)


def test_sparse_1min_bars_are_not_taken_for_a_coarser_size(tmp_path):
    rng = np.random.default_rng(0)
    full = session_bars("2025-06-02", n=390, freq="1min")
    sparse = pd.concat([full.iloc[sorted(rng.choice(390, 40, replace=False))],
                        session_bars("2025-06-03", n=390, freq="1min").iloc[sorted(rng.choice(390, 40, replace=False))]])
    d = tmp_path / "sp"
    d.mkdir()
    write_csv(sparse, d / "THIN_1min.csv")
    write_csv(pd.concat([full, session_bars("2025-06-03", n=390, freq="1min")]), d / "THICK_1min.csv")
    bars = load_bars(d)
    assert bars.bar == pd.Timedelta("1min")
    thin = bars.frame[bars.frame["symbol"] == "THIN"]
    assert (~thin["stale"]).sum() == 80  # only the 80 real bars traded; the rest is filled inside the sessions


# ------------------------------------------------------------------------------------ data synth
def test_data_validate_reads_a_data_synth_folder(tmp_path):
    from intradayjules.cli import app

    out = tmp_path / "syn"
    res = runner.invoke(app, ["data", "synth", "--out", str(out), "--days", "60", "--symbols", "3"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["data", "validate", str(out)])
    assert res.exit_code == 0, res.output
    assert "universe.parquet" not in res.output and "LQ01" in res.output
    bars = load_bars(out)
    assert bars.report.files == [str(out / "bars.parquet")]


# ------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("section, field, value", [("data", "calendar", "XNYSE"), ("data", "bar", "5mins"),
                                                   ("data", "bar", "0min"), ("data", "bar", "2D")])
def test_config_validate_checks_calendar_and_bar(tmp_path, section, field, value):
    from intradayjules.cli import app

    p = tmp_path / "c.yaml"
    p.write_text(f"{section}:\n  {field}: {value}\n")
    res = runner.invoke(app, ["config", "validate", str(p)])
    assert res.exit_code == 2 and f"{section}.{field}" in res.output, res.output


def test_config_accepts_good_calendars_and_bars():
    from intradayjules.config import DataConfig, SyntheticConfig

    assert DataConfig(calendar="XLON", bar="15min").bar == "15min"
    with pytest.raises(ValueError, match="did you mean"):
        DataConfig(calendar="XNSY")
    with pytest.raises(ValueError, match="bar"):
        SyntheticConfig(bar="fivemin")


def test_in_memory_frames_take_the_same_path(synthetic_market):
    from intradayjules.data import bars_from_frame

    f = synthetic_market.bars.frame
    again = bars_from_frame(f[["timestamp", "symbol", "open", "high", "low", "close", "volume"]])
    pd.testing.assert_frame_equal(again.frame, f)
    bad = f[["timestamp", "symbol", "open", "high", "low", "close", "volume"]].copy()
    bad.iloc[5, bad.columns.get_loc("close")] = np.inf
    with pytest.raises(DataError) as e:
        bars_from_frame(bad)
    assert (e.value.rule, e.value.line, e.value.column) == ("not_finite", 6, "close")


def test_symbol_filter_keeps_only_those_symbols(tmp_path):
    long = pd.concat([session_bars("2025-06-02", n=6).assign(symbol=s) for s in ("aaa", "BBB", "Ccc")])
    bars = load_bars(write_csv(long, tmp_path / "long.csv"), symbols=["ccc", "AAA"])
    assert bars.symbols == ["AAA", "CCC"] and len(bars.frame) == 12


@pytest.mark.parametrize("opt, value", [("--timezone", "Mars/Base"), ("--calendar", "XXXX"), ("--bar", "7 parsecs")])
def test_data_validate_refuses_bad_options_without_a_traceback(tmp_path, opt, value):
    from intradayjules.cli import app

    path = write_csv(session_bars("2025-06-02", n=6), tmp_path / "A.csv")
    res = runner.invoke(app, ["data", "validate", path, opt, value])
    assert res.exit_code == 2 and opt in res.output and "Traceback" not in res.output, res.output
