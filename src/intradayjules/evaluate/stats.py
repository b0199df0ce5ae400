"""Statistics of daily net P&L for the tear sheet: one import point for the pieces (docs/statistics.md).

* ``bootstrap``: stationary and circular block bootstraps, Politis-White block length, percentile intervals.
* ``sharpe``: the one Sharpe convention (NaN with a reason when there is no variance), bootstrap interval,
  Lo (2002) standard errors.
* ``paired``: model vs reference on paired daily P&L: mean difference, interval, bootstrap and t p-values.
* ``overfitting``: PSR, DSR (expected maximum Sharpe of N trials), PBO by CSCV.
* ``daily_pnl``: partial sessions excluded and counted, pairing, aggregation over seeds without dropping NaN.
* ``verdict``: the sentence that states what the numbers support.

Every function is pure (pandas/numpy in, dataclasses out) and seeded where it resamples.
"""

from __future__ import annotations

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
    "stationary_indices", "verdict",
]
