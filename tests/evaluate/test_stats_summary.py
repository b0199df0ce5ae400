"""summary_metrics: every statistic under a stable flat name, NaN kept visible."""

from __future__ import annotations

import json
import math

import numpy as np

from intradayjules.evaluate.metrics import json_safe
from intradayjules.evaluate.stats import (deflated_sharpe_from_trials, paired_comparison, pbo_cscv,
                                          sharpe_estimate, summary_metrics)


def test_summary_metrics_names_values_and_nan():
    rng = np.random.default_rng(0)
    model, flat = rng.normal(1, 10, 120), np.zeros(120)
    c = paired_comparison(model, flat, name_b="flat", n_resamples=1000)
    trials = rng.normal(size=(120, 6))
    d, p = deflated_sharpe_from_trials(trials), pbo_cscv(trials, n_blocks=8)
    out = summary_metrics([c], sharpes={"model": sharpe_estimate(model, n_resamples=1000),
                                        "flat": sharpe_estimate(flat)}, dsr=d, pbo=p)
    assert out["compare/flat/mean_diff"] == c.mean_diff and out["compare/flat/p_value"] == c.p_value
    assert out["compare/flat/n"] == 120.0
    assert out["dsr/p_value"] == d.p_value and out["dsr/n_trials"] == 6.0
    assert out["pbo/pbo"] == p.pbo and out["pbo/n_combinations"] == 70.0
    assert math.isnan(out["sharpe/flat/sharpe"])  # flat: NaN, not dropped and not 0
    assert all(isinstance(v, float) for v in out.values())
    assert json.loads(json.dumps(json_safe(out)))["sharpe/flat/sharpe"] is None
