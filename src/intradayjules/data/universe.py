"""Point-in-time universes: which PERMNOs were tradable on date d, from information known at d.

A universe is a long table ``date, permno, ticker, mktcap, adv, tier`` (one row per member and date;
``mktcap`` USD, ``adv`` USD/day) over a grid of dates (the dates of the CRSP panel). Two sources:

* **CRSP** (:func:`crsp_universe`). A PERMNO is a member on ``d`` when
  1. it has a row strictly before ``d`` (a name joins the day after its first price: before that nobody
     could have traded it at a known price),
  2. its latest row before ``d`` is ``eligible`` (share and exchange codes, ``CrspConfig``),
  3. it has not delisted before ``d`` (DLSTDT < d; on DLSTDT itself it is still a member and earns the
     delisting return, see :func:`apply_delisting`),
  4. its latest row is at most ``CrspConfig.max_stale_periods`` grid dates old (a name whose rows stop
     without a delisting record drops out instead of being held forever at its last price), and
  5. with ``top_n``: it was among the ``top_n`` largest by ``mktcap`` of the latest row before the last
     rebalance date (the first grid date of each month, or every date) - names leaving between
     rebalances are not replaced until the next one.
* **A membership file** (:func:`membership_universe`, :func:`read_membership`): spells ``permno`` (or
  ``id``) or ``ticker``, ``start``, ``end`` (inclusive; empty = open; common aliases such as
  ``ticker,start_date,end_date`` accepted, ``MEMBER_ALIASES``), e.g. an index's constituent history.
  Ticker spells are resolved to PERMNOs by date range (:func:`intradayjules.data.crsp.ticker_spells`), so a
  reused ticker resolves to whichever company carried it during the spell; spells that match no price data
  are listed with examples in ``Universe.notes``. Conditions 1, 3 and 4 still apply (one cannot hold a name
  before its first price or after it delisted).

Every member carries ``adv`` = mean of ``|PRC| x VOL`` over its last ``TierConfig.adv_window_days`` rows
strictly before ``d`` (at least ``min_history_days``) and ``tier = tiers.tier_of(adv)``: the same
thresholds as the intraday tiers. Nothing on or after ``d`` enters the row for ``d``.

Exits: :func:`delisting_events` lists delistings as :class:`DelistingEvent`; :func:`apply_delisting` is
the one rule that turns a held position into cash on delisting (value at the day's last price times
``1 + DLRET``); :func:`exits` lists the names that leave between two dates and why. The daily backtest in
``evaluate/survivorship.py`` uses them; ``pit.pit_status`` turns them into per-session arrays for the
intraday environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import CrspConfig, TierConfig
from ..errors import DataError
from .crsp import CrspData, ticker_spells
from .crsp_parse import _dates, _numeric, _read_table
from .tiers import tier_of

UNIVERSE_COLUMNS = ["date", "permno", "ticker", "mktcap", "adv", "tier"]


@dataclass
class Universe:
    """Members per date (``table``, sorted by date then permno) over the date ``grid``."""

    table: pd.DataFrame
    grid: pd.DatetimeIndex
    notes: list[str] = field(default_factory=list)  # e.g. membership spells that matched no price data

    def members(self, date) -> pd.DataFrame:
        """Members on ``date`` (a grid date, or the next grid date for a day between them)."""
        d = pd.Timestamp(date).normalize()
        i = self.grid.searchsorted(d)
        if i >= len(self.grid):
            raise DataError(f"{d.date()} is after the universe's last date {self.grid[-1].date()}",
                            rule="out_of_range")
        g = self.grid[i]
        lo, hi = self.table["date"].searchsorted([g, g + pd.Timedelta(1, "ns")])
        return self.table.iloc[lo:hi].reset_index(drop=True)

    def ids(self, date) -> list[int]:
        return self.members(date)["permno"].astype(int).tolist()


@dataclass(frozen=True)
class DelistingEvent:
    """One delisting: the position is closed on ``date`` at ``1 + dlret`` times its value at that day's
    last price. ``dlret`` NaN (no CRSP value and no fill) is applied as 0. ``code`` is the DLSTCD (None when
    the file has none). ``in_ret``: the delisting return is already inside that date's RET (CIZ files):
    marking the position with RET closes it, and nothing more is applied."""

    permno: int
    date: pd.Timestamp
    code: int | None
    dlret: float
    filled: bool
    performance: bool
    in_ret: bool = False


def apply_delisting(position_value, event_or_dlret):
    """Cash received for a position worth ``position_value`` (USD, marked at the last price on the
    delisting date, i.e. after that day's RET) when it delists: ``position_value * (1 + DLRET)``.

    ``event_or_dlret`` is a :class:`DelistingEvent` or a DLRET value/array; a missing DLRET counts as 0
    (the position is closed at its last price), and so does an event whose return is already in RET
    (``in_ret``). Works on numpy arrays elementwise.
    """
    if isinstance(event_or_dlret, DelistingEvent):
        dl = 0.0 if event_or_dlret.in_ret else event_or_dlret.dlret
    else:
        dl = event_or_dlret
    dl = np.nan_to_num(np.asarray(dl, dtype=float), nan=0.0)
    out = np.asarray(position_value, dtype=float) * (1.0 + dl)
    return float(out) if out.ndim == 0 else out


def delisting_events(crsp: CrspData, start=None, end=None) -> list[DelistingEvent]:
    """Delistings with DLSTDT in [start, end] (inclusive), by date then PERMNO."""
    ev = crsp.delistings
    if start is not None:
        ev = ev[ev["dlstdt"] >= pd.Timestamp(start)]
    if end is not None:
        ev = ev[ev["dlstdt"] <= pd.Timestamp(end)]
    ev = ev.sort_values(["dlstdt", "permno"])
    return [DelistingEvent(int(e.permno), pd.Timestamp(e.dlstdt), None if pd.isna(e.dlstcd) else int(e.dlstcd),
                           float(e.dlret), bool(e.dlret_filled), bool(e.performance), bool(e.in_ret))
            for e in ev.itertuples()]


# ------------------------------------------------------------------------------------- construction
def _state(crsp: CrspData, tier_cfg: TierConfig) -> pd.DataFrame:
    """Per panel row, what is known *after* that row: eligibility, market cap and the trailing ADV
    including this row (so it is the ADV known for the next date)."""
    p = crsp.panel
    out = p[["permno", "date", "ticker", "eligible", "mktcap"]].copy()
    out["adv"] = (p.groupby("permno", sort=False)["dollar_vol"]
                  .rolling(tier_cfg.adv_window_days, min_periods=tier_cfg.min_history_days).mean()
                  .reset_index(level=0, drop=True).sort_index().to_numpy())
    return out


def _candidates(crsp: CrspData, cfg: CrspConfig, tier_cfg: TierConfig, grid: pd.DatetimeIndex) -> pd.DataFrame:
    """Every (date in grid, permno) passing conditions 1-4, with the state of the latest row before it."""
    st = _state(crsp, tier_cfg)
    full = pd.DatetimeIndex(np.unique(crsp.panel["date"].to_numpy()))
    pos_of_row = full.searchsorted(st["date"].to_numpy())
    permnos = st["permno"].to_numpy()
    # position of each permno's rows; membership runs from first row + 1 to delisting (or the end)
    ids, first_idx, counts = np.unique(permnos, return_index=True, return_counts=True)
    first_pos = pos_of_row[first_idx]
    last_pos = np.full(len(ids), len(full) - 1)
    dl = crsp.delistings.drop_duplicates("permno").set_index("permno")["dlstdt"]
    if len(dl):
        dpos = full.searchsorted(pd.DatetimeIndex(dl.reindex(ids).to_numpy()))
        has = ~pd.isna(dl.reindex(ids).to_numpy())
        last_pos = np.where(has, np.minimum(dpos, len(full) - 1), last_pos)
    span = np.maximum(last_pos - first_pos, 0)
    rep = np.repeat(np.arange(len(ids)), span)
    offs = np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span)
    gpos = first_pos[rep] + 1 + offs  # candidate grid positions
    # latest row strictly before gpos, same permno: rows are sorted by (permno, date)
    row_start = first_idx[rep]
    row_keys = pos_of_row  # within each permno increasing
    # searchsorted per permno via a global key
    key_rows = np.repeat(np.arange(len(ids)), counts).astype(np.int64) * (len(full) + 1) + row_keys
    key_grid = rep.astype(np.int64) * (len(full) + 1) + gpos
    state_idx = np.searchsorted(key_rows, key_grid, side="left") - 1
    assert (state_idx >= row_start).all()
    s = st.iloc[state_idx]
    stale = gpos - pos_of_row[state_idx]
    keep = s["eligible"].to_numpy(dtype=bool) & (stale <= cfg.max_stale_periods)
    out = pd.DataFrame({"date": full[gpos], "permno": ids[rep], "ticker": s["ticker"].to_numpy(),
                        "mktcap": s["mktcap"].to_numpy(), "adv": s["adv"].to_numpy()})[keep]
    return out[out["date"].isin(grid)]


def _grid(crsp: CrspData, start, end) -> pd.DatetimeIndex:
    g = pd.DatetimeIndex(np.unique(crsp.panel["date"].to_numpy()))
    if start is not None:
        g = g[g >= pd.Timestamp(start)]
    if end is not None:
        g = g[g <= pd.Timestamp(end)]
    if len(g) == 0:
        raise DataError(f"no CRSP dates between {start} and {end}", rule="empty_range")
    return g


def _finish(t: pd.DataFrame, tier_cfg: TierConfig, grid) -> Universe:
    t = t.sort_values(["date", "permno"]).reset_index(drop=True)
    t["tier"] = tier_of(t["adv"].to_numpy(dtype=float), tier_cfg)
    return Universe(table=t[UNIVERSE_COLUMNS], grid=grid)


def rebalance_dates(grid: pd.DatetimeIndex, how: str) -> pd.DatetimeIndex:
    """First grid date of each month (``monthly``) or every date (``daily``)."""
    if how == "daily":
        return grid
    s = pd.Series(grid, index=grid)
    return pd.DatetimeIndex(s.groupby(grid.to_period("M")).first().to_numpy())


def crsp_universe(crsp: CrspData, cfg: CrspConfig | None = None, tier_cfg: TierConfig | None = None, *,
                  start=None, end=None, top_n: int | None = None, rebalance: str | None = None) -> Universe:
    """The point-in-time universe from CRSP itself (rules 1-5 in the module docstring)."""
    cfg = cfg or CrspConfig()
    tier_cfg = tier_cfg or TierConfig()
    top_n = top_n if top_n is not None else cfg.top_n
    grid = _grid(crsp, start, end)
    cand = _candidates(crsp, cfg, tier_cfg, grid)
    if top_n:
        reb = rebalance_dates(grid, rebalance or cfg.rebalance)
        # the first date with any candidate is a rebalance date too
        if len(cand):
            reb = reb.union(pd.DatetimeIndex([cand["date"].min()]))
        at = cand[cand["date"].isin(reb) & cand["mktcap"].notna()]
        at = at.sort_values(["date", "mktcap", "permno"], ascending=[True, False, True])
        chosen = at.groupby("date", sort=True).head(top_n)[["date", "permno"]]
        last_reb = reb[reb.searchsorted(cand["date"].to_numpy(), side="right") - 1]
        key = pd.MultiIndex.from_arrays([last_reb, cand["permno"].to_numpy()])
        sel = key.isin(pd.MultiIndex.from_frame(chosen))
        cand = cand[sel]
    return _finish(cand, tier_cfg, grid)


MEMBER_ALIASES = {
    "permno": ["permno", "id", "permno_id", "lpermno"],
    "ticker": ["ticker", "symbol", "tic", "tsymbol"],
    "start": ["start", "start_date", "startdate", "from", "from_date", "begin", "begin_date", "date_added", "added",
              "added_date", "entry_date", "mbrstartdt"],
    "end": ["end", "end_date", "enddate", "to", "to_date", "until", "ending", "finish", "date_removed", "removed",
            "removed_date", "exit_date", "mbrenddt"],
}


def _member_column(lower: dict, what: str) -> str | None:
    return next((lower[a] for a in MEMBER_ALIASES[what] if a in lower), None)


def read_membership(path: str | Path) -> pd.DataFrame:
    """Spells of point-in-time membership (an index's constituents...) from CSV or Parquet.

    Columns (any case, aliases in ``MEMBER_ALIASES``): an id (``permno``/``id``) or a ``ticker``
    (``symbol``, ``tic``), a start (``start``, ``start_date``, ``from``, ``date_added``, CRSP's ``MbrStartDt``...)
    and an end (``end``, ``end_date``, ``to``, ``ending``, ``date_removed``, ``MbrEndDt``...); inclusive, an
    empty end = still a member. Returns ``permno`` (NaN where only a ticker is given), ``ticker``, ``start``,
    ``end``, ``line``. A missing column is an error that lists the file's columns and the names accepted."""
    path = Path(path)
    raw, offset = _read_table(path)
    lower = {str(c).strip().lower(): c for c in raw.columns}
    have = ", ".join(map(str, raw.columns))
    idcol, tcol = _member_column(lower, "permno"), _member_column(lower, "ticker")
    scol, ecol = _member_column(lower, "start"), _member_column(lower, "end")
    for need, col in (("start", scol), ("end", ecol)):
        if col is None:
            raise DataError(f"no {need} column (accepted: {', '.join(MEMBER_ALIASES[need])}; the file has: {have})",
                            file=str(path), rule="missing_column", column=need)
    if idcol is None and tcol is None:
        raise DataError(f"need an id column ({', '.join(MEMBER_ALIASES['permno'])}) or a ticker column "
                        f"({', '.join(MEMBER_ALIASES['ticker'])}); the file has: {have}", file=str(path),
                        rule="missing_column", column="permno")
    kw = dict(path=path, offset=offset)
    out = pd.DataFrame({"line": np.arange(len(raw)) + offset})
    out["ticker"] = (raw[tcol].astype("string").str.strip().str.upper().replace("", pd.NA).to_numpy(dtype=object)
                     if tcol is not None else None)
    if idcol is not None:
        ids = _numeric(raw[idcol], column=idcol, returns=False, counts={}, **kw)
        bad = ~np.isnan(ids) & ((ids <= 0) | (ids != np.floor(ids)))
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(f"PERMNO must be a positive integer, got {raw[idcol].iloc[pos]!r}", file=str(path),
                            line=pos + offset, column=idcol, rule="bad_permno")
        out["permno"] = ids
    else:
        out["permno"] = np.nan
    out["start"] = _dates(raw[scol], column=scol, required=True, **kw)
    end = _dates(raw[ecol], column=ecol, required=False, **kw)
    out["end"] = pd.to_datetime(end).fillna(pd.Timestamp.max.normalize())
    noid = out["permno"].isna() & out["ticker"].isna()
    if noid.any():
        r = out[noid].iloc[0]
        raise DataError("spell has neither a PERMNO nor a ticker", file=str(path), line=int(r["line"]),
                        rule="missing_id", column=idcol or tcol)
    back = out["end"] < out["start"]
    if back.any():
        r = out[back].iloc[0]
        raise DataError("end is before start", file=str(path), line=int(r["line"]), rule="bad_spell", column=ecol)
    return out


def _span(start, end) -> str:
    e = "open" if pd.Timestamp(end) >= pd.Timestamp.max.normalize() else str(pd.Timestamp(end).date())
    return f"{pd.Timestamp(start).date()}..{e}"


def resolve_spells(spells: pd.DataFrame, crsp: CrspData) -> tuple[pd.DataFrame, list[str]]:
    """Ticker spells -> PERMNO spells (the overlap of each spell with each ticker spell of that ticker), and
    notes on the spells that match no price data, with examples (they add no member)."""
    by_id = spells[spells["permno"].notna()]
    tick = spells[spells["permno"].isna()]
    parts = [by_id[["permno", "start", "end", "line"]]]
    unmatched: list[str] = []
    if len(tick):
        ts = ticker_spells(crsp.panel)
        m = tick.merge(ts, on="ticker", suffixes=("", "_t"))
        m["s"] = m[["start", "start_t"]].max(axis=1)
        m["e"] = m[["end", "end_t"]].min(axis=1)
        m = m[m["s"] <= m["e"]]
        parts.append(pd.DataFrame({"permno": m["permno_t"], "start": m["s"], "end": m["e"], "line": m["line"]}))
        for r in tick[~tick["line"].isin(m["line"])].itertuples():
            carriers = ts[ts["ticker"] == r.ticker]
            had = "; ".join(f"PERMNO {int(c.permno)} {_span(c.start, c.end)}" for c in carriers.head(2).itertuples())
            unmatched.append(f"line {r.line}: ticker {r.ticker} {_span(r.start, r.end)}: no PERMNO carries it then"
                             + (f" (it is on {had})" if had else " (not in the price data)"))
    out = pd.concat(parts, ignore_index=True)
    out["permno"] = out["permno"].astype(np.int64)
    rng = crsp.panel.groupby("permno")["date"].agg(["min", "max"])
    lo, hi = rng["min"].reindex(out["permno"]).to_numpy(), rng["max"].reindex(out["permno"]).to_numpy()
    absent = pd.isna(lo)
    outside = ~absent & ((out["end"].to_numpy() < lo) | (out["start"].to_numpy() > hi))
    for k in np.flatnonzero((absent | outside) & out["line"].isin(by_id["line"]).to_numpy()):
        r = out.iloc[k]
        why = ("not in the price data" if absent[k] else
               f"its prices run {pd.Timestamp(lo[k]).date()}..{pd.Timestamp(hi[k]).date()}")
        unmatched.append(f"line {int(r['line'])}: PERMNO {int(r['permno'])} {_span(r['start'], r['end'])}: {why}")
    notes = []
    if unmatched:
        unmatched.sort(key=lambda x: int(x.split(":")[0].split()[1]))
        notes.append(f"{len(unmatched)} of {len(spells)} membership spell(s) match no price data (they add no member), "
                     f"e.g. " + "; ".join(unmatched[:5]))
    return out[["permno", "start", "end"]], notes


def membership_universe(spells: pd.DataFrame | str | Path, crsp: CrspData, cfg: CrspConfig | None = None,
                        tier_cfg: TierConfig | None = None, *, start=None, end=None) -> Universe:
    """Members = spell covers ``d`` and the name passes conditions 1, 3, 4 (listed, not yet delisted,
    not stale); share/exchange filters are not applied (the membership list is the filter). Spells that
    match no price data are listed in ``Universe.notes``."""
    cfg = cfg or CrspConfig()
    tier_cfg = tier_cfg or TierConfig()
    if not isinstance(spells, pd.DataFrame):
        spells = read_membership(spells)
    resolved, notes = resolve_spells(spells, crsp)
    grid = _grid(crsp, start, end)
    cand = listed_candidates(crsp, cfg, tier_cfg, grid)
    m = cand.merge(resolved, on="permno")
    m = m[(m["start"] <= m["date"]) & (m["date"] <= m["end"])].drop_duplicates(["date", "permno"])
    u = _finish(m[["date", "permno", "ticker", "mktcap", "adv"]], tier_cfg, grid)
    u.notes = notes
    return u


def listed_candidates(crsp: CrspData, cfg: CrspConfig, tier_cfg: TierConfig, grid: pd.DatetimeIndex) -> pd.DataFrame:
    """Every (date, permno) of conditions 1, 3, 4 only (listed, not delisted, not stale): no code filters."""
    all_ok = CrspData(panel=crsp.panel.assign(eligible=True), delistings=crsp.delistings, freq=crsp.freq)
    return _candidates(all_ok, cfg, tier_cfg, grid)


def exits(universe: Universe, crsp: CrspData, prev_date, date) -> pd.DataFrame:
    """Names that are members on ``prev_date`` but not on ``date``: ``permno, reason`` where reason is
    ``delisted`` (closed on their DLSTDT with :func:`apply_delisting`) or ``left`` (filters, top-N,
    stale, end of a membership spell: closed at the last price of ``prev_date``)."""
    a = set(universe.ids(prev_date))
    b = set(universe.ids(date))
    gone = sorted(a - b)
    dl = crsp.delistings.set_index("permno")["dlstdt"]
    reasons = ["delisted" if p in dl.index and dl.loc[p] <= pd.Timestamp(prev_date) else "left" for p in gone]
    return pd.DataFrame({"permno": gone, "reason": reasons})
