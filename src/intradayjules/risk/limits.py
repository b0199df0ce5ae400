"""Hard risk limits from the original system: daily drawdown 2 %, hourly turnover 5x, daily turnover 20x.

``RiskLimits.update(info, t)`` is O(1) amortised per step and returns the names of the limits breached
after that step (an empty tuple when none). Definitions (one trading day = one session = one episode):

* daily drawdown = 1 - equity / running peak equity of the day (the day's first equity, passed to
  ``start_day``, seeds the peak); breached when ``>= daily_drawdown``. Same definition as the env's
  ``drawdown`` and ``RiskTracker.drawdown``.
* turnover over a window = traded notional in the window / the day's starting equity (so 1x = trading
  the whole book once). Hourly: fills with time in ``(t - 3600 s, t]``; daily: every fill of the day.
  Breached when ``>`` the limit (``hourly_turnover`` 5, ``daily_turnover`` 20).

``t`` is the step's time in seconds (e.g. the decision bar's POSIX timestamp); without it, steps are
assumed ``bar_seconds`` apart (300 for 5-minute bars), counted from the start of the day.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from ..config import RiskConfig

DAILY_DRAWDOWN = "daily_drawdown"
HOURLY_TURNOVER = "hourly_turnover"
DAILY_TURNOVER = "daily_turnover"


class RiskLimits:
    __slots__ = ("daily_drawdown", "hourly_turnover", "daily_turnover", "bar_seconds", "_start_equity",
                 "_peak", "_window", "_hour_notional", "_day_notional", "_step", "drawdown",
                 "hourly", "daily", "breaches")

    def __init__(self, daily_drawdown: float = 0.02, hourly_turnover: float = 5.0,
                 daily_turnover: float = 20.0, bar_seconds: float = 300.0) -> None:
        for name, v in (("daily_drawdown", daily_drawdown), ("hourly_turnover", hourly_turnover),
                        ("daily_turnover", daily_turnover), ("bar_seconds", bar_seconds)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0 (got {v})")
        self.daily_drawdown = float(daily_drawdown)
        self.hourly_turnover = float(hourly_turnover)
        self.daily_turnover = float(daily_turnover)
        self.bar_seconds = float(bar_seconds)
        self.breaches: dict[str, int] = {DAILY_DRAWDOWN: 0, HOURLY_TURNOVER: 0, DAILY_TURNOVER: 0}
        self.start_day(1.0)

    @classmethod
    def from_config(cls, cfg: RiskConfig, bar_seconds: float = 300.0) -> "RiskLimits":
        return cls(cfg.daily_drawdown_limit, cfg.hourly_turnover_limit, cfg.daily_turnover_limit, bar_seconds)

    def start_day(self, equity: float) -> None:
        """Start a trading day with ``equity`` USD (> 0): resets peak and turnover windows."""
        if not equity > 0:
            raise ValueError(f"start-of-day equity must be > 0 (got {equity})")
        self._start_equity = float(equity)
        self._peak = float(equity)
        self._window: deque[tuple[float, float]] = deque()
        self._hour_notional = 0.0
        self._day_notional = 0.0
        self._step = 0
        self.drawdown = 0.0
        self.hourly = 0.0
        self.daily = 0.0

    def update(self, info: Mapping[str, Any], t: float | None = None) -> tuple[str, ...]:
        """Fold one step in; return the limits breached now (``daily_drawdown``, ``hourly_turnover``,
        ``daily_turnover``), also counted in ``breaches``."""
        try:
            equity = float(info["equity"])
            notional = float(info["traded_notional"])
        except KeyError as e:
            raise KeyError(f"step info lacks field {e.args[0]!r} (docs/dev/contracts.md)") from None
        self._step += 1
        now = float(t) if t is not None else self._step * self.bar_seconds
        if equity > self._peak:
            self._peak = equity
        self.drawdown = 1.0 - equity / self._peak if self._peak > 0 else 1.0
        w = self._window
        if notional:
            w.append((now, notional))
            self._hour_notional += notional
        cutoff = now - 3600.0
        while w and w[0][0] <= cutoff:
            self._hour_notional -= w.popleft()[1]
        if not w:
            self._hour_notional = 0.0  # cancel floating-point residue
        self._day_notional += notional
        self.hourly = self._hour_notional / self._start_equity
        self.daily = self._day_notional / self._start_equity
        out = []
        if self.drawdown >= self.daily_drawdown:
            out.append(DAILY_DRAWDOWN)
        if self.hourly > self.hourly_turnover:
            out.append(HOURLY_TURNOVER)
        if self.daily > self.daily_turnover:
            out.append(DAILY_TURNOVER)
        for name in out:
            self.breaches[name] += 1
        return tuple(out)
