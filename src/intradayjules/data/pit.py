"""Point-in-time status per session and symbol: what a trading loop needs to close positions in time.

:func:`pit_status` turns a :class:`~intradayjules.data.universe.Universe` (CRSP filters or a membership
file) and the CRSP delisting events into three (sessions x symbols) arrays:

* ``member[s, k]``: symbol ``k`` is in the point-in-time universe on session ``s`` (``Universe.members``
  of that date: the next universe grid date on or after it, which only uses CRSP rows before it);
* ``delist[s, k]``: symbol ``k`` delists on session ``s`` (the first session on or after its delisting
  date): a position still held must be closed at the end of that session;
* ``dlret[s, k]``: the return to apply to the position's value at its last price when it is closed there
  (``apply_delisting``): DLRET (filled by the Shumway rule where CRSP has none), 0 where CRSP has no
  value, and 0 for CIZ data, whose return on that date already holds the delisting return.

Symbols are PERMNOs (``by="permno"``) or tickers (``by="ticker"``: the ticker a member carries on that
date in the universe table, so a reused ticker maps to whichever company had it then). Bars without any
CRSP data are covered by :func:`bars_present`: a session on which a symbol has no bars (a hole, see
``gaps.py``) is one it cannot be traded on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .crsp import CrspData
from .universe import Universe


@dataclass
class PitStatus:
    sessions: pd.DatetimeIndex
    symbols: list
    member: np.ndarray   # (S, K) bool
    delist: np.ndarray   # (S, K) bool
    dlret: np.ndarray    # (S, K) float: 0 where nothing is applied

    def leaving(self, s: int) -> list:
        """Symbols that are members on session ``s - 1`` and not on ``s``, or delist on ``s``."""
        gone = self.delist[s] | ((self.member[s - 1] & ~self.member[s]) if s > 0 else False)
        return [self.symbols[k] for k in np.flatnonzero(gone)]


def pit_status(universe: Universe, crsp: CrspData, sessions, symbols: list, by: str = "permno") -> PitStatus:
    """Membership and delistings of ``symbols`` on each of ``sessions`` (module docstring)."""
    if by not in ("permno", "ticker"):
        raise ValueError("by must be 'permno' or 'ticker'")
    sess = pd.DatetimeIndex(pd.to_datetime(np.asarray(sessions))).normalize()
    S, K = len(sess), len(symbols)
    col = {s: k for k, s in enumerate(symbols)}
    member = np.zeros((S, K), bool)
    permno_of = np.full((S, K), -1, np.int64)
    t = universe.table
    gi = universe.grid.searchsorted(sess)
    for i in range(S):
        if gi[i] >= len(universe.grid):
            continue
        g = universe.grid[gi[i]]
        rows = t.iloc[t["date"].searchsorted(g):t["date"].searchsorted(g, side="right")]
        keys = rows["permno"].astype(int).tolist() if by == "permno" else rows["ticker"].tolist()
        for key, permno in zip(keys, rows["permno"].astype(int)):
            k = col.get(key)
            if k is not None:
                member[i, k] = True
                permno_of[i, k] = permno
    delist = np.zeros((S, K), bool)
    dlret = np.zeros((S, K))
    ev = crsp.delistings
    for e in ev.itertuples():
        si = int(sess.searchsorted(pd.Timestamp(e.dlstdt)))
        if si >= S:
            continue
        if by == "permno":
            k = col.get(int(e.permno))
        else:  # the symbol that carried this PERMNO as a member up to the delisting session
            hit = np.flatnonzero((permno_of[: si + 1] == int(e.permno)).any(axis=0))
            k = int(hit[0]) if len(hit) else None
        if k is None:
            continue
        delist[si, k] = True
        dlret[si, k] = 0.0 if bool(e.in_ret) or pd.isna(e.dlret) else float(e.dlret)
    return PitStatus(sess, list(symbols), member, delist, dlret)


def bars_present(frame: pd.DataFrame, sessions, symbols: list) -> np.ndarray:
    """(S, K) bool: the symbol has bars on the session in a canonical bar table (holes are False)."""
    sess = pd.DatetimeIndex(pd.to_datetime(np.asarray(sessions)))
    have = frame[["symbol", "session"]].drop_duplicates()
    out = np.zeros((len(sess), len(symbols)), bool)
    col = {s: k for k, s in enumerate(symbols)}
    si = sess.get_indexer(pd.DatetimeIndex(have["session"]))
    for i, s in zip(si, have["symbol"]):
        k = col.get(s)
        if i >= 0 and k is not None:
            out[i, k] = True
    return out
