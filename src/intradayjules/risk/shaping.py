"""Reward shaping that makes risk change what the agent learns (a ``gymnasium.Wrapper``).

The wrapped env's reward is ``reward_scale * step_pnl / initial_cash`` (docs/dev/contracts.md), already
net of every cost once. The wrapper subtracts, in the same units (``k = reward_scale``)::

    penalty = k * ( drawdown_penalty * max(0, dd_t - dd_{t-1})          # drawdown growth (fraction)
                  + ulcer_penalty    * dd_t ** 2                         # this step's share of the
                                                                         #   ulcer index's mean square
                  + (impact_penalty * impact_usd_t
                     + (illiquid_penalty_multiplier - 1) * illiquid_cost_usd_t
                     + illiquid_penalty_multiplier * illiquid_unfilled_cost_usd_t) / initial_cash )
                                                    # last term: basis "ordered" only (below)

``dd_t`` is the ``RiskTracker`` drawdown against the episode's running peak, ``impact_usd_t`` this step's
market-impact cost and ``illiquid_cost_usd_t`` this step's total cost (spread + impact + commission) of
fills in illiquid names. Since the env already charged that cost once, illiquid trades cost
``illiquid_penalty_multiplier`` (``m``) times their cost *in the reward*.

The per-step logic lives in ``SlotShaper`` (one per episode stream); ``RiskShapingWrapper`` applies one to
a Gymnasium env and ``risk.vec_shaping.VecRiskShaping`` one per slot of an SB3 ``VecEnv``, so both give
the same rewards on the same steps (tested).

The accounting is never touched: equity, cash, ``step_pnl`` and every other ``info`` field are passed
through unchanged (the same dict object); the last step's penalty terms are on ``wrapper.last_penalty``.
With the ``off`` profile every coefficient is 0 and the multiplier 1, so the reward is the env's reward
exactly.

Liquidity-aware basis (``illiquid_penalty_basis``, default ``ordered``): in an illiquid name the
participation cap (10 % of the fill bar's volume) and zero-volume bars leave most of an order unfilled,
so a penalty on *filled* cost alone barely registers although the agent asked for a large trade. With
``ordered`` the illiquid term also charges, for every illiquid order of this step, ``m *
unfilled_cost_usd``: the cost the unfilled part *would* have paid, priced with the env's own market
model (``market.kernels.fill_one``) as if the whole order had filled at the fill bar's open
(``must_complete``), minus the cost of the part that did fill (sqrt impact is concave, so this is the
marginal cost of the rest), so the reward charges an illiquid order ``m`` times the cost of the whole
order. The term is on only when ``m > 1`` (``m = 1``, e.g. the ``off`` profile: no liquidity penalty at
all, the reward is the env's). An order that fills in full adds nothing, so the two bases agree whenever
nothing is left unfilled (and always under the ``flat`` model). It needs the project's simulator (``TradingEnv``
or ``SessionVecEnv``: the step's per-symbol order, fill and fill price in ``sim.last_out``, which both
info levels leave there, and the episode's half-spread, daily vol and ADV); on other envs (no ``sim``)
the unfilled term is 0. Under ``market.unfilled: carry`` a
working remainder is charged each bar it stays unfilled. ``filled`` is the plain definition above.

Action masking (``mask_illiquid``, off by default): an action that would trade an illiquid name is
replaced before it reaches the env by a fallback action, and ``masked_actions`` counts the replacements.
DQN has no native action masks, so replacement is the mechanism; ``action_masks()`` also returns the
boolean mask for mask-aware algorithms. Built in for the env's two layouts (env/simulator.py), using the
episode's tiers from ``info['tiers']`` of ``reset`` (or ``env.unwrapped.tiers``), constant in an episode:

* single (``Discrete(3)``, one symbol; 0 short, 1 flat, 2 long targets): in an episode whose symbol is
  illiquid, actions 0 and 2 become 1 (flat). The position starts flat, so no illiquid trade happens.
* multi (``Discrete(1 + 3K)``; 0 no-op, ``1 + 3k + j`` sets symbol k's target to j - 1): every action on
  an illiquid symbol k becomes 0 (no-op), so illiquid positions are never opened.

Other layouts pass ``illiquid_action(action) -> bool`` and ``fallback_action(action) -> action``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from ..config import RiskConfig
from ..env.kernel import R_FILLED, R_FPRICE, R_ORDER
from ..market.kernels import fill_one
from .metrics import RiskTracker

SINGLE_FLAT = 1  # single-asset layout: target flat
MULTI_NOOP = 0  # multi-asset layout: no-op


class SlotShaper:
    """The shaping of one episode stream (one env, or one slot of a vectorised env): the risk tracker,
    the illiquid mask and the penalty of each step. ``RiskShapingWrapper`` holds one;
    ``risk.vec_shaping.VecRiskShaping`` one per slot. See the module docstring for the formula."""

    def __init__(self, risk: RiskConfig | None, *, initial_cash: float, reward_scale: float = 1.0,
                 illiquid_action: Callable[[Any], bool] | None = None,
                 fallback_action: Callable[[Any], Any] | None = None) -> None:
        if initial_cash <= 0:
            raise ValueError(f"initial_cash must be > 0 (got {initial_cash})")
        self.risk = risk or RiskConfig()
        r = self.risk
        self.tracker = RiskTracker(r.ulcer_window)
        self._k = float(reward_scale)
        self._dd = r.drawdown_penalty
        self._ul = r.ulcer_penalty
        self._imp = r.impact_penalty / initial_cash
        self._ill = (r.illiquid_penalty_multiplier - 1.0) / initial_cash
        self.initial_cash = float(initial_cash)
        self.last_penalty: dict[str, float] = {}
        self.masked_actions = 0
        self.tiers: tuple[str, ...] | None = None
        self.mask = bool(r.mask_illiquid)
        if self.mask and (illiquid_action is None) != (fallback_action is None):
            raise ValueError("give both illiquid_action and fallback_action, or neither (built-in layouts)")
        self._ordered = r.illiquid_penalty_basis == "ordered" and r.illiquid_penalty_multiplier > 1
        self._m = float(r.illiquid_penalty_multiplier)
        self._illiquid_action = illiquid_action
        self._fallback_action = fallback_action
        self._blocked: list[bool] = []
        self._fallback_builtin: Any = SINGLE_FLAT
        self._ill_k: list[int] = []

    # --------------------------------------------------------------------------------- episodes
    def start(self, tiers, equity: float | None, action_space=None) -> None:
        """A new episode with these tiers (per symbol) and starting equity (None: ``initial_cash``)."""
        self.tiers = tuple(tiers) if tiers is not None else None
        self._ill_k = [k for k, t in enumerate(self.tiers or ()) if t == "illiquid"]
        if self.mask and self._illiquid_action is None:
            self._builtin_mask(action_space)
        self.tracker.start_episode(float(equity) if equity is not None else self.initial_cash)
        self.last_penalty = {}

    # --------------------------------------------------------------------------------- masking
    def _builtin_mask(self, action_space) -> None:
        """Per-action 'trades an illiquid name' flags and the fallback, for the env's layouts."""
        if self.tiers is None:
            raise RuntimeError("mask_illiquid: the episode's tiers are unknown; the env must put 'tiers' "
                               "in the reset info or expose env.unwrapped.tiers")
        n, k = getattr(action_space, "n", None), len(self.tiers)
        ill = [t == "illiquid" for t in self.tiers]
        if n == 3 and k == 1:
            self._blocked = [ill[0] and a != SINGLE_FLAT for a in range(3)]
            self._fallback_builtin = SINGLE_FLAT
        elif n is not None and n == 1 + 3 * k:
            self._blocked = [False] + [ill[(a - 1) // 3] for a in range(1, n)]
            self._fallback_builtin = MULTI_NOOP
        else:
            raise ValueError(f"mask_illiquid: no built-in layout for {action_space} with {k} symbols; "
                             "pass illiquid_action and fallback_action")

    def is_illiquid(self, action: Any) -> bool:
        if self._illiquid_action is not None:
            return bool(self._illiquid_action(action))
        return self._blocked[int(action)]

    def act(self, action: Any) -> Any:
        """The action the env receives: ``action``, or the fallback when masking replaces it."""
        if self.mask and self.is_illiquid(action):
            self.masked_actions += 1
            return self._fallback_action(action) if self._fallback_action is not None else self._fallback_builtin
        return action

    def action_masks(self, n: int) -> list[bool]:
        if not self.mask:
            return [True] * n
        if self._illiquid_action is None and not self._blocked:
            raise RuntimeError("action_masks: call reset() first (the mask depends on the episode's tiers)")
        return [not self.is_illiquid(a) for a in range(n)]

    # --------------------------------------------------------------------------------- penalty
    def penalty(self, info, sim=None, slot: int = 0, episode=None) -> float:
        """Fold this step's ``info`` into the tracker and return the penalty (reward units); ``sim``,
        ``slot``, ``episode``: the project simulator, the slot and the episode the step ran in (default:
        the slot's current episode); the ordered basis needs them."""
        t = self.tracker
        t.update(info)
        k = self._k
        p_dd = k * self._dd * t.drawdown_increase
        p_ul = k * self._ul * t.drawdown * t.drawdown
        p_imp = k * self._imp * t.step_impact_cost
        p_ill = k * self._ill * t.step_illiquid_cost
        p_unf = 0.0
        if self._ordered and self._ill_k and sim is not None:
            p_unf = k * self._m * self.unfilled_illiquid_cost(sim, slot, episode) / self.initial_cash
        penalty = p_dd + p_ul + p_imp + p_ill + p_unf
        self.last_penalty = {"drawdown": p_dd, "ulcer": p_ul, "impact": p_imp, "illiquid": p_ill,
                             "illiquid_unfilled": p_unf, "total": penalty}
        return penalty

    def unfilled_illiquid_cost(self, sim, slot: int = 0, episode=None) -> float:
        """USD: what the unfilled part of the last step's illiquid orders in ``slot`` would have cost
        (spread + impact + commission of the whole order filled in full at the fill bar's open, minus
        the cost of the part that filled), from the simulator's per-symbol step output and the
        episode's half-spread, daily vol and ADV."""
        ep = episode if episode is not None else sim.episodes[slot]
        params = sim.model.params
        out = sim.last_out
        order, fill, price = out[R_ORDER, slot], out[R_FILLED, slot], out[R_FPRICE, slot]
        total = 0.0
        for k in self._ill_k:
            q = float(order[k])
            f = float(fill[k])
            if q == 0.0 or f == q:
                continue
            total += _marginal_cost(q, f, float(price[k]), float(ep.half_spread_bps[k]), float(ep.sigma_daily[k]),
                                    float(ep.adv_usd[k]), params)
        return total


class RiskShapingWrapper(gym.Wrapper):
    """Subtract risk penalties from the reward; optionally mask illiquid trades. See module docstring."""

    def __init__(
        self,
        env: gym.Env,
        risk: RiskConfig | None = None,
        *,
        initial_cash: float,
        reward_scale: float = 1.0,
        illiquid_action: Callable[[Any], bool] | None = None,
        fallback_action: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(env)
        self.shaper = SlotShaper(risk, initial_cash=initial_cash, reward_scale=reward_scale,
                                 illiquid_action=illiquid_action, fallback_action=fallback_action)

    # the shaper's state, under the names this wrapper always had
    risk = property(lambda self: self.shaper.risk)
    tracker = property(lambda self: self.shaper.tracker)
    initial_cash = property(lambda self: self.shaper.initial_cash)
    last_penalty = property(lambda self: self.shaper.last_penalty)
    masked_actions = property(lambda self: self.shaper.masked_actions)
    tiers = property(lambda self: self.shaper.tiers)
    mask = property(lambda self: self.shaper.mask)

    def action_masks(self) -> list[bool]:
        """For ``Discrete`` action spaces: True where an action is allowed (all True when masking is off)."""
        return self.shaper.action_masks(int(self.action_space.n))

    # ---------------------------------------------------------------------------------- gym API
    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        tiers = info.get("tiers") if isinstance(info, dict) else None
        if tiers is None:
            tiers = getattr(self.env.unwrapped, "tiers", None)
        equity = info.get("equity") if isinstance(info, dict) else None
        self.shaper.start(tiers, equity, self.action_space)
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.shaper.act(action))
        penalty = self.shaper.penalty(info, getattr(self.env.unwrapped, "sim", None))
        return obs, reward - penalty, terminated, truncated, info

    def unfilled_illiquid_cost(self, info: dict | None = None) -> float:
        """USD: ``SlotShaper.unfilled_illiquid_cost`` of the last step; 0 when the env does not expose
        its simulator (see module docstring)."""
        sim = getattr(self.env.unwrapped, "sim", None)
        if sim is None or self.tiers is None:
            return 0.0
        return self.shaper.unfilled_illiquid_cost(sim)


def _marginal_cost(qty: float, filled: float, price: float, hs: float, sig: float, adv: float, params) -> float:
    """Cost (USD) of filling ``qty`` in full at ``price`` minus the cost of the ``filled`` part, for a
    symbol with half-spread ``hs`` (bps), daily vol ``sig`` and ADV ``adv`` under the market params."""
    _, s1, i1, f1 = fill_one(qty, price, 0.0, hs, sig, adv, True, params)
    _, s0, i0, f0 = fill_one(filled, price, 0.0, hs, sig, adv, True, params)
    return max((s1 + i1 + f1) - (s0 + i0 + f0), 0.0)


def wrap_from_config(env: gym.Env, cfg: Any, **kwargs: Any) -> RiskShapingWrapper:
    """Wrap with ``cfg.risk`` and the env section's ``initial_cash`` and ``reward_scale``
    (``cfg`` an ``ExperimentConfig``)."""
    return RiskShapingWrapper(env, cfg.risk, initial_cash=cfg.env.initial_cash,
                              reward_scale=cfg.env.reward_scale, **kwargs)
