"""``VecRiskShaping``: the reward shaping of ``risk.shaping`` applied to every slot of an SB3 ``VecEnv``.

Slot i has its own ``SlotShaper`` (risk tracker, illiquid mask, penalty), started from
``venv.reset_infos[i]`` (tiers, starting equity) at ``reset()`` and again after each auto-reset, so slot i
gets exactly the rewards ``RiskShapingWrapper`` gives the single env on the same episode and actions
(tested): ``reward_i = env reward_i - penalty_i``, computed in float64 and returned as float32, as SB3's
``DummyVecEnv`` stores a wrapped env's reward. Infos pass through untouched.

The ordered illiquid basis needs the project's simulator (``venv.sim``, as in ``SessionVecEnv``): the
step's per-symbol order and fill (``sim.last_out``) and the stepped episode's half-spread, daily vol and
ADV (taken from the episode that was in the slot during the step, since an auto-reset loads the next
one before ``step_wait`` returns). Without a simulator the unfilled term is 0, as for the wrapper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvWrapper

from ..config import RiskConfig
from .shaping import SlotShaper


class VecRiskShaping(VecEnvWrapper):
    def __init__(self, venv: VecEnv, risk: RiskConfig | None = None, *, initial_cash: float,
                 reward_scale: float = 1.0) -> None:
        super().__init__(venv)
        self.shapers = [SlotShaper(risk, initial_cash=initial_cash, reward_scale=reward_scale)
                        for _ in range(venv.num_envs)]
        self.mask = self.shapers[0].mask
        self._sim = getattr(venv, "sim", None)
        self._stepped: list = []

    @property
    def masked_actions(self) -> int:
        return sum(s.masked_actions for s in self.shapers)

    def _start(self, i: int) -> None:
        ri = self.venv.reset_infos[i] if self.venv.reset_infos else {}
        self.shapers[i].start(ri.get("tiers"), ri.get("equity"), self.action_space)

    def reset(self) -> Any:
        obs = self.venv.reset()
        for i in range(self.num_envs):
            self._start(i)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        if self.mask:
            actions = np.array([s.act(a) for s, a in zip(self.shapers, actions)], dtype=np.asarray(actions).dtype)
        if self._sim is not None:
            self._stepped = list(self._sim.episodes)  # the episodes this step runs in
        self.venv.step_async(actions)

    def step_wait(self):
        obs, reward, done, infos = self.venv.step_wait()
        sim = self._sim
        r = sim.rewards() if sim is not None else np.asarray(reward, dtype=np.float64)
        for i, shaper in enumerate(self.shapers):
            r[i] -= shaper.penalty(infos[i], sim, i, self._stepped[i] if sim is not None else None)
            if done[i]:
                self._start(i)
        return obs, r.astype(np.float32), done, infos
