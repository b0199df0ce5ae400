"""Where orders go: the ``Broker`` protocol and ``SimulatedBroker``, which fills like the environment.

Orders carry a **client order id** chosen by the caller (``client_order_id``: deterministic from the
run, the decision bar, the symbol and the kind). ``submit`` is idempotent: an id it has seen before is
not a new order (returns False). That is what lets a restarted loop resubmit everything its journal
holds as unsent without ever trading twice.

``SimulatedBroker`` fills with the project's one market model (``market.MarketModel``, the code the
env's step kernel runs) and the env's timing (``env/simulator.py``):

* ``kind="market"``: fills at the **open** of the symbol's next bar after submission; half-spread,
  square-root impact and commission from the ``MarketState`` of that bar's session
  (``MarketStateBook``: previous sessions only); at most ``floor(participation_cap * volume)`` shares of
  that bar, shared by the orders filling on it in submission order; nothing on a zero-volume bar.
  ``must_complete`` orders ignore the cap. The unfilled rest is cancelled (``market.unfilled =
  cancel``) or stays working for the next bar (``carry``) until filled or cancelled.
* ``kind="close"``: closes the whole position at the **close** of the next bar (after that bar's open
  fills), in full (no cap): the env's end-of-episode flatten.

``on_bars(batch)`` feeds the broker the bars that just closed and returns one ``Execution`` per order
that filled, was cut, cancelled or rejected on them. Cash and positions follow every fill: cash falls by
``qty * price + costs``. A symbol without a known ADV (its first session) cannot be priced: orders on it
are rejected there (``reason``), as the env would not trade it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import pandas as pd

from ..config import MarketConfig, TierConfig
from ..market import BarQuote, MarketModel, MarketState, Order
from .feed import Bar
from .market_state import MarketStateBook

KINDS = ("market", "close")


def client_order_id(run: str, decision_ts: int, symbol: str, kind: str = "market", seq: int = 0) -> str:
    """Deterministic 24-hex-digit id: the same decision always gets the same id."""
    key = f"{run}|{int(decision_ts)}|{symbol}|{kind}|{int(seq)}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


@dataclass(frozen=True)
class BrokerOrder:
    """``qty``: signed shares (ignored for ``kind="close"``); ``decision_ts``: start of the decision bar
    (int64 ns), for the record."""

    client_id: str
    symbol: str
    qty: float
    kind: str = "market"
    must_complete: bool = False
    decision_ts: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"order {self.client_id}: kind {self.kind!r} is not one of {KINDS}")
        if not math.isfinite(self.qty) or (self.kind == "market" and self.qty == 0):
            raise ValueError(f"order {self.client_id}: qty {self.qty!r} must be finite and non-zero")


@dataclass(frozen=True)
class Execution:
    """What happened to an order on one bar. ``qty`` signed shares filled (0: none), ``price`` USD per
    share before costs, costs in USD; ``remaining`` signed shares still working after this bar;
    ``status``: filled | partial (rest working) | cancelled (rest dropped) | rejected."""

    client_id: str
    symbol: str
    ts: int
    qty: float
    price: float
    spread_cost: float
    impact_cost: float
    fees: float
    requested: float
    remaining: float
    status: str
    kind: str = "market"
    reason: str = ""

    @property
    def total_cost(self) -> float:
        return self.spread_cost + self.impact_cost + self.fees


@runtime_checkable
class Broker(Protocol):
    def submit(self, order: BrokerOrder) -> bool:
        """Place an order; False when its client id was already placed (nothing new happens)."""

    def cancel(self, client_id: str) -> bool: ...

    def on_bars(self, bars: list[Bar]) -> list[Execution]:
        """Bars that just closed; returns the executions they produced (a real adapter polls here)."""

    def positions(self) -> dict[str, float]: ...

    def cash(self) -> float: ...

    def open_orders(self) -> list[BrokerOrder]: ...


class SimulatedBroker:
    """The default broker: fills with the market model and the env's timing (module docstring)."""

    def __init__(self, market: MarketConfig | None = None, tiers: TierConfig | None = None, *,
                 universe=None, initial_cash: float = 1_000_000.0, book: MarketStateBook | None = None):
        self.market_cfg = market or MarketConfig()
        self.model = MarketModel(self.market_cfg)
        self.book = book or MarketStateBook(self.market_cfg, tiers, universe)
        self.carry = self.market_cfg.unfilled == "carry"
        self._cash = float(initial_cash)
        self._pos: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._open: dict[str, BrokerOrder] = {}  # client id -> order (remaining qty), submission order
        self._seen: set[str] = set()

    # ---------------------------------------------------------------------------------- protocol
    def submit(self, order: BrokerOrder) -> bool:
        if order.client_id in self._seen:
            return False
        self._seen.add(order.client_id)
        self._open[order.client_id] = order
        return True

    def cancel(self, client_id: str) -> bool:
        return self._open.pop(client_id, None) is not None

    def positions(self) -> dict[str, float]:
        """Non-zero positions, by symbol name (a fixed order keeps sums over them reproducible)."""
        return {s: self._pos[s] for s in sorted(self._pos) if self._pos[s] != 0}

    def cash(self) -> float:
        return self._cash

    def open_orders(self) -> list[BrokerOrder]:
        return list(self._open.values())

    def last_prices(self) -> dict[str, float]:
        """Last close of every symbol seen (USD)."""
        return dict(self._last)

    def equity(self) -> float:
        """Cash plus positions at their last close."""
        eq = self._cash
        for s, q in self.positions().items():
            eq += q * self._last[s]
        return eq

    def restore(self, cash: float, positions: dict[str, float], open_orders: Iterable[BrokerOrder],
                seen: Iterable[str], last_close: dict[str, float] | None = None) -> None:
        """Put the account back as a journal recorded it (after a restart)."""
        self._cash = float(cash)
        self._pos = {s: float(q) for s, q in positions.items()}
        self._open = {o.client_id: o for o in open_orders}
        self._seen = set(seen) | set(self._open)
        self._last.update(last_close or {})

    def on_bars(self, bars: list[Bar]) -> list[Execution]:
        out: list[Execution] = []
        for bar in bars:
            state = self.book.on_bar(bar)
            mine = [o for o in self._open.values() if o.symbol == bar.symbol]
            if mine:
                out += self._fill_open(bar, state, [o for o in mine if o.kind == "market"])
                out += self._fill_close(bar, state, [o for o in mine if o.kind == "close"])
            self._last[bar.symbol] = bar.close
        return out

    # ----------------------------------------------------------------------------------- fills
    def _fill_open(self, bar: Bar, state: MarketState, orders: list[BrokerOrder]) -> list[Execution]:
        out = []
        # the cap is shared by the orders filling on this bar: floor(cap * volume) shares in all, the
        # same expression as market.kernels.fill_one; each order is cut here and priced uncapped
        left = max(math.floor(self.market_cfg.participation_cap * bar.volume), 0.0)
        for o in orders:
            if not self._priceable(state):
                out.append(self._reject(o, bar, state))
                continue
            q = o.qty
            if not (o.must_complete or self.model.flat):
                a = min(abs(q), left)
                left -= a
                q = a if q >= 0 else -a
            f = self.model.fill(Order(o.symbol, q, True), BarQuote(bar.open, bar.volume), state)
            rest = o.qty - f.qty
            if rest == 0:
                status = "filled"
                self._open.pop(o.client_id)
            elif self.carry:
                status = "partial"
                self._open[o.client_id] = replace(o, qty=rest)
            else:
                status = "cancelled"
                self._open.pop(o.client_id)
            self._book(o.symbol, f)
            out.append(Execution(o.client_id, o.symbol, bar.ts, f.qty, f.price, f.spread_cost, f.impact_cost,
                                 f.fees, o.qty, rest if status == "partial" else 0.0, status, o.kind,
                                 "" if status == "filled" else _why_short(bar, f.qty, o.qty)))
        return out

    def _fill_close(self, bar: Bar, state: MarketState, orders: list[BrokerOrder]) -> list[Execution]:
        out = []
        for o in orders:
            self._open.pop(o.client_id)
            q = -self._pos.get(o.symbol, 0.0)
            if q == 0:
                out.append(Execution(o.client_id, o.symbol, bar.ts, 0.0, bar.close, 0.0, 0.0, 0.0, 0.0, 0.0,
                                     "filled", o.kind, "no position to close"))
                continue
            if not self._priceable(state):
                out.append(self._reject(o, bar, state))
                continue
            f = self.model.fill(Order(o.symbol, q, True), BarQuote(bar.close, bar.volume), state)
            self._book(o.symbol, f)
            out.append(Execution(o.client_id, o.symbol, bar.ts, f.qty, f.price, f.spread_cost, f.impact_cost,
                                 f.fees, q, 0.0, "filled", o.kind))
        return out

    def _priceable(self, state: MarketState) -> bool:
        return self.model.flat or (math.isfinite(state.adv_usd) and state.adv_usd > 0)

    def _reject(self, o: BrokerOrder, bar: Bar, state: MarketState) -> Execution:
        self._open.pop(o.client_id, None)
        return Execution(o.client_id, o.symbol, bar.ts, 0.0, math.nan, 0.0, 0.0, 0.0, o.qty, 0.0, "rejected",
                         o.kind, f"{o.symbol}: no ADV known before session "
                         f"{_day(bar.session)} (adv_usd={state.adv_usd!r}): cannot price the order")

    def _book(self, symbol: str, f) -> None:
        """Cash falls by ``qty * price + spread + impact + fees``, added in that order: the env kernel's
        expression, so cash (and every size computed from equity) agrees with it to the last bit."""
        if f.qty:
            self._cash -= f.qty * f.price + f.spread_cost + f.impact_cost + f.fees
            self._pos[symbol] = self._pos.get(symbol, 0.0) + f.qty
        elif f.total_cost:
            self._cash -= f.total_cost


def _why_short(bar: Bar, filled: float, asked: float) -> str:
    if bar.volume <= 0:
        return "no trade in the fill bar (volume 0)"
    return f"participation cap: {abs(filled):g} of {abs(asked):g} shares on a bar of {bar.volume:g}"


def _day(session_ns: int) -> str:
    return str(pd.Timestamp(session_ns).date())
