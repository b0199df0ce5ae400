"""What the market model needs to know about a symbol, kept up to date bar by bar.

``MarketStateBook.on_bar(bar)`` folds in closed bars (every bar, in time order per symbol). At the
first bar of a symbol's session it fixes that session's ``MarketState`` from **previous sessions only**,
with the same definitions the environment uses (``env.episodes.build_panel``), so a broker filling
with it charges what the env charges:

* ``adv_usd``: mean daily dollar volume (sum of close * volume) of the previous
  ``tiers.adv_window_days`` sessions, NaN with fewer than ``tiers.min_history_days``
  (``data.tiers.trailing_adv``); ``tier`` from it (``data.tiers.tier_of``; NaN -> illiquid).
* ``sigma_daily``: std (ddof 1) of the daily close-to-close log returns of the previous
  ``market.sigma_window_days`` sessions, at least ``min(5, window)`` of them, else
  ``market.default_sigma_daily`` (``env.episodes.daily_sigma``).
* ``half_spread_bps``: the universe table's ``half_spread_bps`` for the symbol when
  ``market.half_spread_source == "universe"`` and a universe is given; the Roll estimate from the
  previous ``sigma_window_days`` sessions under ``"estimate"`` (``env.episodes.roll_half_spread_bps``;
  more than 10 return pairs and a negative autocovariance, else the tier value); else the tier table.
  (One edge differs from the batch: the batch has no estimate for a session without a single traded
  bar, which cannot be known at its open; here such a session gets the estimate.)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import MarketConfig, TierConfig
from ..data.tiers import tier_of
from ..market import MarketState


@dataclass
class _Sym:
    session: int | None = None
    state: MarketState | None = None
    dv: float = 0.0  # this session's dollar volume so far
    close: float = math.nan  # last close
    last_traded_logc: float = math.nan  # Roll: previous traded bar's log close in this session
    last_r: float = math.nan  # Roll: previous return in this session
    roll_p: float = 0.0
    roll_n: int = 0
    traded: bool = False
    daily_dv: deque = field(default_factory=deque)
    daily_ret: deque = field(default_factory=deque)
    daily_roll: deque = field(default_factory=deque)
    prev_day_close: float = math.nan


class MarketStateBook:
    """Per-symbol ``MarketState`` for the current session (module docstring)."""

    def __init__(self, market: MarketConfig | None = None, tiers: TierConfig | None = None,
                 universe: pd.DataFrame | None = None):
        self.market = market or MarketConfig()
        self.tiers = tiers or TierConfig()
        self._universe_hs: dict[str, float] = {}
        if (self.market.half_spread_source == "universe" and universe is not None
                and "half_spread_bps" in universe):
            self._universe_hs = {str(s): float(h) for s, h in zip(universe["symbol"], universe["half_spread_bps"])
                                 if h == h}
        self._syms: dict[str, _Sym] = {}

    def on_bar(self, bar) -> MarketState:
        """Fold in one closed bar (``live.feed.Bar``); return the state of its session."""
        s = self._syms.get(bar.symbol)
        if s is None:
            s = self._syms[bar.symbol] = _Sym(daily_dv=deque(maxlen=self.tiers.adv_window_days),
                                              daily_ret=deque(maxlen=self.market.sigma_window_days),
                                              daily_roll=deque(maxlen=self.market.sigma_window_days))
        if s.session != bar.session:
            if s.session is not None:
                self._close_session(s)
            s.session = bar.session
            s.state = self._session_state(bar.symbol, s)
        v = float(bar.volume)
        c = float(bar.close)
        s.dv += c * v
        s.close = c
        if v > 0:  # Roll: consecutive traded bars within the session
            lc = math.log(c)
            if s.traded:
                r = lc - s.last_traded_logc
                if s.last_r == s.last_r:
                    s.roll_p += r * s.last_r
                    s.roll_n += 1
                s.last_r = r
            s.last_traded_logc = lc
            s.traded = True
        return s.state

    def state(self, symbol: str) -> MarketState | None:
        s = self._syms.get(symbol)
        return None if s is None else s.state

    def _close_session(self, s: _Sym) -> None:
        s.daily_dv.append(s.dv)
        ret = math.log(s.close) - math.log(s.prev_day_close) if s.prev_day_close == s.prev_day_close else math.nan
        s.daily_ret.append(ret)
        s.prev_day_close = s.close
        if s.traded:
            s.daily_roll.append((s.roll_p, s.roll_n))
        s.dv = 0.0
        s.roll_p, s.roll_n, s.traded = 0.0, 0, False
        s.last_traded_logc = s.last_r = math.nan

    def _session_state(self, symbol: str, s: _Sym) -> MarketState:
        m, t = self.market, self.tiers
        adv = float(np.mean(s.daily_dv)) if len(s.daily_dv) >= t.min_history_days else math.nan
        tier = str(tier_of(adv, t))
        rets = np.array([r for r in s.daily_ret if r == r])
        sigma = float(np.std(rets, ddof=1)) if len(rets) >= min(5, m.sigma_window_days) and len(rets) > 1 \
            else m.default_sigma_daily
        hs = m.tier_half_spread_bps[tier]
        if symbol in self._universe_hs:
            hs = self._universe_hs[symbol]
        elif m.half_spread_source == "estimate" and s.daily_roll:
            ps = sum(p for p, _ in s.daily_roll)
            ns = sum(n for _, n in s.daily_roll)
            if ns > 10 and ps / ns < 0:
                hs = 1e4 * math.sqrt(-ps / ns)
        return MarketState(half_spread_bps=float(hs), sigma_daily=sigma, adv_usd=adv, tier=tier)
