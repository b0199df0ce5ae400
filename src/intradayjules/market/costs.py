"""The one market model: what a trade costs and how much of it fills.

Conventions (USD, shares, signed quantities: + buys, - sells):

* An order decided on bar ``t`` fills at bar ``t+1``'s **open** (``Fill.price``). Costs are separate USD
  amounts paid on top of ``qty * price``: the effective average price of a buy is
  ``price + (spread_cost + impact_cost + fees) / |qty|`` (a sell receives that much less).
* ``realistic`` model, per symbol:
    - half-spread: ``half_spread_bps * 1e-4 * notional``;
    - square-root impact: ``impact_coef * sigma_daily * sqrt(notional / adv_usd) * notional``, with
      ``sigma_daily`` (fraction per day) and ``adv_usd`` (USD per day) known at the decision;
    - commission: ``commission_bps * 1e-4 * notional``;
    - participation cap: at most ``floor(participation_cap * volume)`` shares of the fill bar fill; the
      rest is unfilled (the env cancels or carries it, ``MarketConfig.unfilled``). A zero-volume bar
      fills nothing. ``must_complete`` orders (forced liquidations at the end of an episode) ignore the
      cap and the zero-volume rule; their size is priced by the impact term.
* ``flat`` model (the original system): the whole order fills at the price, cost
  ``flat_cost_bps * 1e-4 * notional`` reported as ``fees``; no spread, impact or cap.

The formulas live once, in ``kernels.fill_one`` (numba): ``MarketModel.fill_arrays`` (vectorised),
``MarketModel.fill`` (one order) and the environment's step kernel all call it, so they always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import MarketConfig
from .kernels import fill_loop, model_params


@dataclass(frozen=True)
class Order:
    """``qty`` signed shares to trade. ``must_complete``: ignore the participation cap (forced flatten)."""

    symbol: str
    qty: float
    must_complete: bool = False


@dataclass(frozen=True)
class BarQuote:
    """The fill bar: its open (USD per share) and volume (shares)."""

    open: float
    volume: float


@dataclass(frozen=True)
class MarketState:
    """What is known about a symbol at the decision: half-spread (bps of price), daily volatility
    (fraction, e.g. 0.02) and average daily dollar volume (USD/day), from previous sessions only."""

    half_spread_bps: float
    sigma_daily: float
    adv_usd: float
    tier: str = "mid"


@dataclass(frozen=True)
class Fill:
    symbol: str
    qty: float  # signed shares filled
    price: float  # USD per share before costs (the fill bar's open)
    spread_cost: float  # USD, >= 0
    impact_cost: float  # USD, >= 0
    fees: float  # USD, >= 0 (commission; the whole cost under the flat model)
    requested: float = 0.0  # signed shares asked for
    participation: float = 0.0  # |qty| / bar volume (0 when nothing filled or volume 0)

    @property
    def notional(self) -> float:
        return abs(self.qty) * self.price

    @property
    def total_cost(self) -> float:
        return self.spread_cost + self.impact_cost + self.fees

    @property
    def unfilled(self) -> float:
        return self.requested - self.qty


class MarketModel:
    """``MarketModel(cfg).fill(order, bar, state) -> Fill``; ``fill_arrays`` for many at once."""

    def __init__(self, cfg: MarketConfig | None = None):
        self.cfg = cfg or MarketConfig()
        self.flat = self.cfg.model == "flat"
        self.params = model_params(self.cfg)

    def fill_arrays(self, qty, price, volume, half_spread_bps, sigma_daily, adv_usd,
                    must_complete=False):
        """Vectorised fills. All inputs broadcast to one shape (e.g. (n_envs, n_symbols)).

        Returns ``(filled, spread_cost, impact_cost, fees)``: signed shares filled and USD costs (>= 0).
        ``adv_usd`` must be > 0 where anything trades.
        """
        arrs = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in
                                     (qty, price, volume, half_spread_bps, sigma_daily, adv_usd)))
        shape = arrs[0].shape
        flat = [np.ascontiguousarray(a).reshape(-1) for a in arrs]
        must = np.ascontiguousarray(np.broadcast_to(np.asarray(must_complete, dtype=np.bool_), shape)).reshape(-1)
        out = np.empty((flat[0].shape[0], 4))
        fill_loop(*flat, must, self.params, out)
        return tuple(out[:, j].reshape(shape).copy() for j in range(4))

    def fill(self, order: Order, bar: BarQuote, state: MarketState) -> Fill:
        """Fill one order against the next bar. Raises ``ValueError`` naming the bad field."""
        _check(order, bar, state, self.flat)
        filled, spread, impact, fees = self.fill_arrays(
            np.array([order.qty]), np.array([bar.open]), np.array([bar.volume]),
            np.array([state.half_spread_bps]), np.array([state.sigma_daily]), np.array([state.adv_usd]),
            must_complete=order.must_complete)
        q = float(filled[0])
        part = abs(q) / bar.volume if bar.volume > 0 and q != 0 else 0.0
        return Fill(order.symbol, q, float(bar.open), float(spread[0]), float(impact[0]), float(fees[0]),
                    requested=float(order.qty), participation=part)


def _check(order: Order, bar: BarQuote, state: MarketState, flat: bool) -> None:
    def bad(name: str, value: float, rule: str) -> None:
        raise ValueError(f"{order.symbol}: {name}={value!r} {rule}")

    if not math.isfinite(order.qty):
        bad("order.qty", order.qty, "is not finite")
    if not (math.isfinite(bar.open) and bar.open > 0):
        bad("bar.open", bar.open, "must be a finite price > 0")
    if flat:
        return
    if not (math.isfinite(bar.volume) and bar.volume >= 0):
        bad("bar.volume", bar.volume, "must be finite and >= 0")
    if not (math.isfinite(state.half_spread_bps) and state.half_spread_bps >= 0):
        bad("state.half_spread_bps", state.half_spread_bps, "must be finite and >= 0")
    if not (math.isfinite(state.sigma_daily) and state.sigma_daily >= 0):
        bad("state.sigma_daily", state.sigma_daily, "must be finite and >= 0")
    if not (math.isfinite(state.adv_usd) and state.adv_usd > 0):
        bad("state.adv_usd", state.adv_usd, "must be a finite USD/day > 0 (known before the session)")
