"""A small real Gymnasium trading env that emits the step-info contract (docs/dev/contracts.md).

Single asset, actions 0 short / 1 flat / 2 long (target positions of ``shares`` shares). An order decided
at step t fills at the next price; costs: half-spread ``half_spread_bps`` of notional, impact
``impact_bps_per_share * shares_traded`` bps of notional, commission ``commission_bps``. Only used to
test the risk layer until the real env exists; it is deliberately independent of the risk code.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class ToyTradingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, tier: str = "liquid", n_steps: int = 50, shares: float = 1000.0,
                 initial_cash: float = 100_000.0, reward_scale: float = 1.0, half_spread_bps: float = 5.0,
                 impact_bps_per_share: float = 0.01, commission_bps: float = 0.5, stale_every: int = 0):
        self.tier = tier
        self.tiers = (tier,)
        self.n_steps = n_steps
        self.shares = shares
        self.initial_cash = initial_cash
        self.reward_scale = reward_scale
        self.half_spread = half_spread_bps * 1e-4
        self.impact_per_share = impact_bps_per_share * 1e-4
        self.commission = commission_bps * 1e-4
        self.stale_every = stale_every
        self.action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)

    def _obs(self):
        return np.array([self.prices[self.t] / self.prices[0] - 1.0, self.pos / self.shares], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        rets = self.np_random.normal(0.0, 0.01, self.n_steps + 1)
        self.prices = 50.0 * np.exp(np.cumsum(rets))
        self.t = 0
        self.pos = 0.0
        self.cash = self.initial_cash
        self.peak = self.initial_cash
        self.last_trade_t = 0
        return self._obs(), {"equity": self.initial_cash, "tiers": self.tiers}

    def step(self, action):
        target = (int(action) - 1) * self.shares
        prev_equity = self.cash + self.pos * self.prices[self.t]
        self.t += 1
        px = float(self.prices[self.t])
        q = target - self.pos
        notional = abs(q) * px
        spread = self.half_spread * notional
        impact = self.impact_per_share * abs(q) * notional
        commission = self.commission * notional
        cost = spread + impact + commission
        self.cash -= q * px + cost
        self.pos = target
        equity = self.cash + self.pos * px
        self.peak = max(self.peak, equity)
        stale = bool(self.stale_every and self.t % self.stale_every == 0)
        if q != 0:
            self.last_trade_t = self.t
        step_pnl = equity - prev_equity
        info = {
            "equity": equity, "cash": self.cash, "positions": np.array([self.pos]),
            "exposure": abs(self.pos) * px / equity, "drawdown": 1.0 - equity / self.peak,
            "step_pnl": step_pnl, "traded_notional": notional,
            "traded_notional_by_symbol": {"X": notional},
            "traded_notional_by_tier": {"liquid": 0.0, "mid": 0.0, "illiquid": 0.0} | {self.tier: notional},
            "costs": {"spread": spread, "impact": impact, "commission": commission},
            "costs_by_tier": {"liquid": 0.0, "mid": 0.0, "illiquid": 0.0} | {self.tier: cost},
            "participation": abs(q) / 1e6, "adv_participation": notional / 5e7,
            "unfilled_notional": 0.0, "stale_decision": stale, "stale_share": float(stale),
            "secs_since_trade": 300.0 * (self.t - self.last_trade_t), "n_fills": int(q != 0),
            "session": "2025-01-02", "tiers": self.tiers,
        }
        reward = self.reward_scale * step_pnl / self.initial_cash
        terminated = self.t >= self.n_steps
        return self._obs(), reward, terminated, False, info
