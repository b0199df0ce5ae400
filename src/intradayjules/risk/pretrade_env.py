"""The pre-trade limits inside the environment (``env.pretrade_limits: true``), so that a backtest and
the paper loop (``live/loop.py``) trade under the same rules and agree to the cent.

``PreTradeEnv(env, limits)`` wraps a ``TradingEnv``. Before each step, in Python, it does what the paper
loop does at the same bar:

1. the decision bar's closes, volumes, ADV and tiers go into a ``RiskState`` (time: the bar's close);
2. the action becomes orders by the env's own rule (``env.actions.decide``: targets, gross limit);
3. ``state.mark(equity)``: at a drawdown of ``limits.daily_drawdown`` from the day's peak the kill switch
   turns on; that step places no order, and every position is closed at the **next** bar's close, which
   ends the episode (``end_reason`` ``drawdown``). (A live loop cannot trade at the close of the bar that
   showed the drawdown, which is when the env's own stop flattens; with limits on, that stop is
   replaced by this one, at ``min(risk.daily_drawdown_limit, env.max_daily_drawdown)``.)
4. every order goes through ``PreTradeChecker.check`` in symbol order (accepted ones are recorded for
   the turnover limits before the next check); the step kernel then trades the accepted quantities.

When nothing is cut the kernel runs the agent's action unchanged. When an order is cut, the wrapper
sets the targets to ``position + accepted`` and runs the kernel's carry path (``q = target - position``
for every symbol) with a no-op action, then restores the targets the env's rule implies: a symbol whose
order was refused entirely keeps its old target (as with the gross limit); one that was cut counts as
changed, and its unfilled rest is cancelled (or carried and checked again, ``market.unfilled =
carry``). Fills, costs, flattening and marking stay in the kernel: nothing about how a trade is priced
is repeated here.

``info["pretrade"]``: the cut orders of the step, ``(symbol, requested, accepted, rules)``;
``info["killed"]``: whether the kill switch was on at the decision. Only ``TradingEnv`` (one slot) is
wrapped; training on vectorised envs does not apply the limits.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import gymnasium as gym
import numpy as np

from ..config import ExperimentConfig
from ..env.actions import decide, noop_action
from ..env.kernel import E_CARRY, E_DD
from ..market import Order
from .pretrade import Decision, PreTradeChecker, PreTradeLimits, RiskState


log = logging.getLogger(__name__)


class _Quiet:
    """The checker's rejection log at DEBUG: a backtest reports cuts in ``info["pretrade"]``."""

    def warning(self, *args: Any, **kwargs: Any) -> None:
        log.debug(*args, **kwargs)


def pretrade_limits_for(cfg: ExperimentConfig, bar_seconds: float = 300.0, **overrides) -> PreTradeLimits:
    """The limits a config implies (``PreTradeLimits.from_config``) with the kill switch at
    ``min(risk.daily_drawdown_limit, env.max_daily_drawdown)``: the one set of limits the env (with
    ``env.pretrade_limits``) and the paper loop use."""
    vals = {"daily_drawdown": min(cfg.risk.daily_drawdown_limit, cfg.env.max_daily_drawdown)}
    vals.update(overrides)
    return PreTradeLimits.from_config(cfg.risk, cfg.env, cfg.market, bar_seconds=bar_seconds, **vals)


def panel_bar_seconds(panel) -> float:
    """The bar length of a panel's grid: the most common spacing within a session (seconds)."""
    t = np.asarray(panel.times, dtype=np.int64)
    same = np.ones(len(t), bool)
    same[np.asarray(panel.starts[:-1], dtype=np.int64)] = False
    d = np.diff(t)[same[1:]]
    d = d[d > 0]
    if len(d) == 0:
        raise ValueError("cannot tell the bar length: no session has two bars")
    vals, counts = np.unique(d, return_counts=True)
    return float(vals[np.argmax(counts)]) / 1e9


class PreTradeEnv(gym.Wrapper):
    """A ``TradingEnv`` whose orders pass the pre-trade checks first (module docstring)."""

    def __init__(self, env: gym.Env, limits: PreTradeLimits, logger: Any = None):
        super().__init__(env)
        inner = env.unwrapped
        if not hasattr(inner, "sim") or inner.sim.n != 1:
            raise ValueError("PreTradeEnv wraps a TradingEnv (one slot); vectorised envs are not supported")
        if getattr(inner.panel, "times", None) is None:
            raise ValueError("PreTradeEnv needs the panel's bar times (build_panel records them)")
        self.limits = limits
        self.checker = PreTradeChecker(limits, logger or _Quiet())
        self.sim = inner.sim
        self.multi = inner.cfg.mode == "multi"
        self.carry = inner.model.cfg.unfilled == "carry"
        self.size = float(inner.cfg.position_size)
        self.max_gross = float(inner.cfg.max_gross_exposure)
        self.bar_ns = int(round(limits.bar_seconds * 1e9))
        self.sim._eparams[E_DD] = math.inf  # the kill switch below replaces the kernel's own stop
        self.state = RiskState()
        self._times = np.zeros(0, np.int64)
        self._symbols: tuple[str, ...] = ()

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        inner = self.env.unwrapped
        ep = self.sim.episodes[0]
        panel = inner.panel
        i = int(np.flatnonzero(panel.sessions == np.datetime64(ep.session, "ns"))[0])
        r0 = int(panel.starts[i]) + int(self.sim.offset[0])
        self._times = np.asarray(panel.times[r0:int(panel.starts[i + 1])], dtype=np.int64)
        self._symbols = tuple(ep.symbols)
        self._adv = [float(x) for x in ep.adv_usd]
        self._tiers = list(ep.tiers)
        self.state = RiskState()
        self.state.start_day(float(self.sim.cash[0]), t=(int(self._times[0]) + self.bar_ns) / 1e9)
        return obs, info

    def step(self, action):
        sim, st = self.sim, self.state
        t = int(sim.t[0])
        now = (int(self._times[t]) + self.bar_ns) / 1e9
        close, vol, pos = sim.close[0, t], sim.volume[0, t], sim.pos[0]
        for k, s in enumerate(self._symbols):
            st.on_bar(s, float(close[k]), float(vol[k]), now, self._adv[k], self._tiers[k])
        st.positions = {s: float(pos[k]) for k, s in enumerate(self._symbols) if pos[k] != 0}
        unit, target = sim.unit[0].tolist(), sim.target[0].tolist()
        intent = decide(int(action), unit, target, pos.tolist(), close.tolist(), float(sim.cash[0]),
                        multi=self.multi, position_size=self.size, max_gross_exposure=self.max_gross,
                        carry=self.carry, tradable=(t < sim.exit_bar[0]).tolist())
        if st.mark(intent.eq0, self.limits, t=now):
            return self._run(noop_action(unit, self.multi), pos.tolist(), stop=True, info_extra={
                "pretrade": [], "killed": True})
        accepted = list(intent.orders)
        cut: list[Decision] = []
        for k, q in enumerate(intent.orders):
            if q == 0:
                continue
            d = self.checker.check(Order(self._symbols[k], q), st)
            accepted[k] = d.accepted
            if d.accepted:
                st.record(d)
            if d.rejections:
                cut.append(d)
        extra = {"pretrade": [(d.symbol, d.requested, d.accepted, d.rules) for d in cut], "killed": False}
        if not cut:
            obs, reward, term, trunc, info = self.env.step(action)
            info.update(extra)
            return obs, reward, term, trunc, info
        p = pos.tolist()
        obs, reward, term, trunc, info = self._run(noop_action(unit, self.multi),
                                                   [p[k] + accepted[k] for k in range(len(p))], False, extra)
        info["limit_hit"] = info["limit_hit"] or intent.limit_hit
        if not term:  # the env's rule for what the targets are now (module docstring)
            for k in range(len(p)):
                refused = intent.orders[k] != 0 and accepted[k] == 0
                kept = not (intent.changed[k] and refused)
                if intent.changed[k] and not refused:
                    sim.unit[0, k] = intent.req[k]
                if self.carry:
                    sim.target[0, k] = intent.new_target[k] if kept else target[k]
                else:
                    sim.target[0, k] = sim.pos[0, k]
        return obs, reward, term, trunc, info

    def _run(self, action: int, targets: list[float], stop: bool, info_extra: dict):
        """One kernel step on the carry path with ``targets`` (``stop``: and the drawdown stop forced)."""
        sim = self.sim
        ep = sim._eparams
        carry, dd = ep[E_CARRY], ep[E_DD]
        sim.target[0, :] = targets
        ep[E_CARRY] = 1.0
        if stop:
            ep[E_DD] = -math.inf
        try:
            obs, reward, term, trunc, info = self.env.step(action)
        finally:
            ep[E_CARRY], ep[E_DD] = carry, dd
        info.update(info_extra)
        if stop:
            info["kill_detail"] = self.state.kill_detail
        return obs, reward, term, trunc, info


def with_pretrade_limits(env: gym.Env, cfg: ExperimentConfig) -> gym.Env:
    """``env`` wrapped in :class:`PreTradeEnv` when ``cfg.env.pretrade_limits`` is on, else ``env``."""
    if not cfg.env.pretrade_limits:
        return env
    return PreTradeEnv(env, pretrade_limits_for(cfg, panel_bar_seconds(env.unwrapped.panel)))
