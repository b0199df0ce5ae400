"""Layouts, aliases, time zones, sessions, gaps and resampling."""

import numpy as np
import pandas as pd
import pytest

from intradayjules.data import CANONICAL_COLUMNS, load_bars
from intradayjules.data.bars import find_problems
from intradayjules.errors import DataError

from .helpers import session_bars, write_csv


def test_csv_and_parquet_round_trip(tmp_path):
    raw = pd.concat([session_bars("2025-06-02"), session_bars("2025-06-03", price=101)])
    a = load_bars(write_csv(raw, tmp_path / "XYZ_5min.csv")).frame
    raw2 = raw.assign(datetime=pd.to_datetime(raw["datetime"]))
    raw2.to_parquet(tmp_path / "XYZ.parquet")
    b = load_bars(tmp_path / "XYZ.parquet").frame
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == CANONICAL_COLUMNS
    assert str(a["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert (a["symbol"] == "XYZ").all() and len(a) == 156
    # canonical output written and read back is still valid and identical
    a.to_parquet(tmp_path / "canon.parquet")
    c = load_bars(tmp_path / "canon.parquet").frame
    pd.testing.assert_frame_equal(a, c)


@pytest.mark.parametrize("names", [
    {"datetime": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"},
    {"datetime": "time", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "vol"},
    {"datetime": "TIMESTAMP", "open": "OPEN", "high": "HIGH", "low": "LOW", "close": "CLOSE", "volume": "VOLUME"},
])
def test_column_aliases(tmp_path, names):
    raw = session_bars("2025-06-02", n=6).rename(columns=names)
    f = load_bars(write_csv(raw, tmp_path / "abc.csv")).frame
    assert len(f) == 6 and f["symbol"].iloc[0] == "ABC"


def test_separate_date_and_time_columns(tmp_path):
    raw = session_bars("2025-06-02", n=3)
    dt_ = pd.to_datetime(raw.pop("datetime"))
    raw.insert(0, "Time", dt_.dt.strftime("%H:%M"))
    raw.insert(0, "Date", dt_.dt.strftime("%Y-%m-%d"))
    f = load_bars(write_csv(raw, tmp_path / "Q.csv")).frame
    assert f["timestamp"].iloc[0] == pd.Timestamp("2025-06-02 13:30", tz="UTC")


def test_dst_week_naive_times_follow_new_york(tmp_path):
    # DST starts Sunday 2025-03-09: 09:30 New York is 14:30 UTC on Friday and 13:30 UTC on Monday.
    raw = pd.concat([session_bars("2025-03-07"), session_bars("2025-03-10"), session_bars("2025-03-11")])
    f = load_bars(write_csv(raw, tmp_path / "DST.csv")).frame
    firsts = f.groupby("session")["timestamp"].min()
    assert firsts.loc["2025-03-07"] == pd.Timestamp("2025-03-07 14:30", tz="UTC")
    assert firsts.loc["2025-03-10"] == pd.Timestamp("2025-03-10 13:30", tz="UTC")
    assert (f.groupby("session").size() == 78).all()
    # November: DST ends Sunday 2025-11-02
    raw = pd.concat([session_bars("2025-10-31"), session_bars("2025-11-03")])
    f = load_bars(write_csv(raw, tmp_path / "DST2.csv")).frame
    firsts = f.groupby("session")["timestamp"].min()
    assert firsts.loc["2025-10-31"] == pd.Timestamp("2025-10-31 13:30", tz="UTC")
    assert firsts.loc["2025-11-03"] == pd.Timestamp("2025-11-03 14:30", tz="UTC")


def test_offset_timestamps_are_converted_not_relocalised(tmp_path):
    raw = session_bars("2025-06-02", n=3)
    raw["datetime"] = pd.to_datetime(raw["datetime"]).dt.tz_localize("America/New_York").dt.tz_convert("UTC").astype(str)
    f = load_bars(write_csv(raw, tmp_path / "UTC.csv"), timezone="Asia/Tokyo").frame
    assert f["timestamp"].iloc[0] == pd.Timestamp("2025-06-02 13:30", tz="UTC")


def test_half_day_and_holiday(tmp_path):
    # 2025-11-28 (day after Thanksgiving) closes 13:00: bars at/after 13:00 are extended hours.
    # 2025-11-27 is a holiday: its bars are dropped and reported.
    raw = pd.concat([session_bars("2025-11-26"), session_bars("2025-11-27"), session_bars("2025-11-28")])
    bars = load_bars(write_csv(raw, tmp_path / "HALF.csv"))
    per_day = bars.frame.groupby("session").size()
    assert per_day.loc["2025-11-26"] == 78
    assert "2025-11-27" not in per_day.index.strftime("%Y-%m-%d")
    assert per_day.loc["2025-11-28"] == 42  # 09:30 .. 12:55
    assert bars.report.dropped_non_session_days == 78
    assert bars.report.dropped_outside_session == 78 - 42


def test_extended_hours_dropped_unless_asked(tmp_path):
    raw = session_bars("2025-06-02", n=78 + 6, start="09:00")  # 6 pre-market bars, 09:00-09:25
    assert len(load_bars(write_csv(raw, tmp_path / "E.csv")).frame) == 78
    f = load_bars(tmp_path / "E.csv", extended_hours=True).frame
    assert len(f) == 84 and (f["session"] == pd.Timestamp("2025-06-02")).all()


def test_missing_bars_filled_as_stale_never_traded(tmp_path):
    raw = session_bars("2025-06-02", n=10).drop(index=[3, 4])
    bars = load_bars(write_csv(raw, tmp_path / "G.csv"))
    f = bars.frame
    assert len(f) == 10 and bars.report.filled_stale == 2
    filled = f.iloc[3:5]
    prev_close = f["close"].iloc[2]
    assert (filled["volume"] == 0).all() and filled["stale"].all()
    for c in ("open", "high", "low", "close"):
        assert (filled[c] == prev_close).all()
    assert list(filled["secs_since_trade"]) == [300.0, 600.0]
    assert f["secs_since_trade"].iloc[5] == 0.0
    assert find_problems(f) == []
    # nothing is invented after the last bar
    assert f["timestamp"].iloc[-1] == pd.Timestamp("2025-06-02 13:30", tz="UTC") + pd.Timedelta("45min")


def test_resample_1min_to_5min_by_hand(tmp_path):
    ts = pd.date_range("2025-06-02 09:30", periods=10, freq="1min")
    o = np.array([10, 11, 12, 13, 14, 20, 21, 22, 23, 24], float)
    raw = pd.DataFrame({"datetime": ts.astype(str), "open": o, "high": o + 1, "low": o - 1,
                        "close": o + 0.5, "volume": [1, 2, 3, 4, 5, 0, 10, 0, 30, 40]})
    raw.loc[5, ["open", "high", "low", "close"]] = 14.5  # untraded minute repeats the last price
    raw.loc[7, ["open", "high", "low", "close"]] = 21.5
    bars = load_bars(write_csv(raw, tmp_path / "R.csv"), bar="5min", fill_gaps=False)
    f = bars.frame
    assert len(f) == 2 and bars.report.resampled_from == "0 days 00:01:00"
    first, second = f.iloc[0], f.iloc[1]
    assert (first.open, first.high, first.low, first.close, first.volume) == (10, 15, 9, 14.5, 15)
    # second window: untraded minutes 5 and 7 don't set prices
    assert (second.open, second.high, second.low, second.close, second.volume) == (21, 25, 20, 24.5, 80)
    assert second.timestamp == pd.Timestamp("2025-06-02 13:35", tz="UTC")


def test_resample_to_non_multiple_is_an_error(tmp_path):
    raw = session_bars("2025-06-02", n=12)
    with pytest.raises(DataError, match="multiple"):
        load_bars(write_csv(raw, tmp_path / "R.csv"), bar="7min")


def test_nonexistent_local_time_is_reported(tmp_path):
    raw = pd.DataFrame({"datetime": ["2025-03-09 02:30:00"], "open": [1.0], "high": [1.0], "low": [1.0],
                        "close": [1.0], "volume": [1.0]})
    with pytest.raises(DataError) as e:
        load_bars(write_csv(raw, tmp_path / "N.csv"))
    assert e.value.rule == "bad_timestamp" and e.value.line == 2
