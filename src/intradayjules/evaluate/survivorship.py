"""Survivorship bias, measured: the point-in-time universe with delisting returns vs survivors only.

Two equal-weighted portfolios, rebalanced every period (daily on daily CRSP, monthly on monthly):

1. **PIT**: on each date the members of the point-in-time universe
   (:func:`intradayjules.data.universe.crsp_universe`, or with ``members`` a membership file:
   :func:`~intradayjules.data.universe.membership_universe`); a member's period return is RET, and on its
   delisting date the position is closed with :func:`~intradayjules.data.universe.apply_delisting`
   (value ``(1 + RET)(1 + DLRET)``; CIZ returns already hold the delisting return). A missing RET (no
   price) counts as 0 (position unchanged).
2. **Survivors**: without a membership file, the same rule restricted to names alive at the end date (a
   row on the last date of the window, eligible there, and no delisting on or before it): what a data set
   that "kept only names still listed" would show. With a membership file, the names that are members
   on the end date (today's constituents), held on every date they were listed, as a backtest on the
   current constituent list does.

Periods before the first date with any member are left out; a later period with no member earns 0.
Statistics: geometric annualised return (``prod(1 + r) ** (P / T) - 1``, P = 252 daily, 12 monthly) and
maximum drawdown of ``cumprod(1 + r)`` from 1. Biases: ``bias_ann = survivors_ann - pit_ann`` (> 0: the
survivors-only data overstate returns) and ``bias_mdd = pit_mdd - survivors_mdd`` (> 0: they understate
drawdowns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import CrspConfig, TierConfig
from ..data.crsp import CrspData, eligibility_reasons
from ..data.crsp_synth import ann_return, max_drawdown
from ..data.universe import (Universe, _finish, _grid, apply_delisting, crsp_universe, delisting_events,
                             listed_candidates, membership_universe)
from ..errors import DataError


def equal_weight_returns(universe: Universe, crsp: CrspData, keep: set[int] | None = None) -> pd.DataFrame:
    """Per grid date: ``ret`` of the equal-weighted portfolio of members (restricted to ``keep``),
    ``n`` members, ``n_missing`` members without a RET, ``n_delisted`` members closed by delisting."""
    t = universe.table[["date", "permno"]]
    if keep is not None:
        t = t[t["permno"].isin(keep)]
    p = crsp.panel[["permno", "date", "ret", "dlret", "delist"]]
    m = t.merge(p, on=["permno", "date"], how="left")
    ret = m["ret"].to_numpy(dtype=float)
    dl = np.full(len(m), np.nan) if crsp.dlret_in_ret else m["dlret"].to_numpy(dtype=float)
    value = apply_delisting(1.0 + np.nan_to_num(ret), dl)
    m = m.assign(r=value - 1.0, miss=np.isnan(ret), dlst=m["delist"].fillna(False).to_numpy(dtype=bool))
    g = m.groupby("date", sort=True)
    out = pd.DataFrame({"ret": g["r"].mean(), "n": g["r"].size(), "n_missing": g["miss"].sum(),
                        "n_delisted": g["dlst"].sum()})
    out = out.reindex(universe.grid)
    out.index.name = "date"
    first = out["n"].first_valid_index()
    out = out.loc[first:] if first is not None else out.iloc[0:0]
    return out.fillna({"ret": 0.0, "n": 0, "n_missing": 0, "n_delisted": 0}).astype(
        {"n": int, "n_missing": int, "n_delisted": int})


def survivors_at(crsp: CrspData, end_date) -> set[int]:
    """PERMNOs alive at ``end_date``: a row on it, eligible there, no delisting on or before it."""
    d = pd.Timestamp(end_date)
    p = crsp.panel
    alive = set(p.loc[(p["date"] == d) & p["eligible"] & ~p["delist_row"], "permno"].astype(int))
    dead = set(crsp.delistings.loc[crsp.delistings["dlstdt"] <= d, "permno"].astype(int))
    return alive - dead


@dataclass
class SurvivorshipReport:
    returns: pd.DataFrame  # date index; pit, survivors, n_pit, n_survivors
    stats: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. membership spells that matched no price data

    def lines(self) -> list[str]:
        s = self.stats
        return [
            f"{s['start']} to {s['end']} ({s['periods']} periods, {s['freq']})",
            f"PIT with delisting returns: {s['pit_ann']:+.2%}/yr, max drawdown {s['pit_mdd']:.2%}, "
            f"{s['pit_mean_members']:.1f} names on average",
            f"survivors only: {s['survivors_ann']:+.2%}/yr, max drawdown {s['survivors_mdd']:.2%}, "
            f"{s['n_survivors']} names",
            f"bias: {s['bias_ann']:+.2%}/yr in annualised return, {s['bias_mdd']:+.2%} in max drawdown",
            f"delistings in window: {s['n_delistings']} ({s['n_performance']} performance, "
            f"{s['n_filled']} DLRET filled)",
        ]


def survivorship_report(crsp: CrspData, cfg: CrspConfig | None = None, tier_cfg: TierConfig | None = None, *,
                        start=None, end=None, top_n: int | None = None, members=None) -> SurvivorshipReport:
    """Compare the PIT and survivors-only equal-weighted portfolios over [start, end] (inclusive).

    ``members``: a membership file or spells table (``read_membership``); then the PIT universe is the
    membership and the survivors are the end date's members (module docstring)."""
    cfg = cfg or CrspConfig()
    tier_cfg = tier_cfg or TierConfig()
    notes: list[str] = []
    if members is not None:
        uni = membership_universe(members, crsp, cfg, tier_cfg, start=start, end=end)
        notes += uni.notes
    else:
        uni = crsp_universe(crsp, cfg, tier_cfg, start=start, end=end, top_n=top_n)
    end_date = uni.grid[-1]
    pit = equal_weight_returns(uni, crsp)
    if pit.empty:
        why = notes + (eligibility_reasons(crsp, cfg) if members is None else [])
        raise DataError(f"no date between {uni.grid[0].date()} and {end_date.date()} has any member "
                        "(a name joins the day after its first row)" + (": " + "; ".join(why) if why else ""),
                        rule="empty_universe")
    if members is not None:
        today = set(uni.ids(end_date))
        cand = listed_candidates(crsp, cfg, tier_cfg, _grid(crsp, start, end))
        surv_uni = _finish(cand[cand["permno"].isin(today)], tier_cfg, uni.grid)
        surv_ids = today
        sv = equal_weight_returns(surv_uni, crsp).reindex(pit.index).fillna(0.0)
    else:
        surv_ids = survivors_at(crsp, end_date)
        sv = equal_weight_returns(uni, crsp, keep=surv_ids).reindex(pit.index).fillna(0.0)
    ppy = crsp.periods_per_year
    rets = pd.DataFrame({"pit": pit["ret"], "survivors": sv["ret"], "n_pit": pit["n"],
                         "n_survivors": sv["n"].astype(int)})
    events = delisting_events(crsp, pit.index[0] if len(pit) else None, end_date)
    pit_ann, sv_ann = ann_return(rets["pit"], ppy), ann_return(rets["survivors"], ppy)
    pit_dd, sv_dd = max_drawdown(rets["pit"]), max_drawdown(rets["survivors"])
    stats = {
        "start": str(rets.index[0].date()), "end": str(end_date.date()), "periods": len(rets), "freq": crsp.freq,
        "universe": "membership file" if members is not None else "CRSP filters",
        "pit_ann": pit_ann, "survivors_ann": sv_ann, "bias_ann": sv_ann - pit_ann,
        "pit_mdd": pit_dd, "survivors_mdd": sv_dd, "bias_mdd": pit_dd - sv_dd,
        "pit_mean_members": float(rets["n_pit"].mean()), "n_survivors": len(surv_ids),
        "n_delistings": len(events), "n_performance": sum(e.performance for e in events),
        "n_filled": sum(e.filled for e in events), "n_missing_returns": int(pit["n_missing"].sum()),
        "n_delisting_return_in_ret": sum(e.in_ret for e in events),
    }
    return SurvivorshipReport(returns=rets, stats=stats, notes=notes)
