"""The verdict: one sentence that states what the statistics support, computed from them.

Paired comparisons (``paired.PairedComparison``), one per reference, read as (``level`` from each):

* interval above 0: "better than REF at 95 %"; below 0: "worse than REF at 95 %";
  otherwise: "not distinguishable from REF at 95 %";
* zero difference on every session: "identical to REF on every session";
* undefined (fewer than 2 sessions): "not enough sessions to compare with REF".

Each is printed with its numbers: ``Model vs flat: +1.2 bps/day [-0.8, +3.1] 95 % CI, p = 0.24: not
distinguishable from flat at 95 %``.

Selection among trials (``overfitting.DeflatedSharpe`` and ``overfitting.PBOResult``), with
``alpha = 1 - level`` of the first comparison (0.05 by default):

* DSR p-value < alpha and (no PBO or PBO < 0.5): "the best of N trials is distinguishable from luck";
* DSR p-value < alpha and PBO >= 0.5: "the best of N trials passes the deflated Sharpe test but its
  selection is likely overfit";
* DSR p-value >= alpha: "the best of N trials is not distinguishable from luck";
* DSR undefined: "the deflated Sharpe of the best of N trials is undefined (REASON)";
* PBO only: "the selection among N trials is likely overfit" (PBO >= 0.5) or "is not evidently overfit";
* neither: "no tuning trials: selection bias not assessed".

The numbers (DSR p, PBO) follow in parentheses. ``verdict`` joins the parts with "; " and ends with ".".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from .overfitting import DeflatedSharpe, PBOResult
from .paired import PairedComparison

PBO_OVERFIT = 0.5


def _num(v: float, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def _pct(level: float) -> str:
    return f"{level * 100:g} %"


def comparison_reading(c: PairedComparison) -> str:
    """The decision for one comparison, in words (module docstring)."""
    ref = c.name_b
    if c.reason or math.isnan(c.mean_diff):
        return f"not enough sessions to compare with {ref}"
    if c.identical:
        return f"identical to {ref} on every session"
    if c.ci_low > 0:
        return f"better than {ref} at {_pct(c.level)}"
    if c.ci_high < 0:
        return f"worse than {ref} at {_pct(c.level)}"
    return f"not distinguishable from {ref} at {_pct(c.level)}"


def comparison_phrase(c: PairedComparison, *, subject: str | None = None, units: str = "bps/day") -> str:
    """``Model vs flat: +1.20 bps/day [-0.80, +3.10] 95 % CI, p = 0.24: <reading>``."""
    head = f"{subject} vs {c.name_b}" if subject else f"vs {c.name_b}"
    if c.reason or math.isnan(c.mean_diff) or c.identical:
        return f"{head}: {comparison_reading(c)} (n = {c.n})"
    return (f"{head}: {_num(c.mean_diff, True)} {units} [{_num(c.ci_low, True)}, {_num(c.ci_high, True)}] "
            f"{_pct(c.level)} CI, p = {_p(c.p_value)}: {comparison_reading(c)}")


def selection_phrase(dsr: DeflatedSharpe | None = None, pbo: PBOResult | None = None, *,
                     alpha: float = 0.05) -> str:
    """The reading of DSR and PBO (module docstring)."""
    if dsr is None and pbo is None:
        return "no tuning trials: selection bias not assessed"
    n = dsr.n_trials if dsr is not None else pbo.n_trials  # type: ignore[union-attr]
    pbo_text = f"PBO = {_num(pbo.pbo)}" if pbo is not None else ""
    overfit = pbo is not None and pbo.pbo >= PBO_OVERFIT
    if dsr is None:
        reading = "is likely overfit" if overfit else "is not evidently overfit"
        return f"the selection among {n} trials {reading} ({pbo_text})"
    if dsr.reason or math.isnan(dsr.p_value):
        extra = f"; {pbo_text}" if pbo_text else ""
        return f"the deflated Sharpe of the best of {n} trials is undefined ({dsr.reason or 'n/a'}{extra})"
    numbers = f"DSR p = {_p(dsr.p_value)}" + (f", {pbo_text}" if pbo_text else "")
    if dsr.p_value >= alpha:
        return f"the best of {n} trials is not distinguishable from luck ({numbers})"
    if overfit:
        return (f"the best of {n} trials passes the deflated Sharpe test but its selection is likely overfit "
                f"({numbers})")
    return f"the best of {n} trials is distinguishable from luck ({numbers})"


def verdict(comparisons: Mapping[str, PairedComparison] | Iterable[PairedComparison], *,
            dsr: DeflatedSharpe | None = None, pbo: PBOResult | None = None, subject: str = "Model",
            units: str = "bps/day") -> str:
    """One sentence: every paired comparison, then the selection reading (module docstring)."""
    comps = list(comparisons.values()) if isinstance(comparisons, Mapping) else list(comparisons)
    parts = [comparison_phrase(c, subject=subject if i == 0 else None, units=units) for i, c in enumerate(comps)]
    alpha = comps[0].alpha if comps else 0.05
    parts.append(selection_phrase(dsr, pbo, alpha=alpha))
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
