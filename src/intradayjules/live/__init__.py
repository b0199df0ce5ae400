"""Paper and live trading pieces: feeds of closed bars, brokers (simulated first), the market state a
simulated broker prices with, and the SQLite journal a restarted loop resumes from (docs/paper.md)."""

from .broker import Broker, BrokerOrder, Execution, SimulatedBroker, client_order_id
from .feed import Bar, Feed, ReplayFeed, open_feed
from .market_state import MarketStateBook

__all__ = ["Bar", "Broker", "BrokerOrder", "Execution", "Feed", "MarketStateBook", "ReplayFeed",
           "SimulatedBroker", "client_order_id", "open_feed"]
