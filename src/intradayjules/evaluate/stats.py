"""Statistics of daily net P&L for the tear sheet: one import point for the pieces (docs/statistics.md).

* ``bootstrap``: stationary and circular block bootstraps, Politis-White block length, percentile intervals.
* ``sharpe``: the one Sharpe convention (NaN with a reason when there is no variance), bootstrap interval,
  Lo (2002) standard errors.
* ``paired``: model vs reference on paired daily P&L: mean difference, interval, bootstrap and t p-values.
* ``overfitting``: PSR, DSR (expected maximum Sharpe of N trials), PBO by CSCV.
* ``daily_pnl``: partial sessions excluded and counted, pairing, aggregation over seeds without dropping NaN.
* ``verdict``: the sentence that states what the numbers support.

Every function is pure (pandas/numpy in, dataclasses out) and seeded where it resamples.
``summary_metrics`` flattens the results into ``name -> float`` for a metrics JSON or MLflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .bootstrap import (DEFAULT_LEVEL, DEFAULT_RESAMPLES, BlockLength, bootstrap_distribution,
                        circular_block_indices, default_block_length, interval_p_value, optimal_block_length,
                        percentile_interval, stationary_indices)
from .daily_pnl import PnLSample, SeedAggregate, align_pair, exclude_partial, mean_over_seeds
from .overfitting import (DeflatedSharpe, PBOResult, deflated_sharpe_from_trials, deflated_sharpe_ratio,
                          expected_max_sharpe, pbo_cscv, probabilistic_sharpe_ratio)
from .paired import PairedComparison, paired_comparison, paired_t_test
from .sharpe import (NO_VARIANCE, TOO_SHORT, TRADING_DAYS, SharpeEstimate, lo_se_hac, lo_se_iid, moments,
                     sharpe_estimate, sharpe_ratio, sharpe_reason)
from .verdict import comparison_phrase, comparison_reading, selection_phrase, verdict

__all__ = [
    "DEFAULT_LEVEL", "DEFAULT_RESAMPLES", "NO_VARIANCE", "TOO_SHORT", "TRADING_DAYS",
    "BlockLength", "DeflatedSharpe", "PBOResult", "PairedComparison", "PnLSample", "SeedAggregate",
    "SharpeEstimate",
    "align_pair", "bootstrap_distribution", "circular_block_indices", "comparison_phrase", "comparison_reading",
    "default_block_length", "deflated_sharpe_from_trials", "deflated_sharpe_ratio", "exclude_partial",
    "expected_max_sharpe", "interval_p_value", "lo_se_hac", "lo_se_iid", "mean_over_seeds", "moments",
    "optimal_block_length", "paired_comparison", "paired_t_test", "pbo_cscv", "percentile_interval",
    "probabilistic_sharpe_ratio", "selection_phrase", "sharpe_estimate", "sharpe_ratio", "sharpe_reason",
    "stationary_indices", "summary_metrics", "verdict",
]


def summary_metrics(comparisons: Mapping[str, PairedComparison] | Iterable[PairedComparison] = (), *,
                    sharpes: Mapping[str, SharpeEstimate] | None = None, dsr: DeflatedSharpe | None = None,
                    pbo: PBOResult | None = None) -> dict[str, float]:
    """Flat ``name -> float`` of the statistics (NaN kept: an undefined value stays visible).

    ``compare/<reference>/{mean_diff,ci_low,ci_high,p_value,p_value_t,n}``,
    ``sharpe/<policy>/{sharpe,ci_low,ci_high,se_iid,se_hac}``, ``dsr/{dsr,p_value,sharpe_annual,sr0_annual,
    n_trials}``, ``pbo/{pbo,slope,prob_oos_loss,n_combinations}``.
    """
    out: dict[str, float] = {}
    comps = comparisons.values() if isinstance(comparisons, Mapping) else comparisons
    for c in comps:
        for k in ("mean_diff", "ci_low", "ci_high", "p_value", "p_value_t", "n"):
            out[f"compare/{c.name_b}/{k}"] = float(getattr(c, k))
    for name, s in (sharpes or {}).items():
        for k in ("sharpe", "ci_low", "ci_high", "se_iid", "se_hac"):
            out[f"sharpe/{name}/{k}"] = float(getattr(s, k))
    if dsr is not None:
        for k in ("dsr", "p_value", "sharpe_annual", "sr0_annual", "n_trials"):
            out[f"dsr/{k}"] = float(getattr(dsr, k))
    if pbo is not None:
        for k in ("pbo", "slope", "prob_oos_loss", "n_combinations"):
            out[f"pbo/{k}"] = float(getattr(pbo, k))
    return out
