"""Partial sessions excluded and counted; pairing by session; aggregation over seeds that never drops NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from intradayjules.evaluate.daily_pnl import align_pair, exclude_partial, finite_values, mean_over_seeds
from intradayjules.evaluate.sharpe import NO_VARIANCE, sharpe_ratio

IDX = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]


def test_exclude_partial_by_mask_and_by_labels():
    pnl = pd.Series([1.0, 2.0, 3.0, 4.0], index=IDX)
    mask = pd.Series([False, True, False, True], index=IDX)
    got = exclude_partial(pnl, mask)
    assert list(got.values.index) == ["2024-01-02", "2024-01-04"] and got.n_excluded == 2
    assert got.excluded == ("2024-01-03", "2024-01-05")
    by_label = exclude_partial(pnl, ["2024-01-05"])
    assert by_label.n_excluded == 1 and by_label.values.sum() == 6.0
    assert exclude_partial(pnl).n_excluded == 0


def test_exclude_partial_rejects_misaligned_flags():
    pnl = pd.Series([1.0, 2.0], index=IDX[:2])
    with pytest.raises(ValueError, match="2024-01-04"):
        exclude_partial(pnl, pd.Series([True], index=["2024-01-04"]))
    with pytest.raises(ValueError, match="no partial-session flag for session '2024-01-03'"):
        exclude_partial(pnl, pd.Series([False], index=["2024-01-02"]))
    with pytest.raises(ValueError, match="2024-02-01"):
        exclude_partial(pnl, ["2024-02-01"])


def test_align_pair_orders_by_the_first_series_and_rejects_duplicates():
    a = pd.Series([1.0, 2.0, 3.0], index=IDX[:3])
    b = pd.Series([30.0, 10.0, 20.0], index=[IDX[2], IDX[0], IDX[1]])
    x, y = align_pair(a, b)
    np.testing.assert_array_equal(y, [10.0, 20.0, 30.0])
    dup = pd.Series([1.0, 2.0, 3.0], index=[IDX[0], IDX[0], IDX[1]])
    with pytest.raises(ValueError, match="appears twice"):
        align_pair(dup, a)


def test_finite_values_names_position_and_session():
    with pytest.raises(ValueError, match="position 2 \\(session '2024-01-04'\\)"):
        finite_values(pd.Series([0.0, 1.0, np.nan], index=IDX[:3]))


def test_mean_over_seeds_raises_on_nan_naming_seeds_and_reasons():
    flat = np.zeros(30)
    values = {0: 1.2, 1: sharpe_ratio(flat), 2: 0.8}
    with pytest.raises(ValueError, match="1 of 3 seeds \\(seed 1: no variance\\)"):
        mean_over_seeds(values, reasons={1: NO_VARIANCE}, what="Sharpe")
    rep = mean_over_seeds(values, reasons={1: NO_VARIANCE}, nan="propagate", what="Sharpe")
    assert math.isnan(rep.mean) and rep.undefined == {1: NO_VARIANCE} and "seed 1: no variance" in rep.reason
    assert rep.describe().startswith("n/a (Sharpe undefined for 1 of 3 seeds")
    ok = mean_over_seeds({0: 1.0, 1: 2.0, 2: 4.0})
    assert ok.mean == pytest.approx(7 / 3) and ok.sd == pytest.approx(np.std([1, 2, 4], ddof=1)) and ok.n == 3
    assert "over 3 seeds" in ok.describe()
    with pytest.raises(ValueError, match="nan must be"):
        mean_over_seeds({0: 1.0}, nan="drop")
