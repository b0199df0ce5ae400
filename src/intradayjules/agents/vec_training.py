"""DQN training on the project's vectorised env: no ``DummyVecEnv``, lean infos, batched actions.

What SB3 does with a plain ``gym.Env`` (``DummyVecEnv`` of one env: a deep copy of the step info every
step, one policy call per env step) made training ~4x slower than the env allows. Here:

* ``make_training_vec_env(cfg, env_data)``: ``VecMonitor(VecRiskShaping(SessionVecEnv(info="minimal")))``:
  ``n`` episodes of the training split stepped together in one numba call; step infos are empty except
  on the step that ends an episode (``env.simulator.TRAIN_INFO_KEYS`` then: nothing in training reads
  more, and the shaping reads the simulator's arrays); the same reward shaping per slot as
  ``RiskShapingWrapper`` (``risk.vec_shaping``); SB3's episode statistics.
* ``collection_plan(train_freq, n)``: SB3 counts ``train_freq`` in ``env.step`` calls of the VecEnv
  (``n`` transitions each). The plan trains every ``f = train_freq / d`` calls with ``g = n / d``
  gradient steps (``d = gcd(train_freq, n)``), so ``g / (f * n) = 1 / train_freq``: **the same gradient
  steps per environment step** as the single env. Batch size, network, learning rate, buffer size (SB3
  splits it over the slots), target-update interval (SB3 divides it by ``n``), learning starts and
  the exploration schedule (both counted in environment steps) are unchanged.
* ``TrainingDQN``: SB3's ``DQN`` with the same update, done with less overhead:
  - exploration: one epsilon coin **per slot** (SB3's ``DQN.predict`` draws one coin for the whole
    batch, which would make the ``n`` slots explore together; per slot, each transition explores with
    probability epsilon independently, as with one env), greedy actions from one batched forward pass;
  - ``train``: the same TD target, Huber loss, gradient clipping and Adam as ``DQN.train`` (tested:
    same parameters after an update from the same batch), sampling the replay buffer with the same
    random draws, without the per-call parameter walks and tensor copies; training-mode switches are
    skipped when the network has no dropout or batch-norm (they change nothing then).
  A model saved by it is an ordinary SB3 DQN zip (``DQN.load`` reads it).
* ``training_n_envs``: up to ``TRAIN_ENVS`` slots, a divisor of the evaluation, checkpoint and run
  lengths (so they fall on the same steps as with one env), unless ``env.n_envs`` is set above 1.

The gradient step (three 64-wide layers on a 459-wide observation, batch 64) is most of what remains:
``benchmarks/dqn_throughput.py`` measures both paths.
"""

from __future__ import annotations

import math

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecMonitor

from ..config import ExperimentConfig
from ..env import make_vec_env
from ..risk.vec_shaping import VecRiskShaping

TRAIN_ENVS = 8  # slots when env.n_envs is 1 (measured: benchmarks/dqn_throughput.py)


def training_n_envs(cfg: ExperimentConfig, total_timesteps: int | None = None) -> int:
    """``env.n_envs`` when set above 1; else the largest ``n <= TRAIN_ENVS`` dividing the evaluation
    interval, the checkpoint interval and the run length, so that evaluations, checkpoints and the end
    of training fall on the same env steps as with one env (SB3 counts ``n`` steps per VecEnv step)."""
    if cfg.env.n_envs > 1:
        return cfg.env.n_envs
    grid = math.gcd(cfg.risk.eval_freq, cfg.agent.checkpoint_freq,
                    int(total_timesteps or cfg.agent.total_timesteps))
    return max(n for n in range(1, TRAIN_ENVS + 1) if grid % n == 0)


def collection_plan(train_freq: int, n_envs: int) -> tuple[int, int]:
    """``(train_freq in VecEnv steps, gradient_steps)`` giving ``1 / train_freq`` gradient steps per
    environment step with ``n_envs`` slots (module docstring)."""
    if train_freq < 1 or n_envs < 1:
        raise ValueError(f"train_freq and n_envs must be >= 1 (got {train_freq}, {n_envs})")
    d = math.gcd(train_freq, n_envs)
    return train_freq // d, n_envs // d


def make_training_vec_env(cfg: ExperimentConfig, env_data, total_timesteps: int | None = None, *,
                          n_envs: int | None = None, seed: int | None = None):
    """The training split as an SB3 ``VecEnv``: ``n_envs`` (default ``training_n_envs(cfg,
    total_timesteps)``) slots, training infos, the risk profile's shaping (unless ``off`` and no
    masking), episode statistics."""
    n = n_envs or training_n_envs(cfg, total_timesteps)
    venv = make_vec_env(cfg, None, split="train", n_envs=n, data=env_data,
                        seed=cfg.agent.seed if seed is None else seed, info="minimal")
    if cfg.risk.profile != "off" or cfg.risk.mask_illiquid:
        venv = VecRiskShaping(venv, cfg.risk, initial_cash=cfg.env.initial_cash, reward_scale=cfg.env.reward_scale)
    return VecMonitor(venv)


def dqn_kwargs(cfg: ExperimentConfig, n_envs: int) -> dict:
    """``DQN`` keyword arguments for the config's agent section on ``n_envs`` slots."""
    a = cfg.agent
    train_freq, gradient_steps = collection_plan(a.train_freq, n_envs)
    return dict(learning_rate=a.learning_rate, buffer_size=a.buffer_size, learning_starts=a.learning_starts,
                batch_size=a.batch_size, gamma=a.gamma, train_freq=train_freq, gradient_steps=gradient_steps,
                target_update_interval=a.target_update_interval, exploration_fraction=a.exploration_fraction,
                exploration_initial_eps=a.exploration_initial_eps, exploration_final_eps=a.exploration_final_eps,
                policy_kwargs={"net_arch": list(a.net_arch), "optimizer_kwargs": {"fused": True}}, seed=a.seed)


def build_training_model(cfg: ExperimentConfig, venv, device: str) -> "TrainingDQN":
    """A ``TrainingDQN`` with the config's hyperparameters on ``venv`` (``make_training_vec_env``)."""
    return TrainingDQN("MlpPolicy", venv, device=device, verbose=0, **dqn_kwargs(cfg, venv.num_envs))


class TrainingDQN(DQN):
    """SB3 ``DQN`` with per-slot exploration and a leaner ``train`` (module docstring)."""

    _mode_matters: bool | None = None
    _params: list | None = None
    _params_of = None
    _flat_views = None

    # ------------------------------------------------------------------------------ exploration
    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        if deterministic or not isinstance(observation, np.ndarray) or observation.ndim != 2 \
                or not self._plain_discrete():
            return super().predict(observation, state, episode_start, deterministic)
        self._set_mode(False)
        with th.no_grad():
            q = self.q_net(th.as_tensor(observation, device=self.device))
            action = q.argmax(dim=1).cpu().numpy()
        explore = np.random.rand(len(action)) < self.exploration_rate
        k = int(explore.sum())
        if k:
            action[explore] = self.action_space.np_random.integers(self.action_space.n, size=k)
        return action, state

    def _plain_discrete(self) -> bool:
        return hasattr(self.action_space, "n") and getattr(self.action_space, "start", 0) == 0 \
            and len(self.observation_space.shape) == 1

    def _set_mode(self, training: bool) -> None:
        if self._mode_matters is None:
            self._mode_matters = any(isinstance(m, (th.nn.modules.dropout._DropoutNd, th.nn.modules.batchnorm._NormBase))
                                     for m in self.policy.modules())
        if self._mode_matters and self.policy.training != training:
            self.policy.set_training_mode(training)

    # ---------------------------------------------------------------------------------- update
    @staticmethod
    def _q(qnet, obs):
        """``qnet(obs)`` for flat observations: the MLP's layers called as functions when it is the
        plain ``Flatten -> (Linear, ReLU)* -> Linear`` stack (same ops, no module-call overhead)."""
        layers = getattr(qnet, "_lean_layers", None)
        if layers is None:
            layers = []
            plain = isinstance(getattr(qnet, "features_extractor", None), FlattenExtractor) and \
                isinstance(getattr(qnet, "q_net", None), th.nn.Sequential)
            for m in (qnet.q_net if plain else ()):
                if isinstance(m, th.nn.Linear):
                    layers.append((m.weight, m.bias))
                elif isinstance(m, th.nn.ReLU):
                    layers.append(None)
                else:
                    plain = False
            qnet._lean_layers = layers = layers if plain else False
        if layers is False or obs.dim() != 2:
            return qnet(obs)
        x = obs
        for layer in layers:
            x = F.relu(x) if layer is None else F.linear(x, layer[0], layer[1])
        return x

    def _lean_ok(self) -> bool:
        rb = self.replay_buffer
        return type(rb) is ReplayBuffer and not rb.optimize_memory_usage and self._vec_normalize_env is None

    def _sample(self, batch_size: int):
        """``ReplayBuffer.sample`` (same random draws, same rows) without the tensor copies: row
        ``(b, e)`` of the ``(capacity, n_envs, ...)`` arrays is row ``b * n_envs + e`` of their flat view."""
        rb = self.replay_buffer
        upper = rb.buffer_size if rb.full else rb.pos
        batch_inds = np.random.randint(0, upper, size=batch_size)
        env_inds = np.random.randint(0, high=rb.n_envs, size=(batch_size,))
        flat = batch_inds * rb.n_envs + env_inds
        views = self._flat_views
        if views is None or views[0] is not rb:
            n = rb.buffer_size * rb.n_envs
            views = self._flat_views = (rb, rb.observations.reshape(n, -1), rb.actions.reshape(n, -1),
                                        rb.next_observations.reshape(n, -1), rb.dones.reshape(n),
                                        rb.timeouts.reshape(n), rb.rewards.reshape(n))
        _, obs, act, nxt, dones, timeouts, rewards = views
        dev = self.device
        return (th.from_numpy(obs.take(flat, axis=0)).to(dev), th.from_numpy(act.take(flat, axis=0)).to(dev),
                th.from_numpy(nxt.take(flat, axis=0)).to(dev),
                th.from_numpy((dones.take(flat) * (1 - timeouts.take(flat))).reshape(-1, 1)).to(dev),
                th.from_numpy(rewards.take(flat).reshape(-1, 1)).to(dev))

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if not self._lean_ok():
            return super().train(gradient_steps, batch_size)
        self._set_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        if self._params_of is not self.policy:
            self._params = [p for p in self.policy.parameters() if p.requires_grad]
            self._params_of = self.policy
        optimizer = self.policy.optimizer
        losses = []
        for _ in range(gradient_steps):
            obs, actions, next_obs, dones, rewards = self._sample(batch_size)
            with th.no_grad():
                next_q_values, _ = self._q(self.q_net_target, next_obs).max(dim=1)
                next_q_values = next_q_values.reshape(-1, 1)
                target_q_values = rewards + (1 - dones) * self.gamma * next_q_values
            current_q_values = th.gather(self._q(self.q_net, obs), dim=1, index=actions.long())
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self._params, self.max_grad_norm)
            optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
