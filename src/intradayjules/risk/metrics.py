"""Incremental risk metrics: ``RiskTracker.update(info)`` costs O(1) per environment step.

Input is the env's step ``info`` dict (docs/dev/contracts.md); the tracker reads ``equity``,
``traded_notional``, ``traded_notional_by_tier``, ``costs``, ``costs_by_tier``, ``participation``,
``adv_participation``, ``stale_decision``, ``secs_since_trade`` and ``n_fills``. Money is USD, shares of
notional and drawdowns are fractions (0.01 = 1 %), costs are reported in bps of traded notional.

What resets when
----------------
*Per episode* (``start_episode``; an episode is one session): the running equity peak, the current
drawdown, the ulcer ring buffer, the episode's maximum drawdown, the episode's ADV participation and the
time since the last trade. Path-dependent quantities are per episode because each session starts flat
from a fresh peak, as the env's own ``drawdown`` does.

*Cumulative* (since construction or ``clear()``; what an evaluation over several episodes pools):
``max_drawdown`` (max over every step), ``mean_ulcer_index`` (mean of the per-step rolling ulcer
index), traded notional and costs (hence ``impact_bps``, ``spread_bps``, ``commission_bps``),
``stale_share``, ``illiquid_share``, ``adv_participation`` (mean per episode) and participation stats.

Definitions
-----------
* drawdown_t = 1 - equity_t / peak_t, peak_t = max(initial equity of the episode, equity_0..t),
  clipped to [0, 1] (equity <= 0 counts as a total loss).
* ulcer_index_t = sqrt(mean of drawdown^2 over the last ``ulcer_window`` steps of the episode, or fewer
  at its start): kept with a ring buffer of squared drawdowns and a running sum (re-summed once per
  window to cancel floating-point drift, so amortised O(1)).
* stale_share = decisions with ``stale_decision`` / decisions; secs_since_trade = the latest value
  (NaN values, before a symbol's first trade, are ignored).
* illiquid_share = traded notional in the ``illiquid`` tier / all traded notional (0 when nothing traded).
* adv_participation per episode = the sum over its steps of ``info['adv_participation']`` (traded notional
  / ADV): the fraction of a day's ADV the agent traded that session.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import IntradayJulesError


class RiskInputError(IntradayJulesError, ValueError):
    """A step info dict lacks a field the risk tracker needs, or has one of the wrong type."""


_INF = math.inf


class RiskTracker:
    """O(1)-per-step risk metrics from env step infos. See the module docstring for definitions."""

    __slots__ = (
        "window", "_buf", "_idx", "_n_buf", "_sumsq",
        # per episode
        "peak", "drawdown", "drawdown_increase", "episode_max_drawdown", "episode_steps",
        "episode_adv_participation", "secs_since_trade", "ulcer_index",
        # last step (for reward shaping)
        "step_impact_cost", "step_illiquid_cost", "step_cost",
        # cumulative
        "steps", "episodes", "max_drawdown", "_ulcer_sum", "notional", "illiquid_notional",
        "spread_cost", "impact_cost", "commission_cost", "stale_decisions", "adv_participation_sum",
        "participation_sum", "fill_steps", "max_participation", "max_secs_since_trade",
    )

    def __init__(self, ulcer_window: int = 78) -> None:
        if int(ulcer_window) < 1:
            raise ValueError(f"ulcer_window must be >= 1 (got {ulcer_window})")
        self.window = int(ulcer_window)
        self.clear()

    # ------------------------------------------------------------------------------------ resets
    def clear(self) -> None:
        """Forget everything: cumulative and per-episode state."""
        self.steps = 0
        self.episodes = 0
        self.max_drawdown = 0.0
        self._ulcer_sum = 0.0
        self.notional = 0.0
        self.illiquid_notional = 0.0
        self.spread_cost = 0.0
        self.impact_cost = 0.0
        self.commission_cost = 0.0
        self.stale_decisions = 0
        self.adv_participation_sum = 0.0
        self.participation_sum = 0.0
        self.fill_steps = 0
        self.max_participation = 0.0
        self.max_secs_since_trade = 0.0
        self._reset_episode(None)

    def start_episode(self, initial_equity: float | None = None) -> None:
        """Begin an episode. ``initial_equity`` (USD) seeds the running peak; without it the first
        step's equity does (so a loss on the very first fill is not seen as a drawdown). ``episodes``
        counts episodes with at least one step: a reset that is never stepped (auto-reset) is not one."""
        self._reset_episode(initial_equity)

    def _reset_episode(self, initial_equity: float | None) -> None:
        self.peak = float(initial_equity) if initial_equity is not None else -_INF
        self.drawdown = 0.0
        self.drawdown_increase = 0.0
        self.episode_max_drawdown = 0.0
        self.episode_steps = 0
        self.episode_adv_participation = 0.0
        self.secs_since_trade = math.nan
        self.ulcer_index = 0.0
        self.step_impact_cost = 0.0
        self.step_illiquid_cost = 0.0
        self.step_cost = 0.0
        self._buf = [0.0] * self.window
        self._idx = 0
        self._n_buf = 0
        self._sumsq = 0.0

    # ------------------------------------------------------------------------------------ update
    def update(self, info: Mapping[str, Any]) -> None:
        """Fold one step's ``info`` into the metrics. O(1) (amortised), plain floats only."""
        try:
            equity = float(info["equity"])
            notional = float(info["traded_notional"])
            costs = info["costs"]
            spread = float(costs["spread"])
            impact = float(costs["impact"])
            commission = float(costs["commission"])
            ill_notional = float(info["traded_notional_by_tier"].get("illiquid", 0.0))
            ill_cost = float(info["costs_by_tier"].get("illiquid", 0.0))
            participation = float(info["participation"])
            adv_part = float(info["adv_participation"])
            stale = bool(info["stale_decision"])
            secs = float(info["secs_since_trade"])
            n_fills = int(info["n_fills"])
        except KeyError as e:
            raise RiskInputError(
                f"step info (step {self.steps + 1}) lacks field {e.args[0]!r} "
                "(see docs/dev/contracts.md, 'Environment step info')") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise RiskInputError(f"step info (step {self.steps + 1}) has a field of the wrong type: {e}") from None

        # drawdown against the episode's running peak
        peak = self.peak
        if equity > peak:
            peak = self.peak = equity
        if peak > 0.0:
            dd = 1.0 - equity / peak
            dd = 0.0 if dd < 0.0 else (1.0 if dd > 1.0 else dd)
        else:
            dd = 1.0
        inc = dd - self.drawdown
        self.drawdown_increase = inc if inc > 0.0 else 0.0
        self.drawdown = dd
        if dd > self.episode_max_drawdown:
            self.episode_max_drawdown = dd
            if dd > self.max_drawdown:
                self.max_drawdown = dd

        # ulcer: ring buffer of squared drawdowns
        sq = dd * dd
        buf = self._buf
        i = self._idx
        self._sumsq += sq - buf[i]
        buf[i] = sq
        i += 1
        if i == self.window:
            i = 0
            self._sumsq = sum(buf)  # once per window: cancels drift, amortised O(1)
        self._idx = i
        if self._n_buf < self.window:
            self._n_buf += 1
        s = self._sumsq
        self.ulcer_index = math.sqrt(s / self._n_buf) if s > 0.0 else 0.0
        self._ulcer_sum += self.ulcer_index

        # costs and liquidity
        self.notional += notional
        self.illiquid_notional += ill_notional
        self.spread_cost += spread
        self.impact_cost += impact
        self.commission_cost += commission
        self.step_impact_cost = impact
        self.step_illiquid_cost = ill_cost
        self.step_cost = spread + impact + commission
        self.adv_participation_sum += adv_part
        self.episode_adv_participation += adv_part
        if n_fills > 0:
            self.fill_steps += 1
            self.participation_sum += participation
        if participation > self.max_participation:
            self.max_participation = participation

        # staleness
        if stale:
            self.stale_decisions += 1
        if secs == secs:  # not NaN
            self.secs_since_trade = secs
            if secs > self.max_secs_since_trade:
                self.max_secs_since_trade = secs

        if self.episode_steps == 0:
            self.episodes += 1
        self.steps += 1
        self.episode_steps += 1

    # ----------------------------------------------------------------------------------- results
    def _bps(self, cost: float) -> float:
        return cost / self.notional * 1e4 if self.notional > 0.0 else 0.0

    @property
    def impact_bps(self) -> float:
        """Cumulative impact cost in bps of cumulative traded notional (0 when nothing traded)."""
        return self._bps(self.impact_cost)

    @property
    def stale_share(self) -> float:
        return self.stale_decisions / self.steps if self.steps else 0.0

    @property
    def illiquid_share(self) -> float:
        return self.illiquid_notional / self.notional if self.notional > 0.0 else 0.0

    @property
    def mean_ulcer_index(self) -> float:
        return self._ulcer_sum / self.steps if self.steps else 0.0

    def snapshot(self) -> dict[str, float]:
        """Every metric as a plain dict (what the composite, the callback and the logs read)."""
        return {
            "steps": float(self.steps),
            "episodes": float(self.episodes),
            "drawdown": self.drawdown,
            "episode_max_drawdown": self.episode_max_drawdown,
            "max_drawdown": self.max_drawdown,
            "ulcer_index": self.ulcer_index,
            "mean_ulcer_index": self.mean_ulcer_index,
            "traded_notional": self.notional,
            "impact_bps": self.impact_bps,
            "spread_bps": self._bps(self.spread_cost),
            "commission_bps": self._bps(self.commission_cost),
            "stale_share": self.stale_share,
            "secs_since_trade": self.secs_since_trade,
            "max_secs_since_trade": self.max_secs_since_trade,
            "illiquid_share": self.illiquid_share,
            "adv_participation": self.adv_participation_sum / self.episodes if self.episodes else 0.0,
            "episode_adv_participation": self.episode_adv_participation,
            "mean_participation": self.participation_sum / self.fill_steps if self.fill_steps else 0.0,
            "max_participation": self.max_participation,
        }
