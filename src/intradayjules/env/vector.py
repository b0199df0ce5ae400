"""``SessionVecEnv``: an SB3 ``VecEnv`` over a batch of episodes, stepped together in numpy.

Slot i runs its own sequence of sessions (drawn like ``TradingEnv`` with a generator seeded from
``seed + i``); a finished slot stores ``info['terminal_observation']`` and starts its next session at
once (SB3's auto-reset convention). Same simulator, market model and info keys as ``TradingEnv``, so a
slot's trajectory equals the single env's on the same session and actions (tested). On an auto-reset
``reset_infos[i]`` is the new episode's reset info (as SB3's ``DummyVecEnv`` does). ``info``: ``full``
(default), ``train`` or ``minimal`` step infos, as for ``TradingEnv``; ``membership`` as for ``TradingEnv``.

Training (``agents/sb3.py``) gives SB3 this env itself, with ``info="minimal"`` and a ``shaping`` hook
(``StepShaping``: ``risk/vec_shaping.py`` implements it): the hook sees each slot's episode start
(``start(i, tiers)``), may replace the actions before they reach the simulator (``actions``: illiquid
masking) and returns per-slot penalties (``penalties(env)``) computed from this step's arrays
(``step_arrays()``, ``order_cost``) *before* a finished slot is refilled, so the reward of an episode's
last step is penalised with that episode's data. The reward is ``float32(reward - penalty)`` computed in
float64, as SB3's ``DummyVecEnv`` stores the scalar wrapper's reward.
"""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from ..config import EnvConfig, MarketConfig
from ..market import MarketModel
from .episodes import Panel
from .kernel import R_FILLED, R_FPRICE, R_ORDER, S_CT2, S_EQ1, S_IMPACT, S_REWARD
from .membership import Membership
from .simulator import INFO_LEVELS, Simulator
from .trading_env import SessionPicker, episode_start, session_lookup


class StepShaping(Protocol):
    """A per-step reward adjustment applied inside ``SessionVecEnv`` (module docstring)."""

    def start(self, i: int, tiers: tuple[str, ...]) -> None: ...

    def actions(self, actions: np.ndarray) -> np.ndarray: ...

    def penalties(self, env: "SessionVecEnv") -> np.ndarray: ...


class SessionVecEnv(VecEnv):
    def __init__(self, panel: Panel, session_indices, n_envs: int, env_cfg: EnvConfig | None = None,
                 market_cfg: MarketConfig | None = None, lookback: int = 5, sampling: str = "random",
                 seed: int = 0, info: str = "full", shaping: StepShaping | None = None,
                 membership: Membership | None = None):
        if info not in INFO_LEVELS:
            raise ValueError(f"info must be one of {INFO_LEVELS}, got {info!r}")
        self.info_level = info
        self.shaping = shaping
        self.cfg = env_cfg or EnvConfig()
        self.panel = panel
        self.membership = membership.check(panel) if membership is not None else None
        self.symbols = panel.symbols
        self.lookback = int(lookback)
        self.model = MarketModel(market_cfg)
        K, F = len(panel.symbols), len(panel.feature_names)
        if self.cfg.mode == "single" and K != 1:
            raise ValueError(f"single mode trades one symbol, the panel has {K}: {list(panel.symbols)}")
        self.sim = Simulator(n_envs, K, self.lookback * K * F, panel.max_bars, self.model, self.cfg,
                             self.cfg.mode)
        low, high = self.sim.bounds(self.cfg.obs_clip)
        self.render_mode = None
        super().__init__(n_envs, gym.spaces.Box(low, high, dtype=np.float32),
                         gym.spaces.Discrete(self.sim.n_actions))
        self.indices = np.asarray(session_indices)
        self.sampling = sampling
        self._base_seed = seed
        self._make_pickers(seed)
        self._actions = np.zeros(n_envs, np.int64)

    def _make_pickers(self, seed: int | None) -> None:
        n = self.num_envs
        self.pickers = [SessionPicker(self.indices, self.sampling) for _ in range(n)]
        if self.sampling == "sequential":  # slots start at spread-out positions in date order
            for i, p in enumerate(self.pickers):
                p._next = (i * len(self.indices)) // n
        ss = np.random.SeedSequence(seed)
        self.rngs = [np.random.default_rng(s) for s in ss.spawn(n)]

    def _load(self, i: int, session=None) -> None:
        if session is not None:
            j = session_lookup(self.panel, self.indices, session)
        else:
            j = self.pickers[i].pick(self.rngs[i])
        ep = self.panel.episode(j, self.lookback)
        start = episode_start(ep, self.cfg.episode_bars, self.sampling, self.rngs[i])
        exits = self.membership.exits(j) if self.membership is not None else None
        self.sim.load(i, ep, start, self.cfg.episode_bars, exits)
        if self.shaping is not None:
            self.shaping.start(i, tuple(ep.tiers))
        self.reset_infos[i] = {"session": ep.session, "symbols": ep.symbols, "tiers": ep.tiers,
                               "equity": self.cfg.initial_cash, "n_bars": int(self.sim.n_bars[i]),
                               "start_bar": start}

    def reset(self):
        if self._seeds[0] is not None:
            self._make_pickers(self._seeds[0])
        self._reset_seeds()
        for i in range(self.num_envs):
            opt = self._options[i] if self._options else {}
            self._load(i, (opt or {}).get("session"))
        self._reset_options()
        return self.sim.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.ascontiguousarray(actions, dtype=np.int64).reshape(self.num_envs)
        if self.shaping is not None:
            self._actions = np.ascontiguousarray(self.shaping.actions(self._actions), dtype=np.int64)

    def step_wait(self):
        sim = self.sim
        obs = sim._advance(self._actions)
        if self.shaping is None:
            reward = sim._scal[:, S_REWARD].astype(np.float32)
        else:
            reward = (sim._scal[:, S_REWARD] - self.shaping.penalties(self)).astype(np.float32)
        done = sim.finished.copy()
        infos = sim.infos(self.info_level)
        if done.any():
            for i in np.flatnonzero(done):
                infos[i]["terminal_observation"] = obs[i].copy()
                self._load(int(i))
            obs = sim.observe()
        return obs, reward, done, infos

    def step_arrays(self) -> dict[str, np.ndarray]:
        """The last step's figures per slot as arrays (views, valid until the next step; the same values as
        the ``full`` info's fields): ``equity``, ``impact`` (USD, this step's market impact), ``illiquid_cost``
        (USD, this step's cost of fills in illiquid names) of shape (N,); ``order_qty``, ``fill_qty``,
        ``fill_price`` of shape (N, K)."""
        s, out = self.sim._scal, self.sim.last_out
        return {"equity": s[:, S_EQ1], "impact": s[:, S_IMPACT], "illiquid_cost": s[:, S_CT2],
                "order_qty": out[R_ORDER], "fill_qty": out[R_FILLED], "fill_price": out[R_FPRICE]}

    def order_cost(self, i: int, k: int, qty: float, price: float) -> float:
        """``TradingEnv.order_cost`` for slot ``i``'s current session."""
        return self.sim.order_cost(i, k, qty, price)

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._get_indices(indices)]
