"""The verdict sentence, one constructed input per branch (numbers in the text come from the inputs)."""

from __future__ import annotations

import math

import numpy as np

from intradayjules.evaluate.overfitting import DeflatedSharpe, PBOResult
from intradayjules.evaluate.paired import PairedComparison
from intradayjules.evaluate.verdict import comparison_reading, selection_phrase, verdict


def comp(ref, mean, lo, hi, p, *, level=0.95, identical=False, reason="", n=250):
    return PairedComparison("model", ref, mean, lo, hi, p, p, n, level, "test", 2.0, 10_000, 0, identical, reason)


def dsr(p, n_trials=16, reason=""):
    return DeflatedSharpe(1 - p, p, 0.1, 0.08, n_trials, 0.004, 250, 0.0, 3.0, reason=reason)


def pbo(value, n_trials=16):
    z = np.zeros(1)
    return PBOResult(value, n_trials, 16, 12870, 250, "mean", z, z, z)


def test_comparison_branches():
    assert comparison_reading(comp("flat", 1.2, -0.8, 3.1, 0.24)) == "not distinguishable from flat at 95 %"
    assert comparison_reading(comp("flat", 2.0, 0.4, 3.6, 0.01)) == "better than flat at 95 %"
    assert comparison_reading(comp("buy_hold", -3.0, -5.0, -1.0, 0.003)) == "worse than buy_hold at 95 %"
    assert comparison_reading(comp("flat", 2.0, 0.4, 3.6, 0.01, level=0.9)) == "better than flat at 90 %"
    assert comparison_reading(comp("flat", 0, 0, 0, 1.0, identical=True)) == "identical to flat on every session"
    short = comp("flat", math.nan, math.nan, math.nan, math.nan, reason="fewer than 2 sessions", n=1)
    assert comparison_reading(short) == "not enough sessions to compare with flat"


def test_selection_branches():
    assert selection_phrase() == "no tuning trials: selection bias not assessed"
    assert selection_phrase(dsr(0.41), pbo(0.55)) == \
        "the best of 16 trials is not distinguishable from luck (DSR p = 0.41, PBO = 0.55)"
    assert selection_phrase(dsr(0.004), pbo(0.12)) == \
        "the best of 16 trials is distinguishable from luck (DSR p = 0.004, PBO = 0.12)"
    assert selection_phrase(dsr(0.02)) == "the best of 16 trials is distinguishable from luck (DSR p = 0.02)"
    assert selection_phrase(dsr(0.02), pbo(0.6)).startswith(
        "the best of 16 trials passes the deflated Sharpe test but its selection is likely overfit")
    assert selection_phrase(None, pbo(0.7, 8)) == "the selection among 8 trials is likely overfit (PBO = 0.70)"
    assert selection_phrase(None, pbo(0.2, 8)) == "the selection among 8 trials is not evidently overfit (PBO = 0.20)"
    undefined = DeflatedSharpe(math.nan, math.nan, math.nan, 0.1, 16, 0.01, 250, math.nan, math.nan,
                               reason="selected trial 3: no variance")
    assert selection_phrase(undefined, pbo(0.5)) == \
        "the deflated Sharpe of the best of 16 trials is undefined (selected trial 3: no variance; PBO = 0.50)"
    # alpha decides: p = 0.07 passes at 10 %, not at 5 %
    assert "is distinguishable" in selection_phrase(dsr(0.07), alpha=0.10)
    assert "not distinguishable" in selection_phrase(dsr(0.07), alpha=0.05)


def test_full_sentence_from_the_issue_example():
    text = verdict({"flat": comp("flat", 1.2, -0.8, 3.1, 0.24), "buy_hold": comp("buy_hold", -3.4, -6.0, -0.9, 0.01)},
                   dsr=dsr(0.41), pbo=pbo(0.55))
    assert text == ("Model vs flat: +1.20 bps/day [-0.80, +3.10] 95 % CI, p = 0.24: not distinguishable from flat "
                    "at 95 %; vs buy_hold: -3.40 bps/day [-6.00, -0.90] 95 % CI, p = 0.01: worse than buy_hold at "
                    "95 %; the best of 16 trials is not distinguishable from luck (DSR p = 0.41, PBO = 0.55).")
    same = verdict([comp("flat", 0.0, 0.0, 0.0, 1.0, identical=True)])
    assert same == "Model vs flat: identical to flat on every session (n = 250); no tuning trials: selection bias " \
                   "not assessed."


def test_verdict_from_computed_statistics():
    # end to end on simulated P&L: a planted edge reads "better", noise reads "not distinguishable"
    from intradayjules.evaluate.paired import paired_comparison

    rng = np.random.default_rng(0)
    flat = np.zeros(250)
    edge = paired_comparison(rng.normal(3.0, 10.0, 250), flat, name_b="flat")
    noise = paired_comparison(rng.normal(0.0, 10.0, 250), flat, name_b="flat")
    assert "better than flat at 95 %" in verdict([edge])
    assert "not distinguishable from flat at 95 %" in verdict([noise])
    assert f"{edge.mean_diff:+.2f} bps/day [{edge.ci_low:+.2f}, {edge.ci_high:+.2f}]" in verdict([edge])
