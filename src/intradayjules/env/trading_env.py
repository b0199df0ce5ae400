"""``TradingEnv``: the Gymnasium environment, single-asset (original) or multi-asset.

Mechanics (fills, costs, flatten, drawdown stop, action semantics) are documented in ``simulator.py``
and docs/environment.md. Observation (float32, bounds in ``observation_space``): the ``lookback`` x K x F
feature window (z-scored, clipped to +-obs_clip), position value / equity per symbol, gross exposure,
cash / equity, fraction of the session elapsed. Reward: ``reward_scale * step_pnl / initial_cash``.

Sessions: ``reset(seed=...)`` draws the next session from this env's split (``random``: uniform with
the env's seeded generator; ``sequential``: in date order, cycling); ``options={"session": "YYYY-MM-DD"}``
picks one. With ``env.episode_bars = N`` an episode is N decisions of the session, starting at a uniform
bar (random sampling), at the open (sequential) or at ``options["start_bar"]``; it ends like a session,
flattened at its last bar's close.

Step info (``info=``, also the attribute ``info_level``): ``full`` (default; the contract in
docs/dev/contracts.md, what evaluation and the backtester read), ``train`` (``simulator.TRAIN_INFO_KEYS``
only, same values: what reward shaping, the risk tracker and SB3 read while learning; ~3x cheaper to
build) or ``minimal`` (empty except on the step that ends the episode; ``Simulator.infos``).
``full_info()`` builds the full info of the last step on demand in any mode.

Membership (``membership=``, ``env/membership.py``): symbols outside the point-in-time universe on a
session, or past an intraday exit (delisting), cannot be held; their orders are refused
(``info['refused']``) and a held position is closed at the next bar's open with the exit return.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd

from ..config import EnvConfig, MarketConfig
from ..market import MarketModel
from .episodes import Panel
from .membership import Membership
from .kernel import S_REWARD
from .simulator import INFO_LEVELS, Simulator


class SessionPicker:
    """Which session index comes next: ``random`` (uniform) or ``sequential`` (date order, cycling)."""

    def __init__(self, indices: np.ndarray, sampling: str):
        if len(indices) == 0:
            raise ValueError("no usable sessions for this split (check data.splits and the ADV warm-up)")
        self.indices = np.asarray(indices)
        self.sampling = sampling
        self._next = 0

    def restart(self) -> None:
        self._next = 0

    def pick(self, rng: np.random.Generator) -> int:
        if self.sampling == "random":
            return int(self.indices[rng.integers(len(self.indices))])
        i = int(self.indices[self._next % len(self.indices)])
        self._next += 1
        return i


def episode_start(ep, episode_bars: int | None, sampling: str, rng: np.random.Generator,
                  options: dict | None = None) -> int:
    """First bar of an episode: 0 for whole sessions; with ``episode_bars``, ``options['start_bar']``
    if given, else a uniform bar leaving ``episode_bars`` decisions (random sampling) or the open."""
    if options and options.get("start_bar") is not None:
        return int(options["start_bar"])
    if episode_bars is None or sampling != "random":
        return 0
    last = max(ep.n_bars - 1 - episode_bars, 0)
    return int(rng.integers(last + 1))


def session_lookup(panel: Panel, indices: np.ndarray, session) -> int:
    want = np.datetime64(pd.Timestamp(session).tz_localize(None).normalize().to_datetime64(), "ns")
    hit = [int(i) for i in indices if panel.sessions[i] == want]
    if not hit:
        raise ValueError(f"session {session} is not an episode of this env's split")
    return hit[0]


def reset_info(ep, cfg: EnvConfig, n_bars: int, start: int) -> dict:
    """The info ``TradingEnv.reset`` returns for episode ``ep`` loaded from bar ``start`` (``n_bars`` bars)."""
    return {"session": ep.session, "symbols": ep.symbols, "tiers": ep.tiers, "equity": cfg.initial_cash,
            "n_bars": n_bars, "start_bar": start, "session_bars": ep.n_bars, "expected_bars": ep.expected_bars,
            "partial": ep.partial}


class TradingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, panel: Panel, session_indices, env_cfg: EnvConfig | None = None,
                 market_cfg: MarketConfig | None = None, lookback: int = 5, sampling: str = "random",
                 info: str = "full", membership: Membership | None = None):
        if info not in INFO_LEVELS:
            raise ValueError(f"info must be one of {INFO_LEVELS}, got {info!r}")
        self.info_level = info
        self.cfg = env_cfg or EnvConfig()
        self.panel = panel
        self.membership = membership.check(panel) if membership is not None else None
        self.lookback = int(lookback)
        self.model = MarketModel(market_cfg)
        K, F = len(panel.symbols), len(panel.feature_names)
        mode = self.cfg.mode
        if mode == "single" and K != 1:
            raise ValueError(f"single mode trades one symbol, the panel has {K}: {list(panel.symbols)}")
        self.picker = SessionPicker(np.asarray(session_indices), sampling)
        self.sim = Simulator(1, K, self.lookback * K * F, panel.max_bars, self.model, self.cfg, mode)
        low, high = self.sim.bounds(self.cfg.obs_clip)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.sim.n_actions)
        self.symbols = panel.symbols
        self._act = np.zeros(1, np.int64)

    def session_dates(self) -> list[str]:
        """The sessions of this env's split (``YYYY-MM-DD``), in date order."""
        return [str(np.datetime_as_string(self.panel.sessions[i], unit="D")) for i in self.picker.indices]

    def order_cost(self, k: int, qty: float, price: float) -> float:
        """USD cost (half-spread + impact + commission) of filling ``qty`` shares of symbol ``k`` in full at
        ``price`` in the current session, with the market model's parameters (no participation cap)."""
        return self.sim.order_cost(0, k, qty, price)

    @property
    def session(self) -> str | None:
        ep = self.sim.episodes[0]
        return ep.session if ep is not None else None

    @property
    def episode(self):
        """The current session's ``Episode`` (bar timestamps, calendar bar count), None before a reset."""
        return self.sim.episodes[0]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.picker.restart()
        if options and options.get("session") is not None:
            i = session_lookup(self.panel, self.picker.indices, options["session"])
        else:
            i = self.picker.pick(self.np_random)
        ep = self.panel.episode(i, self.lookback)
        start = episode_start(ep, self.cfg.episode_bars, self.picker.sampling, self.np_random, options)
        exits = self.membership.exits(i) if self.membership is not None else None
        self.sim.load(0, ep, start, self.cfg.episode_bars, exits)
        return self.sim.observe()[0], reset_info(ep, self.cfg, int(self.sim.n_bars[0]), start)

    def step(self, action):
        self._act[0] = int(action)
        sim = self.sim
        obs = sim._advance(self._act)
        return obs[0], float(sim._scal[0, S_REWARD]), bool(sim.finished[0]), False, sim.infos(self.info_level)[0]

    def full_info(self) -> dict:
        """The ``full`` info of the last step (whatever ``info_level`` is)."""
        return self.sim.infos("full")[0]
