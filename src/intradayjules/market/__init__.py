"""The market model: fills at the next bar's open, half-spread, square-root impact, commission,
participation cap; and the original flat 5 bps model. See ``costs.py``."""

from __future__ import annotations

from .costs import BarQuote, Fill, MarketModel, MarketState, Order

__all__ = ["BarQuote", "Fill", "MarketModel", "MarketState", "Order"]
