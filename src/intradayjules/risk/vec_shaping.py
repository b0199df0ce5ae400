"""``VecRiskShaping``: ``RiskShapingWrapper``'s penalties for every slot of a ``SessionVecEnv`` at once.

The same definitions as risk/shaping.py (read its docstring), computed with numpy over the N slots from
the env's step arrays (``SessionVecEnv.step_arrays``) instead of one ``RiskTracker`` per info dict::

    penalty_i = k * ( drawdown_penalty * max(0, dd_i,t - dd_i,t-1) + ulcer_penalty * dd_i,t ** 2
                    + (impact_penalty * impact_i,t + (m - 1) * illiquid_cost_i,t
                       + m * unfilled_illiquid_cost_i,t) / initial_cash )

``dd`` is the drawdown against the slot's running equity peak since its episode started (seeded with
``initial_cash``, as the wrapper seeds its tracker from the reset info's equity, so the peak is always
positive; clipped to [0, 1]); the last term only under the ``ordered`` basis with ``m > 1``, priced with the
env's market model (``SessionVecEnv.order_cost``) for the few illiquid orders left partly unfilled.
Masking (``mask_illiquid``): the wrapper's built-in layouts (single: 0/2 -> 1 in an illiquid episode;
multi: any action on an illiquid symbol -> 0), per slot; ``masked_actions`` counts replacements.
The slot-by-slot equality with the wrapper on the same sessions and actions is tested
(tests/risk/test_vec_shaping.py). Used by ``agents.sb3.make_training_vec_env``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import RiskConfig
from .shaping import MULTI_NOOP, SINGLE_FLAT


class VecRiskShaping:
    """The ``StepShaping`` hook of ``SessionVecEnv`` (env/vector.py) for a risk config. Module docstring."""

    def __init__(self, risk: RiskConfig, *, n_envs: int, n_actions: int, n_symbols: int, initial_cash: float,
                 reward_scale: float = 1.0) -> None:
        if initial_cash <= 0:
            raise ValueError(f"initial_cash must be > 0 (got {initial_cash})")
        r = risk
        self.risk = r
        self.initial_cash = float(initial_cash)
        k = float(reward_scale)
        self._c_dd, self._c_ul = k * r.drawdown_penalty, k * r.ulcer_penalty
        # the wrapper's operation order, so both give the same floats
        self._c_imp = k * (r.impact_penalty / initial_cash)
        self._c_ill = k * ((r.illiquid_penalty_multiplier - 1.0) / initial_cash)
        self._ordered = r.illiquid_penalty_basis == "ordered" and r.illiquid_penalty_multiplier > 1
        self._c_unf = k * float(r.illiquid_penalty_multiplier)
        self.mask = bool(r.mask_illiquid)
        self.n_actions, self.k = int(n_actions), int(n_symbols)
        if n_actions == 3 and n_symbols == 1:
            self._fallback = SINGLE_FLAT
        elif n_actions == 1 + 3 * n_symbols:
            self._fallback = MULTI_NOOP
        else:
            raise ValueError(f"no built-in action layout for {n_actions} actions and {n_symbols} symbols")
        self.peak = np.full(n_envs, self.initial_cash)
        self.drawdown = np.zeros(n_envs)
        self.illiquid = np.zeros((n_envs, n_symbols), bool)  # per slot and symbol, for the current episode
        self.blocked = np.zeros((n_envs, n_actions), bool)  # masking: action trades an illiquid name
        self.masked_actions = 0
        self._rows = np.arange(n_envs)

    def start(self, i: int, tiers: tuple[str, ...]) -> None:
        self.peak[i] = self.initial_cash
        self.drawdown[i] = 0.0
        ill = np.array([t == "illiquid" for t in tiers], bool)
        self.illiquid[i] = ill
        if self.mask:
            if self._fallback == SINGLE_FLAT:
                self.blocked[i] = [bool(ill[0]) and a != SINGLE_FLAT for a in range(3)]
            else:
                self.blocked[i, 0] = False
                self.blocked[i, 1:] = np.repeat(ill, 3)

    def actions(self, actions: np.ndarray) -> np.ndarray:
        if not self.mask:
            return actions
        hit = self.blocked[self._rows, actions]
        if hit.any():
            self.masked_actions += int(hit.sum())
            actions = np.where(hit, self._fallback, actions)
        return actions

    def penalties(self, env: Any) -> np.ndarray:
        a = env.step_arrays()
        eq = a["equity"]
        peak = np.maximum(self.peak, eq, out=self.peak)  # >= initial_cash > 0: the wrapper's dd = 1 branch never applies
        dd = np.minimum(np.maximum(1.0 - eq / peak, 0.0), 1.0)
        inc = np.maximum(dd - self.drawdown, 0.0)
        self.drawdown = dd
        pen = self._c_dd * inc + self._c_ul * dd * dd + self._c_imp * a["impact"] + self._c_ill * a["illiquid_cost"]
        if self._ordered:
            order, fill = a["order_qty"], a["fill_qty"]
            open_ = self.illiquid & (order != 0.0) & (fill != order)
            if open_.any():
                price = a["fill_price"]
                unfilled = np.zeros(len(pen))
                for i, k in zip(*np.nonzero(open_)):
                    q, f, p = float(order[i, k]), float(fill[i, k]), float(price[i, k])
                    unfilled[i] += max(env.order_cost(int(i), int(k), q, p) - env.order_cost(int(i), int(k), f, p),
                                       0.0)
                pen = pen + self._c_unf * unfilled / self.initial_cash
        return pen


def vec_shaping_from_config(cfg: Any, n_envs: int, n_actions: int, n_symbols: int) -> VecRiskShaping:
    """``VecRiskShaping`` with ``cfg.risk`` and the env section's ``initial_cash`` and ``reward_scale``."""
    return VecRiskShaping(cfg.risk, n_envs=n_envs, n_actions=n_actions, n_symbols=n_symbols,
                          initial_cash=cfg.env.initial_cash, reward_scale=cfg.env.reward_scale)
