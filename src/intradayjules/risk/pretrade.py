"""Pre-trade risk checks: every order passes ``PreTradeChecker.check`` before a broker sees it.

``check(order, state) -> Decision(symbol, requested, accepted, rejections)``. It is pure (reads
``state``, changes nothing) and O(K) for K symbols. Each rule gives the largest order size it allows in
the order's direction; the accepted quantity is the requested one cut to the smallest of them (rounded
down to whole ``lot``s when cut), and every rule that cut something is listed as a ``Rejection(rule,
detail)`` and logged (logger ``intradayjules.risk.pretrade``, WARNING). After an accepted order the
caller calls ``state.record(decision, t)`` (turnover) and, on fills, ``state.on_fill``.

Units: quantities are signed shares (+ buy), money USD, ``p`` = the symbol's last close (the decision
price), ``E`` = current equity, ``E0`` = the day's starting equity, ``pos`` = current position.
Rules (names are the ``RULES`` constants):

* ``max_position``: ``|pos + q| * p <= max_position * E`` (fraction of equity per symbol).
* ``max_gross_exposure``: ``sum_k |pos_k'| * p_k <= max_gross_exposure * E`` after the order.
* ``illiquid_tier``: no new exposure in a symbol whose tier is ``illiquid`` unless ``allow_illiquid``.
  These three limit exposure: an order that moves a position toward zero is never cut by them (a
  position above a limit after a price move can always be reduced, and flipped up to the limit).
* ``max_order_notional``: ``|q| * p <= max_order_notional`` (USD, a fat-finger guard).
* ``max_adv_participation``: the symbol's traded notional today (accepted orders) plus ``|q| * p`` is
  at most ``max_adv_participation * ADV`` (ADV: trailing average daily dollar volume known before the
  session; unknown ADV allows nothing).
* ``max_bar_participation``: ``|q| <= max_bar_participation * volume`` of the symbol's last closed bar
  (the fill bar's volume is not known at the decision; a zero-volume bar allows nothing).
* ``hourly_turnover`` / ``daily_turnover``: notional of accepted orders at decision prices, in the last
  hour (times in ``(t - 3600, t]``) / today, plus this order, divided by ``E0``, at most the limit
  (``risk/limits.py`` counts fills after the fact; here orders are counted before they fill, which is
  never less than what fills).
* ``daily_drawdown_kill``: once ``1 - E / peak(E today) >= daily_drawdown`` (``state.mark``), the kill
  switch is on until ``start_day``: every order is refused; ``flatten_orders`` gives the
  ``must_complete`` orders that close every position.
* ``stale_feed``: no decision on a symbol whose last bar closed more than ``stale_bars`` bars
  (``stale_bars * bar_seconds``) before ``state.now``: a feed that stopped.
* ``no_market_data`` (symbol never seen, no price) and ``bad_order`` (non-finite or zero quantity).

Flow limits (order notional, participation, turnover) apply to reductions too: they limit market
impact. A ``must_complete`` order (the end-of-day and kill-switch flattens of ``flatten_orders``) must
move its position toward zero without crossing it (else ``bad_order``); it then passes every rule,
the kill switch and a stale feed included: closing out is always allowed.

Exact limits pass: every cap carries a relative slack of 1e-9 against rounding.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

from ..config import EnvConfig, MarketConfig, RiskConfig
from ..market import Order

log = logging.getLogger(__name__)

MAX_POSITION = "max_position"
MAX_GROSS = "max_gross_exposure"
ILLIQUID = "illiquid_tier"
MAX_ORDER_NOTIONAL = "max_order_notional"
ADV_PARTICIPATION = "max_adv_participation"
BAR_PARTICIPATION = "max_bar_participation"
HOURLY_TURNOVER = "hourly_turnover"
DAILY_TURNOVER = "daily_turnover"
KILL_SWITCH = "daily_drawdown_kill"
STALE_FEED = "stale_feed"
NO_DATA = "no_market_data"
BAD_ORDER = "bad_order"
RULES = (MAX_POSITION, MAX_GROSS, ILLIQUID, MAX_ORDER_NOTIONAL, ADV_PARTICIPATION, BAR_PARTICIPATION,
         HOURLY_TURNOVER, DAILY_TURNOVER, KILL_SWITCH, STALE_FEED, NO_DATA, BAD_ORDER)
_EPS = 1e-9  # relative slack so an order exactly at a limit passes despite rounding


@dataclass(frozen=True)
class PreTradeLimits:
    """Limits (module docstring for each rule). ``math.inf`` switches a numeric limit off."""

    max_position: float = 0.25  # fraction of equity per symbol
    max_gross_exposure: float = 1.0  # sum of |position value| / equity
    max_order_notional: float = math.inf  # USD
    max_adv_participation: float = 0.10  # today's traded notional / ADV, per symbol
    max_bar_participation: float = 0.10  # order shares / last bar's volume
    allow_illiquid: bool = False
    hourly_turnover: float = 5.0  # x start-of-day equity
    daily_turnover: float = 20.0
    daily_drawdown: float = 0.02  # kill switch
    stale_bars: int = 3
    bar_seconds: float = 300.0
    lot: float = 1.0  # a cut order is rounded down to whole lots

    def __post_init__(self) -> None:
        for name in ("max_position", "max_gross_exposure", "max_order_notional", "max_adv_participation",
                     "max_bar_participation", "hourly_turnover", "daily_turnover", "daily_drawdown",
                     "bar_seconds", "lot"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and not math.isnan(v)):
                raise ValueError(f"PreTradeLimits.{name} must be > 0 (got {v!r})")
        if not self.daily_drawdown < 1:
            raise ValueError(f"PreTradeLimits.daily_drawdown must be < 1 (got {self.daily_drawdown!r})")
        if not (isinstance(self.stale_bars, int) and self.stale_bars >= 1):
            raise ValueError(f"PreTradeLimits.stale_bars must be an int >= 1 (got {self.stale_bars!r})")

    @classmethod
    def from_config(cls, risk: RiskConfig, env: EnvConfig | None = None, market: MarketConfig | None = None,
                    bar_seconds: float = 300.0, **overrides) -> "PreTradeLimits":
        """Limits the configuration already defines: drawdown and turnover (``risk``), position size and
        gross exposure (``env``), the participation cap (``market``), illiquid masking
        (``risk.mask_illiquid``). The largest order is the whole book (``initial_cash *
        max_gross_exposure``). ADV participation and stale bars have no config field yet: defaults,
        or ``overrides``."""
        env = env or EnvConfig()
        market = market or MarketConfig()
        vals = dict(max_position=env.position_size, max_gross_exposure=env.max_gross_exposure,
                    max_order_notional=env.initial_cash * env.max_gross_exposure,
                    max_bar_participation=market.participation_cap, allow_illiquid=not risk.mask_illiquid,
                    hourly_turnover=risk.hourly_turnover_limit, daily_turnover=risk.daily_turnover_limit,
                    daily_drawdown=risk.daily_drawdown_limit, bar_seconds=bar_seconds)
        vals.update(overrides)
        return cls(**vals)


@dataclass(frozen=True)
class Rejection:
    rule: str
    detail: str


@dataclass(frozen=True)
class Decision:
    symbol: str
    requested: float
    accepted: float
    rejections: tuple[Rejection, ...] = ()
    must_complete: bool = False

    @property
    def ok(self) -> bool:
        """True when the whole order passed."""
        return not self.rejections

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.rejections)

    def order(self) -> Order:
        return Order(self.symbol, self.accepted, self.must_complete)


@dataclass
class SymbolView:
    """What is known about a symbol at the decision: last close (USD), last bar volume (shares), when
    its last bar closed (seconds, same clock as ``RiskState.now``), ADV (USD/day, before the session)
    and liquidity tier."""

    price: float
    volume: float
    bar_time: float
    adv_usd: float = math.nan
    tier: str = "illiquid"


@dataclass
class RiskState:
    """Mutable account and risk state the checker reads. ``now`` is the decision time in seconds."""

    equity: float = 1.0
    now: float = 0.0
    positions: dict[str, float] = field(default_factory=dict)
    symbols: dict[str, SymbolView] = field(default_factory=dict)
    start_equity: float = 1.0
    peak_equity: float = 1.0
    killed: bool = False
    kill_detail: str = ""
    hour_notional: float = 0.0
    day_notional: float = 0.0
    day_symbol_notional: dict[str, float] = field(default_factory=dict)
    _hour: deque = field(default_factory=deque, repr=False)

    def start_day(self, equity: float, t: float | None = None) -> None:
        """A new trading day with ``equity`` USD (> 0): kill switch off, peak and turnover reset."""
        if not equity > 0:
            raise ValueError(f"start-of-day equity must be > 0 (got {equity})")
        self.equity = self.start_equity = self.peak_equity = float(equity)
        self.killed, self.kill_detail = False, ""
        self.hour_notional = self.day_notional = 0.0
        self.day_symbol_notional = {}
        self._hour.clear()
        if t is not None:
            self.now = float(t)

    def on_bar(self, symbol: str, close: float, volume: float, bar_time: float, adv_usd: float | None = None,
               tier: str | None = None) -> None:
        """A closed bar of ``symbol`` (``bar_time``: when it closed, seconds)."""
        v = self.symbols.get(symbol)
        if v is None:
            self.symbols[symbol] = SymbolView(float(close), float(volume), float(bar_time),
                                              math.nan if adv_usd is None else float(adv_usd),
                                              "illiquid" if tier is None else tier)
            return
        v.price, v.volume, v.bar_time = float(close), float(volume), float(bar_time)
        if adv_usd is not None:
            v.adv_usd = float(adv_usd)
        if tier is not None:
            v.tier = tier

    def mark(self, equity: float, limits: PreTradeLimits, t: float | None = None) -> bool:
        """Mark equity; switch the kill switch on at ``drawdown >= limits.daily_drawdown``. Returns
        whether it is on."""
        self.equity = float(equity)
        if t is not None:
            self.now = float(t)
        if self.equity > self.peak_equity:
            self.peak_equity = self.equity
        dd = 1.0 - self.equity / self.peak_equity if self.peak_equity > 0 else 1.0
        if not self.killed and dd >= limits.daily_drawdown:
            self.killed = True
            self.kill_detail = (f"drawdown {dd:.4%} from the day's peak {self.peak_equity:,.2f} reached the "
                                f"limit {limits.daily_drawdown:.4%}; no new orders until the next day")
            log.warning("kill switch: %s", self.kill_detail)
        return self.killed

    @property
    def drawdown(self) -> float:
        return 1.0 - self.equity / self.peak_equity if self.peak_equity > 0 else 1.0

    def on_fill(self, symbol: str, qty: float) -> None:
        self.positions[symbol] = self.positions.get(symbol, 0.0) + float(qty)

    def record(self, decision: Decision, t: float | None = None) -> None:
        """Count an accepted order's notional (at the decision price) in the turnover windows."""
        if decision.accepted == 0:
            return
        self.record_notional(decision.symbol, abs(decision.accepted) * self.symbols[decision.symbol].price, t)

    def record_notional(self, symbol: str, notional: float, t: float | None = None) -> None:
        """Count ``notional`` USD traded in ``symbol`` at time ``t`` (default ``now``); also used to
        rebuild the day's turnover from a journal after a restart."""
        now = self.now if t is None else float(t)
        h = self._hour
        while h and h[0][0] <= now - 3600.0:
            self.hour_notional -= h.popleft()[1]
        if not h:
            self.hour_notional = 0.0  # cancel floating-point residue
        h.append((now, notional))
        self.hour_notional += notional
        self.day_notional += notional
        self.day_symbol_notional[symbol] = self.day_symbol_notional.get(symbol, 0.0) + notional

    def hour_turnover(self, now: float) -> float:
        """Accepted notional with time in ``(now - 3600, now]``. Does not change the state (expired
        entries are dropped by ``record``)."""
        cutoff = now - 3600.0
        total = self.hour_notional
        for t, notional in self._hour:
            if t > cutoff:
                break
            total -= notional
        return total if total > 0 else 0.0

    def gross(self, exclude: str | None = None) -> float:
        g = 0.0
        for s, q in self.positions.items():
            if q and s != exclude:
                g += abs(q) * self.symbols[s].price
        return g


class PreTradeChecker:
    """``PreTradeChecker(limits).check(order, state) -> Decision`` (module docstring)."""

    def __init__(self, limits: PreTradeLimits | None = None, logger: logging.Logger | None = None):
        self.limits = limits or PreTradeLimits()
        self.log = logger or log

    def check(self, order: Order, state: RiskState) -> Decision:
        lim = self.limits
        sym, q = order.symbol, float(order.qty)
        rej: list[Rejection] = []
        if not math.isfinite(q) or q == 0:
            return self._done(order, 0.0, [Rejection(BAD_ORDER, f"quantity {q!r} is not a finite non-zero number")])
        view = state.symbols.get(sym)
        if view is None or not (math.isfinite(view.price) and view.price > 0):
            return self._done(order, 0.0, [Rejection(NO_DATA, f"{sym}: no bar seen, no price to check against")])
        pos = state.positions.get(sym, 0.0)
        if order.must_complete:  # a forced close-out: always allowed, never more than the position
            if pos * q < 0 and abs(q) <= abs(pos) * (1 + _EPS):
                return self._done(order, q, [])
            return self._done(order, 0.0, [Rejection(
                BAD_ORDER, f"{sym}: a must_complete order only closes a position; {q:+g} on {pos:+g} does not")])
        if state.killed:
            return self._done(order, 0.0, [Rejection(KILL_SWITCH, state.kill_detail)])
        age = state.now - view.bar_time
        if age > lim.stale_bars * lim.bar_seconds * (1 + _EPS):
            return self._done(order, 0.0, [Rejection(
                STALE_FEED, f"{sym}: last bar closed {age:.0f} s before now, more than {lim.stale_bars} bars "
                f"({lim.stale_bars * lim.bar_seconds:.0f} s)")])
        side = 1.0 if q > 0 else -1.0
        p = view.price
        sp = side * pos  # > 0: the order adds to the position; < 0: it reduces it
        want = abs(q)
        E = max(state.equity, 0.0)
        E0 = state.start_equity
        slack = 1.0 + _EPS
        other = state.gross(exclude=sym)
        hour = state.hour_turnover(state.now)
        adv = view.adv_usd
        adv_known = math.isfinite(adv) and adv > 0
        # the largest |q| each rule allows (exposure rules: max(limit - sp, 0), so reductions pass)
        caps = (
            (MAX_POSITION, max(lim.max_position * E * slack / p - sp, 0.0)),
            (MAX_GROSS, max(max(lim.max_gross_exposure * E - other, 0.0) * slack / p - sp, 0.0)),
            (ILLIQUID, max(-sp, 0.0) if view.tier == "illiquid" and not lim.allow_illiquid else math.inf),
            (MAX_ORDER_NOTIONAL, lim.max_order_notional * slack / p),
            (ADV_PARTICIPATION, max(lim.max_adv_participation * adv - state.day_symbol_notional.get(sym, 0.0), 0.0)
             * slack / p if adv_known else 0.0),
            (BAR_PARTICIPATION, lim.max_bar_participation * max(view.volume, 0.0) * slack),
            (HOURLY_TURNOVER, max(lim.hourly_turnover * E0 - hour, 0.0) * slack / p),
            (DAILY_TURNOVER, max(lim.daily_turnover * E0 - state.day_notional, 0.0) * slack / p),
        )
        allowed = want
        for rule, cap in caps:
            if cap < want:
                rej.append(Rejection(rule, self._detail(rule, sym, p, E, E0, other, hour, view, state)))
                if cap < allowed:
                    allowed = cap
        if allowed < want:
            allowed = math.floor(allowed / lim.lot) * lim.lot
        return self._done(order, side * allowed if allowed else 0.0, rej)

    def _detail(self, rule: str, sym: str, p: float, E: float, E0: float, other: float, hour: float,
                view: SymbolView, state: RiskState) -> str:
        """The message of a rule that cut an order (formatted only then: checks stay cheap)."""
        lim = self.limits
        if rule == MAX_POSITION:
            return (f"{sym}: position after the order would exceed {lim.max_position:g} x equity "
                    f"({lim.max_position * E:,.2f} USD = {lim.max_position * E / p:,.2f} sh at {p:g})")
        if rule == MAX_GROSS:
            return (f"gross exposure after the order would exceed {lim.max_gross_exposure:g} x equity "
                    f"({lim.max_gross_exposure * E:,.2f} USD; other symbols hold {other:,.2f})")
        if rule == ILLIQUID:
            return f"{sym} is in the illiquid tier: no new exposure (allow_illiquid is off)"
        if rule == MAX_ORDER_NOTIONAL:
            return f"order notional would exceed {lim.max_order_notional:,.2f} USD"
        if rule == ADV_PARTICIPATION:
            if not (math.isfinite(view.adv_usd) and view.adv_usd > 0):
                return f"{sym}: no ADV known before this session"
            return (f"{sym}: today's traded notional would exceed {lim.max_adv_participation:g} x ADV "
                    f"({view.adv_usd:,.0f} USD/day; {state.day_symbol_notional.get(sym, 0.0):,.2f} used)")
        if rule == BAR_PARTICIPATION:
            return (f"{sym}: order would exceed {lim.max_bar_participation:g} x the last bar's volume "
                    f"({view.volume:,.0f} sh)")
        if rule == HOURLY_TURNOVER:
            return (f"turnover in the last hour would exceed {lim.hourly_turnover:g} x start-of-day equity "
                    f"({hour:,.2f} of {lim.hourly_turnover * E0:,.2f} USD used)")
        return (f"turnover today would exceed {lim.daily_turnover:g} x start-of-day equity "
                f"({state.day_notional:,.2f} of {lim.daily_turnover * E0:,.2f} USD used)")

    def flatten_orders(self, state: RiskState) -> list[Order]:
        """``must_complete`` orders that close every open position (kill switch, end of day)."""
        return [Order(s, -q, True) for s, q in sorted(state.positions.items()) if q != 0]

    def _done(self, order: Order, accepted: float, rej: list[Rejection]) -> Decision:
        d = Decision(order.symbol, float(order.qty), accepted, tuple(rej), order.must_complete)
        for r in rej:
            self.log.warning("pre-trade %s: %s order %+g -> %+g: %s", r.rule, order.symbol, order.qty, accepted,
                             r.detail)
        return d
