"""ReplayFeed: every bar once, in time order across symbols, batched by close time; pacing by speed
(with a fake clock), no sleeping at speed 0, resume after a bar, files and specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import SyntheticConfig
from intradayjules.data.synthetic import generate
from intradayjules.errors import DataError
from intradayjules.live.feed import Bar, Feed, ReplayFeed, open_feed

BAR = 300 * 10**9


@pytest.fixture(scope="module")
def mk():
    return generate(SyntheticConfig(n_symbols=3, days=3, seed=1))


def test_every_bar_once_in_time_order(mk):
    f = mk.bars.frame
    feed = ReplayFeed(f)
    assert isinstance(feed, Feed)
    batches = list(feed)
    bars = [b for batch in batches for b in batch]
    assert len(bars) == len(f)
    keys = [(b.ts, b.symbol) for b in bars]
    assert keys == sorted(keys)  # time order, symbols sorted within a time
    assert all(len({b.ts for b in batch}) == 1 for batch in batches)
    assert len(batches) == f["timestamp"].nunique() == feed.delivered
    # values are the table's, and each bar closes one bar length after it starts
    got = pd.DataFrame(bars)
    want = f.sort_values(["timestamp", "symbol"]).reset_index(drop=True)
    np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())
    np.testing.assert_array_equal(got["ts"].to_numpy(), want["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64"))
    np.testing.assert_array_equal(got["session"].to_numpy(), want["session"].to_numpy(dtype="datetime64[ns]").view("int64"))
    assert (got["end"] - got["ts"] == BAR).all()
    assert bars[0].timestamp == want["timestamp"].iloc[0]


def test_speed_paces_like_live_and_zero_never_sleeps(mk):
    f = mk.bars.frame
    slept: list[float] = []
    for batch in ReplayFeed(f, speed=0, sleep=slept.append):
        pass
    assert slept == []
    slept = []
    n = len(list(ReplayFeed(f, speed=10, sleep=slept.append)))
    assert len(slept) == n - 1
    # within a session: 300 s / 10; the night between sessions is paced as one bar
    assert set(np.round(slept, 9)) == {30.0}
    slept = []
    list(ReplayFeed(f, speed=0.5, sleep=slept.append))
    assert set(np.round(slept, 9)) == {600.0}


def test_start_after_resumes_after_a_bar(mk):
    f = mk.bars.frame
    all_bars = [b for batch in ReplayFeed(f) for b in batch]
    cut = all_bars[100].ts
    rest = [b for batch in ReplayFeed(f, start_after=cut) for b in batch]
    assert rest == [b for b in all_bars if b.ts > cut]


def test_close_stops_the_feed(mk):
    feed = ReplayFeed(mk.bars.frame)
    it = iter(feed)
    next(it)
    feed.close()
    assert list(it) == []


def test_files_and_spec(mk, tmp_path):
    paths = mk.write(tmp_path / "syn")
    feed = open_feed(f"replay:{paths['bars']}", speed=0)
    bars = [b for batch in feed for b in batch]
    assert len(bars) == len(mk.bars.frame)
    assert all(isinstance(b, Bar) for b in bars[:5])
    with pytest.raises(ValueError, match="SCHEME:ARGUMENT"):
        open_feed("replay")
    with pytest.raises(ValueError, match="unknown feed scheme 'kafka'"):
        open_feed("kafka:topic")
    with pytest.raises(DataError):
        open_feed(f"replay:{tmp_path / 'nothing-here'}")
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(mk.bars.frame, speed=-1)


@pytest.mark.realdata
def test_replay_real_folder(shared_data_dir):
    from intradayjules.config import DataConfig

    feed = ReplayFeed(shared_data_dir, data=DataConfig(symbols=["AAPL", "MELI"]))
    assert feed.symbols == ["AAPL", "MELI"] and feed.bar_ns == BAR
    n = 0
    last = -1
    for batch in feed:
        assert batch[0].ts > last
        last = batch[0].ts
        n += len(batch)
        if n > 5_000:
            break
    assert n > 5_000
