"""The assessment: partial sessions out and counted, comparisons as the paired test, ranking by mean P&L,
DSR/PBO from a trial matrix, the verdict, and a JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from intradayjules.evaluate.assessment import Assessment, assess, n_blocks_for
from intradayjules.evaluate.overfitting import deflated_sharpe_from_trials, pbo_cscv
from intradayjules.evaluate.paired import paired_comparison
from intradayjules.evaluate.records import DAILY_COLUMNS


def _daily(net, partial=None, start="2025-03-03") -> pd.DataFrame:
    n = len(net)
    sessions = pd.bdate_range(start, periods=n)
    d = pd.DataFrame({c: 0.0 for c in DAILY_COLUMNS}, index=range(n))
    d["session"] = sessions
    d["net_bps"] = net
    d["partial"] = partial if partial is not None else [False] * n
    d["end_reason"] = "session_close"
    return d[DAILY_COLUMNS]


@pytest.fixture
def tables():
    rng = np.random.default_rng(7)
    n = 60
    partial = [False] * (n - 1) + [True]
    model = rng.normal(-2.0, 10.0, n)
    model[-1] = 500.0  # a partial session with an absurd value: must not move any statistic
    bh = rng.normal(3.0, 30.0, n)
    return {"model": _daily(model, partial), "flat": _daily(np.zeros(n), partial),
            "buy_hold": _daily(bh, partial), "worse": _daily(model - 25.0, partial)}


def test_comparisons_are_the_paired_test_on_full_sessions(tables):
    a = assess(tables, seed=3, n_resamples=2000)
    assert a.excluded == [tables["model"]["session"].iloc[-1].date().isoformat()] and a.n_excluded == 1
    assert len(a.sessions) == 59 and list(a.comparisons) == ["flat", "buy_hold", "worse"]
    m = pd.Series(tables["model"]["net_bps"].to_numpy()[:-1])
    for ref in ("flat", "buy_hold", "worse"):
        want = paired_comparison(m.to_numpy(), tables[ref]["net_bps"].to_numpy()[:-1], name_a="model", name_b=ref,
                                 seed=3, n_resamples=2000)
        got = a.comparisons[ref]
        assert (got.mean_diff, got.ci_low, got.ci_high, got.p_value) == pytest.approx(
            (want.mean_diff, want.ci_low, want.ci_high, want.p_value))
    assert a.comparisons["flat"].mean_diff == pytest.approx(m.mean())
    assert a.comparisons["worse"].identical is False and a.comparisons["worse"].mean_diff == pytest.approx(25.0)
    assert math.isnan(a.sharpes["flat"].sharpe) and a.sharpes["flat"].reason == "no variance"
    # ranking by mean daily P&L on the same sessions (never by Sharpe)
    assert [r["policy"] for r in a.ranking] == sorted(tables, key=lambda k: -tables[k]["net_bps"].iloc[:-1].mean())
    assert "Model vs flat" in a.verdict and "better than worse at 95 %" in a.verdict
    assert "selection bias not assessed" in a.verdict


def test_including_partial_sessions_changes_the_numbers(tables):
    """The control for the exclusion above: with the partial session kept, the mean moves by ~8 bps."""
    kept = assess(tables, seed=3, n_resamples=500, exclude_partial_sessions=False)
    out = assess(tables, seed=3, n_resamples=500)
    assert kept.comparisons["flat"].mean_diff - out.comparisons["flat"].mean_diff > 5.0 and kept.excluded == []


def test_policies_must_share_sessions(tables):
    bad = dict(tables)
    bad["flat"] = _daily(np.zeros(60), start="2025-04-01")
    with pytest.raises(ValueError, match="flat: its sessions"):
        assess(bad)


def test_selection_from_the_trial_matrix_and_json_round_trip(tables):
    rng = np.random.default_rng(1)
    trials = pd.DataFrame(rng.normal(0, 10, (24, 6)), index=pd.bdate_range("2025-01-02", periods=24),
                          columns=[str(i) for i in range(6)])
    a = assess(tables, trial_pnl=trials, selected="2", seed=0, n_resamples=1000)
    want = deflated_sharpe_from_trials(trials, "2")
    assert a.dsr.selected == "2" and a.dsr.p_value == pytest.approx(want.p_value)
    assert a.pbo.pbo == pytest.approx(pbo_cscv(trials, 16).pbo) and a.pbo.n_blocks == 16
    assert "the best of 6 trials" in a.verdict and a.n_trials == 6 and a.trial_sessions == 24
    back = Assessment.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.verdict == a.verdict and back.excluded == a.excluded
    assert back.comparisons["buy_hold"] == a.comparisons["buy_hold"]
    assert back.sharpes["model"] == a.sharpes["model"] and math.isnan(back.sharpes["flat"].sharpe)
    assert back.dsr.dsr == pytest.approx(a.dsr.dsr) and np.array_equal(back.pbo.logits, a.pbo.logits)
    assert back.pnl["model"].equals(a.pnl["model"])


def test_selection_not_assessable_says_why(tables):
    one = pd.DataFrame({"0": np.linspace(-1, 1, 10)}, index=pd.bdate_range("2025-01-02", periods=10))
    a = assess(tables, trial_pnl=one, n_resamples=200)
    assert a.pbo is None and "PBO needs at least 2 trials" in a.selection_note and a.dsr.n_trials == 1
    short = pd.DataFrame({"0": [1.0], "1": [2.0]}, index=pd.bdate_range("2025-01-02", periods=1))
    b = assess(tables, trial_pnl=short, n_resamples=200)
    assert b.dsr is None and b.pbo is None and "1 validation session" in b.verdict
    assert [n_blocks_for(t) for t in (1, 2, 5, 12, 40)] == [0, 2, 4, 12, 16]
