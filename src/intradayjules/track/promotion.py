"""Promotion to the champion alias, gated by paired daily net P&L on the same sessions.

``register_gated(tracker, run_id, challenger_daily, data, cfg)`` registers the model of ``run_id`` as a new
version of ``tracking.registered_model`` and decides which alias it gets:

1. No version holds ``tracking.alias`` (``champion``) yet: the new version takes it (the first version).
2. ``tracking.promotion: always``: the new version takes it (the behaviour before gating).
3. ``tracking.promotion: gated`` (default): the current champion is loaded through the one verified
   loader (``loader.load_policy``, ``models:/NAME@champion``) and **evaluated now** on the sessions of
   ``challenger_daily`` (the run's test split, ``cfg``'s market model), never taken from its old
   records, whose sessions may differ. With ``d_t`` = challenger - champion daily net P&L (bps/day) on
   the full sessions (partial ones excluded, as in the assessment), ``evaluate.paired.paired_comparison``
   gives the stationary block-bootstrap percentile interval of ``mean(d)`` at ``tracking.promotion_level``.
   The challenger takes the alias only when the interval's **lower bound is > 0**; otherwise it gets
   alias ``challenger`` and the champion keeps its alias. A champion that cannot be evaluated on these
   sessions (no pickle-free bundle, another observation or action space, a failed verification) is not
   displaced either: the reason says why, and ``intradayjules models promote`` moves the alias by hand.

The decision (:class:`Decision`) carries the reason in words, e.g. ``challenger: vs champion v1 +0.8
bps/day [-3.1, +4.6] at 95 %, not above 0 (12 sessions)``; it is written as tags on the new version and
on the model's run (``intradayjules.promotion`` = the alias given, ``intradayjules.promotion_reason``) and
the caller puts it in the report and ``summary.json``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from ..agents.policy import policy_from_model
from ..evaluate.bootstrap import DEFAULT_RESAMPLES
from ..evaluate.daily_pnl import exclude_partial
from ..evaluate.evaluation import evaluate_policy
from ..evaluate.paired import PairedComparison, paired_comparison
from ..evaluate.records import daily_table, net_pnl, partial_flags
from .lineage import TAG_PREFIX
from .loader import load_policy
from .registry import VersionInfo, get_version, register_model, RegistryError

log = logging.getLogger(__name__)

CHALLENGER_ALIAS = "challenger"
TAG_PROMOTION = TAG_PREFIX + "promotion"
TAG_PROMOTION_REASON = TAG_PREFIX + "promotion_reason"


@dataclass(frozen=True)
class Decision:
    """Which alias the new version got and why. ``comparison``: the paired comparison challenger vs
    champion (None when there was none: first version, ``always``, champion not evaluable)."""

    promote: bool
    alias: str
    reason: str
    champion_version: str | None = None
    comparison: PairedComparison | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["comparison"] = self.comparison.to_dict() if self.comparison is not None else None
        return d


def _bps(x: float) -> str:
    return f"{x:+.1f}" if math.isfinite(x) else "n/a"


def decide(challenger: pd.DataFrame, champion: pd.DataFrame, champion_version: str, *, alias: str = "champion",
           level: float = 0.95, seed: int | None = 0, n_resamples: int | None = None) -> Decision:
    """The gate on two daily tables (``evaluate.records.daily_table``) of the same sessions (module
    docstring): promote when the lower bound of the interval of mean(challenger - champion) is > 0."""
    flags = partial_flags(challenger)  # a property of the data: the same sessions are partial for both
    a = exclude_partial(net_pnl(challenger), flags).values
    b = exclude_partial(net_pnl(champion), flags).values  # raises naming a session the champion lacks
    c = paired_comparison(a, b, name_a="challenger", name_b=f"champion v{champion_version}", level=level,
                          seed=seed, n_resamples=DEFAULT_RESAMPLES if n_resamples is None else n_resamples)
    ok = math.isfinite(c.ci_low) and c.ci_low > 0
    where = (f"vs {alias} v{champion_version} {_bps(c.mean_diff)} bps/day [{_bps(c.ci_low)}, {_bps(c.ci_high)}] "
             f"at {level:.0%}".replace("%", " %"))
    if c.reason:
        where += f" ({c.reason})"
    reason = (f"{alias}: {where}, above 0 ({c.n} sessions)" if ok
              else f"{CHALLENGER_ALIAS}: {where}, not above 0 ({c.n} sessions)")
    return Decision(ok, alias if ok else CHALLENGER_ALIAS, reason, champion_version, c)


def champion_daily(tracker: Any, name: str, alias: str, data: Any, cfg: Any, split: str = "test",
                   sessions: Any = None) -> tuple[VersionInfo, pd.DataFrame] | None:
    """The version holding ``alias`` and its daily table on ``split`` (``sessions``) of ``data`` under
    ``cfg``, from the model loaded through ``loader.load_policy``; None when no version holds ``alias``."""
    try:
        info = get_version(tracker, name, "@" + alias)
    except RegistryError:
        return None
    policy = load_policy(f"models:/{name}/{info.version}", tracker=tracker)  # verified; never unpickled
    _, res = evaluate_policy(policy_from_model(policy), data, cfg, split, sessions=sessions)
    return info, daily_table(res)


def register_gated(tracker: Any, run_id: str, challenger_daily: pd.DataFrame, data: Any, cfg: Any, *,
                   split: str = "test", seed: int | None = None,
                   n_resamples: int | None = None) -> tuple[VersionInfo, Decision]:
    """Register the model of ``run_id`` and give it ``tracking.alias`` or ``challenger`` (module docstring).

    ``challenger_daily``: the new model's daily table on ``split`` of ``data`` under ``cfg`` (the run's
    evaluation); the champion is rolled over the same sessions under the same ``cfg``."""
    t = cfg.tracking
    name, alias = tracker.target.registered_model, tracker.target.alias
    seed = cfg.seed if seed is None else seed
    if t.promotion == "always":
        decision = Decision(True, alias, f"{alias}: tracking.promotion is 'always' (no comparison)")
    else:
        try:
            found = champion_daily(tracker, name, alias, data, cfg, split,
                                   sessions=[d.date().isoformat() for d in pd.DatetimeIndex(challenger_daily["session"])])
        except Exception as e:  # noqa: BLE001  (any failure keeps the champion; the reason names it)
            current = get_version(tracker, name, "@" + alias).version
            decision = Decision(False, CHALLENGER_ALIAS, f"{CHALLENGER_ALIAS}: {alias} v{current} could not be "
                                f"evaluated on this run's {split} sessions ({type(e).__name__}: {e}); not "
                                f"promoted (intradayjules models promote moves the alias by hand)", current)
        else:
            if found is None:
                decision = Decision(True, alias, f"{alias}: first version of {name} (no {alias} yet)")
            else:
                info, champ = found
                decision = decide(challenger_daily, champ, info.version, alias=alias, level=t.promotion_level,
                                  seed=seed, n_resamples=n_resamples)
    version = register_model(tracker, run_id, alias=decision.alias)
    tags = {TAG_PROMOTION: decision.alias, TAG_PROMOTION_REASON: decision.reason[:4900]}
    for k, v in tags.items():
        tracker.client.set_model_version_tag(name, version.version, k, v)
    tracker.get_run(run_id).set_tags(tags)
    log.info("model %s v%s: %s", name, version.version, decision.reason)
    return get_version(tracker, name, version.version), decision
