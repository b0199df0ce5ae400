"""Which symbols the env may hold, per session: the point-in-time universe and delistings as an action mask.

A :class:`Membership` holds two (sessions x symbols) arrays aligned with a ``Panel``:

* ``exit_bar[s, k]``: the first bar of session ``s`` at whose decision symbol ``k`` can no longer be held.
  ``0``: not a member of the universe that session (``not_member``); ``inf``: tradable all session; a
  bar ``b > 0``: an exit (delisting) that takes effect during the session (``delisted``).
* ``exit_ret[s, k]``: the return applied to the forced closing fill (CRSP's DLRET where given, else 0).

The step kernel (``env/kernel.py``) and ``env.actions.decide`` apply it the same way: from the decision on
bar ``t >= exit_bar`` on, the symbol's target is 0, an action asking for a non-flat target in it is
refused (counted by reason in the step info), and a position still held is closed in full at bar
``t + 1``'s open times ``1 + exit_ret`` (the next fill, never bar t's close), with the market model's
costs. Positions are flattened at every session close, so a symbol that leaves the universe between
sessions is simply never opened in the sessions where it is not a member.

No look-ahead: membership of session ``s`` is fixed at its open (a spell's dates, or
``data.pit.pit_status``, which uses CRSP rows before the session only); an intraday exit takes effect at
the first decision whose bar ends at or after the event's time (when it became known). Changing the
membership of later sessions or bars changes nothing before them (tested).

Sources: :meth:`Membership.from_member` (a bool mask), :meth:`Membership.from_spells` (``symbol, start,
end`` spells, inclusive, empty end = open), :meth:`Membership.from_pit` (``data.pit.PitStatus``);
:meth:`Membership.with_exits` adds intraday exits (``symbol, time, dlret``); a delisted symbol is not a
member of any later session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.pit import PitStatus
from .episodes import Panel


@dataclass
class Membership:
    exit_bar: np.ndarray  # (S, K) float: 0 not a member, inf tradable all session, b an exit at bar b
    exit_ret: np.ndarray  # (S, K) float: return applied to the forced closing fill

    @classmethod
    def from_member(cls, member) -> Membership:
        """From a (sessions x symbols) bool mask: members tradable all session, others not at all."""
        m = np.asarray(member, dtype=bool)
        if m.ndim != 2:
            raise ValueError(f"membership mask must be (sessions, symbols), got shape {m.shape}")
        return cls(np.where(m, np.inf, 0.0), np.zeros(m.shape))

    @classmethod
    def from_spells(cls, spells: pd.DataFrame, panel: Panel) -> Membership:
        """Member on a session when a spell of the symbol has ``start <= session <= end`` (``end`` NaT: open).
        Symbols of the panel without any spell are never members."""
        missing = [c for c in ("symbol", "start", "end") if c not in spells.columns]
        if missing:
            raise ValueError(f"membership spells: missing columns {missing} (has {list(spells.columns)})")
        sess = pd.DatetimeIndex(panel.sessions).normalize()
        member = np.zeros((len(sess), len(panel.symbols)), bool)
        col = {s: k for k, s in enumerate(panel.symbols)}
        for r, row in enumerate(spells.itertuples(index=False)):
            start = pd.Timestamp(row.start)
            if pd.isna(start):
                raise ValueError(f"membership spells row {r}: start is empty")
            end = pd.Timestamp(row.end) if not pd.isna(row.end) else pd.Timestamp.max
            k = col.get(row.symbol)
            if k is not None:
                member[(sess >= start.normalize()) & (sess <= end.normalize()), k] = True
        return cls.from_member(member)

    @classmethod
    def from_pit(cls, status: PitStatus, panel: Panel) -> Membership:
        """``status.member`` on the panel's sessions and symbols (a session or symbol the status lacks is
        not a member). A delisting date is a normal session (the name still trades; the position is
        flattened at its close like every other), so ``status.delist`` needs no exit here; use
        :meth:`with_exits` for exits that take effect during a session."""
        sess = pd.DatetimeIndex(panel.sessions).normalize()
        si = pd.DatetimeIndex(status.sessions).normalize().get_indexer(sess)
        ki = pd.Index(status.symbols).get_indexer(list(panel.symbols))
        member = np.zeros((len(sess), len(panel.symbols)), bool)
        ok_s, ok_k = si >= 0, ki >= 0
        member[np.ix_(ok_s, ok_k)] = status.member[np.ix_(si[ok_s], ki[ok_k])]
        return cls.from_member(member)

    def with_exits(self, events: pd.DataFrame, panel: Panel) -> Membership:
        """Add exits that take effect during a session: rows ``symbol, time`` (tz-aware or UTC) and
        optionally ``dlret``. The exit bar is the first bar of that session whose end (start + bar length)
        is at or after ``time``; later sessions are not members. Returns a new ``Membership``."""
        missing = [c for c in ("symbol", "time") if c not in events.columns]
        if missing:
            raise ValueError(f"exit events: missing columns {missing} (has {list(events.columns)})")
        if panel.timestamps is None:
            raise ValueError("exit events need the panel's bar timestamps")
        xb, xr = self.exit_bar.copy(), self.exit_ret.copy()
        col = {s: k for k, s in enumerate(panel.symbols)}
        ends = panel.timestamps.view("int64") + int(panel.bar_ns)
        for r, e in enumerate(events.itertuples(index=False)):
            k = col.get(e.symbol)
            if k is None:
                continue
            t = pd.Timestamp(e.time)
            t = (t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")).tz_localize(None).value
            row = int(np.searchsorted(ends, t, side="left"))
            if row >= len(ends):
                continue  # after the data
            s = int(np.searchsorted(panel.starts, row, side="right")) - 1
            dl = getattr(e, "dlret", 0.0)
            xb[s, k] = min(xb[s, k], float(row - panel.starts[s]))
            xr[s, k] = 0.0 if pd.isna(dl) else float(dl)
            xb[s + 1:, k] = 0.0
        return Membership(xb, xr)

    def exits(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Session ``s``'s (exit bar, exit return) per symbol, for ``Simulator.load``."""
        return self.exit_bar[s], self.exit_ret[s]

    def members(self, s: int) -> np.ndarray:
        """(K,) bool: the symbols that are members at session ``s``'s open."""
        return self.exit_bar[s] > 0

    def check(self, panel: Panel) -> Membership:
        want = (len(panel.sessions), len(panel.symbols))
        if self.exit_bar.shape != want or self.exit_ret.shape != want:
            raise ValueError(f"membership arrays are {self.exit_bar.shape}, the panel has (sessions, symbols) "
                             f"{want}")
        return self
