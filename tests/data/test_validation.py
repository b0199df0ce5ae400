"""Every validation rule raises a DataError naming file, line and rule; repairs only on request."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intradayjules.data import load_bars
from intradayjules.errors import DataError

from .helpers import session_bars, write_csv


@pytest.fixture
def good(tmp_path):
    return session_bars("2025-06-02", n=10)


def _load_err(df, tmp_path, **kw):
    path = write_csv(df, tmp_path / "ABC_5min.csv")
    with pytest.raises(DataError) as e:
        load_bars(path, **kw)
    return e.value, path


@pytest.mark.parametrize(
    "mutate, rule, line, column",
    [
        (lambda d: d.drop(columns="volume"), "missing_column", None, "volume"),
        (lambda d: d.assign(datetime=d["datetime"].where(d.index != 3, "not-a-date")), "bad_timestamp", 5, "timestamp"),
        (lambda d: d.assign(close=d["close"].where(d.index != 4, np.nan)), "nan", 6, "close"),
        (lambda d: d.assign(open=d["open"].where(d.index != 2, 0.0)), "non_positive_price", 4, "open"),
        (lambda d: d.assign(high=d["high"].where(d.index != 6, 1.0)), "high_below", 8, "high"),
        (lambda d: d.assign(low=d["low"].where(d.index != 7, 1000.0)), "low_above", 9, "low"),
        (lambda d: d.assign(volume=d["volume"].where(d.index != 1, -5.0)), "negative_volume", 3, "volume"),
        (lambda d: pd.concat([d.iloc[:5], d.iloc[4:5], d.iloc[5:]]), "duplicate_timestamp", 7, "timestamp"),
        (lambda d: d.iloc[[0, 1, 3, 2, 4, 5]], "unsorted", 5, "timestamp"),
        (lambda d: d.assign(volume=d["volume"].astype(object).where(d.index != 2, "lots")), "not_a_number", 4, "volume"),
    ],
)
def test_each_rule(good, tmp_path, mutate, rule, line, column):
    err, path = _load_err(mutate(good), tmp_path)
    assert err.rule == rule
    assert err.file == path
    assert err.line == line
    assert err.column == column
    assert path in str(err) and rule in str(err)


def test_problems_list_first_errors_of_several_rules(good, tmp_path):
    bad = good.assign(volume=good["volume"].where(good.index != 1, -1.0),
                      open=good["open"].where(good.index != 2, -3.0))
    err, _ = _load_err(bad, tmp_path)
    rules = " ".join(err.problems)
    assert "negative_volume" in rules and "non_positive_price" in rules


def test_repairs_are_opt_in_and_reported(good, tmp_path):
    messy = pd.concat([good.iloc[[0, 2, 1]], good.iloc[2:3], good.iloc[3:]])
    path = write_csv(messy, tmp_path / "ABC.csv")
    with pytest.raises(DataError):
        load_bars(path)
    before = Path(path).read_text()
    bars = load_bars(path, repair={"sort": True, "drop_duplicates": True})
    assert len(bars.frame) == len(good)
    assert bars.frame["timestamp"].is_monotonic_increasing
    text = " ".join(bars.report.lines())
    assert "sorted" in text and "dropped 1 duplicate" in text
    assert Path(path).read_text() == before  # nothing written over the input


def test_interleaved_long_file_checks_order_per_symbol(tmp_path):
    a = session_bars("2025-06-02", n=4).assign(symbol="AAA")
    b = session_bars("2025-06-02", n=4, price=50).assign(symbol="BBB")
    long = pd.concat([a, b]).sort_values("datetime", kind="stable")  # interleaved by time: fine
    bars = load_bars(write_csv(long, tmp_path / "long.csv"))
    assert bars.symbols == ["AAA", "BBB"]
    swapped = long.copy()
    swapped.iloc[[2, 4]] = swapped.iloc[[4, 2]].to_numpy()  # AAA 09:35 <-> AAA 09:40
    with pytest.raises(DataError) as e:
        load_bars(write_csv(swapped, tmp_path / "long2.csv"))
    assert e.value.rule == "unsorted" and e.value.line == 6


def test_symbol_in_two_files_is_an_error(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    write_csv(session_bars("2025-06-02", n=4), d / "AAA_5min.csv")
    write_csv(session_bars("2025-06-02", n=4).assign(symbol="AAA"), d / "other.csv")
    with pytest.raises(DataError, match="more than one file"):
        load_bars(d)


def test_missing_path(tmp_path):
    with pytest.raises(DataError) as e:
        load_bars(tmp_path / "absent")
    assert e.value.rule == "missing_file"
