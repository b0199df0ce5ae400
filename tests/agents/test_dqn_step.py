"""The written-out DQN gradient step (agents/dqn_step.py) against Stable-Baselines3's ``DQN.train``.

Each test trains two copies of one model from the same state and numpy seed, one with SB3's ``train`` (the
class attribute ``fast_step`` off, which is SB3's code path unchanged) and one with the written-out step,
and requires every parameter, every optimiser state tensor and the logged loss to be **bit-identical**,
after first showing the training moved the parameters (so equality is not two no-ops).
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN as SB3DQN
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from intradayjules.agents.algos import ALGOS, algo_of
from intradayjules.agents.dqn_step import DQN, fast_step_unsupported
from intradayjules.agents.replay import SampleViewReplayBuffer

OBS, ACTIONS = 23, 7


class _Blank(gym.Env):
    observation_space = gym.spaces.Box(-5, 5, (OBS,), np.float32)
    action_space = gym.spaces.Discrete(ACTIONS)

    def reset(self, *, seed=None, options=None):
        return np.zeros(OBS, np.float32), {}

    def step(self, action):
        return np.zeros(OBS, np.float32), 0.0, False, False, {}


def _model(n_envs: int = 4, net_arch=(32, 32), fill: int = 150, full: bool = False, buffer_size: int = 800,
           **kwargs) -> DQN:
    """A DQN whose replay buffer holds random transitions (terminal and timed-out ones included)."""
    kwargs.setdefault("replay_buffer_class", SampleViewReplayBuffer)
    kwargs.setdefault("learning_rate", 3e-3)
    policy_kwargs = {"net_arch": list(net_arch), "optimizer_kwargs": {"fused": True}}
    policy_kwargs.update(kwargs.pop("policy_kwargs", {}))
    model = DQN("MlpPolicy", DummyVecEnv([_Blank] * n_envs), batch_size=16, buffer_size=buffer_size, seed=3,
                device="cpu", policy_kwargs=policy_kwargs, **kwargs)
    model.set_logger(configure(None, []))
    rb, rng = model.replay_buffer, np.random.default_rng(7)
    rows = rb.buffer_size if full else fill
    rb.observations[:rows] = rng.normal(size=rb.observations[:rows].shape)
    rb.next_observations[:rows] = rng.normal(size=rb.next_observations[:rows].shape)
    rb.actions[:rows] = rng.integers(0, ACTIONS, size=rb.actions[:rows].shape)
    rb.rewards[:rows] = rng.normal(scale=3.0, size=rb.rewards[:rows].shape)
    rb.dones[:rows] = rng.random(size=rb.dones[:rows].shape) < 0.1
    rb.timeouts[:rows] = rng.random(size=rb.timeouts[:rows].shape) < 0.5
    rb.pos, rb.full = (rows // 3, True) if full else (rows, False)
    return model


def _pair(model: DQN) -> tuple[DQN, DQN]:
    reference = copy.deepcopy(model)
    reference.fast_step = False  # SB3's DQN.train, untouched
    return model, reference


def _train_both(fast: DQN, reference: DQN, calls: int = 12, steps: int = 3) -> list[tuple[float, float]]:
    losses = []
    for k in range(calls):
        for model in (fast, reference):
            np.random.seed(100 + k)
            model.train(steps, model.batch_size)
        losses.append((fast.logger.name_to_value["train/loss"], reference.logger.name_to_value["train/loss"]))
    return losses


def _assert_identical(fast: DQN, reference: DQN, start: dict[str, th.Tensor]) -> None:
    moved = max(float((p - start[k]).abs().max()) for k, p in fast.policy.state_dict().items() if "target" not in k)
    assert moved > 1e-4, "training did not move the parameters"
    for (k, p), (k2, q) in zip(fast.policy.state_dict().items(), reference.policy.state_dict().items()):
        assert k == k2 and th.equal(p, q), f"{k} differs by {float((p - q).abs().max())}"
    sa, sb = fast.policy.optimizer.state_dict(), reference.policy.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i, state in sa["state"].items():
        for name, value in state.items():
            assert th.equal(value, sb["state"][i][name]), f"optimiser state {i}.{name} differs"
    assert fast._n_updates == reference._n_updates


def _start(model: DQN) -> dict[str, th.Tensor]:
    return {k: v.clone() for k, v in model.policy.state_dict().items()}


@pytest.mark.parametrize("net_arch", [(32, 32), (16,), (24, 16, 8)])
def test_bit_identical_to_sb3_train(net_arch):
    fast, reference = _pair(_model(net_arch=net_arch))
    assert fast_step_unsupported(fast) is None and fast_step_unsupported(reference) == "fast_step is off"
    start = _start(fast)
    losses = _train_both(fast, reference)
    _assert_identical(fast, reference, start)
    assert [a for a, _ in losses] == [b for _, b in losses]
    assert len({a for a, _ in losses}) > 1  # the loss was logged every call, and changed


def test_bit_identical_when_clipping_and_the_buffer_has_wrapped():
    """A tiny ``max_grad_norm`` clips every step (shown: the unclipped norm exceeds it); a full buffer samples
    every row; a learning-rate schedule changes ``lr`` between calls; one env slot."""
    model = _model(n_envs=1, full=True, buffer_size=300, max_grad_norm=0.05,
                   learning_rate=lambda progress: 1e-3 + 4e-3 * progress)
    fast, reference = _pair(model)
    np.random.seed(0)
    batch = reference.replay_buffer.sample(16)
    with th.no_grad():
        target = batch.rewards + (1 - batch.dones) * reference.gamma * reference.q_net_target(
            batch.next_observations).max(1, keepdim=True).values
    q = reference.q_net(batch.observations).gather(1, batch.actions.long())
    th.nn.functional.smooth_l1_loss(q, target).backward()
    unclipped = th.nn.utils.get_total_norm([p.grad for p in reference.q_net.parameters()])
    reference.policy.optimizer.zero_grad()
    assert float(unclipped) > 0.05 * 5
    start = _start(fast)
    for progress in (1.0, 0.6, 0.2):
        fast._current_progress_remaining = reference._current_progress_remaining = progress
        _train_both(fast, reference, calls=4)
    _assert_identical(fast, reference, start)
    assert fast.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 + 4e-3 * 0.2)


def test_non_fused_adam_and_sb3s_own_buffer_are_bit_identical_too():
    fast, reference = _pair(_model(policy_kwargs={"optimizer_kwargs": {}}, replay_buffer_class=None))
    assert fast_step_unsupported(fast) is None
    start = _start(fast)
    _train_both(fast, reference)
    _assert_identical(fast, reference, start)


def test_unsupported_networks_fall_back_to_sb3():
    tanh = _model(policy_kwargs={"activation_fn": th.nn.Tanh})
    assert "ReLU" in (fast_step_unsupported(tanh) or "")
    fast, reference = _pair(tanh)
    start = _start(fast)
    _train_both(fast, reference, calls=3)
    _assert_identical(fast, reference, start)
    memory = DQN("MlpPolicy", DummyVecEnv([_Blank]), buffer_size=100, device="cpu", optimize_memory_usage=True,
                 replay_buffer_kwargs={"handle_timeout_termination": False})
    assert "optimize_memory_usage=True" in (fast_step_unsupported(memory) or "")


def test_a_replaced_buffer_and_a_reload_are_picked_up(tmp_path):
    """The step keeps views of the buffer's arrays: a new buffer object (``load_replay_buffer``) or a model
    loaded from its zip must be trained on its own data, not the old views."""
    fast, reference = _pair(_model())
    _train_both(fast, reference, calls=2)
    other = _model(fill=90)
    other.replay_buffer.rewards[:] *= -1.0
    for model in (fast, reference):
        model.replay_buffer = copy.deepcopy(other.replay_buffer)
    start = _start(fast)
    _train_both(fast, reference, calls=3)
    _assert_identical(fast, reference, start)

    fast.save(tmp_path / "m.zip")
    loaded = DQN.load(tmp_path / "m.zip", env=DummyVecEnv([_Blank] * 4), device="cpu")
    assert type(loaded) is DQN and getattr(loaded, "_step", None) is None
    plain = SB3DQN.load(tmp_path / "m.zip", device="cpu")  # the zip is SB3's own format
    assert all(th.equal(p, q) for p, q in zip(plain.policy.parameters(), fast.policy.parameters()))
    loaded.set_logger(configure(None, []))
    loaded.replay_buffer = copy.deepcopy(other.replay_buffer)
    fast2, reference2 = _pair(loaded)
    start = _start(fast2)
    _train_both(fast2, reference2, calls=3)
    _assert_identical(fast2, reference2, start)


def test_the_table_builds_it_and_recognises_sb3s_own_class():
    assert ALGOS["dqn"].cls is DQN and issubclass(DQN, SB3DQN) and DQN.__name__ == "DQN"
    plain = SB3DQN("MlpPolicy", DummyVecEnv([_Blank]), buffer_size=100, device="cpu")
    assert algo_of(plain).name == "dqn" and algo_of(_model()).name == "dqn"


def test_a_whole_training_run_is_the_same_model(prepared_small, tmp_path, monkeypatch):
    """``learn`` from one seed gives the same network with the written-out step as with SB3's ``train``:
    the step draws the same batches, so nothing downstream (collection, exploration, evaluation) moves."""
    from intradayjules.agents.sb3 import learn

    from .conftest import small_config

    cfg = small_config(tmp_path, env={"n_envs": 4}, agent={"total_timesteps": 2000, "learning_starts": 400})
    fast = learn(cfg, prepared_small.env_data)
    assert type(fast) is DQN and fast._step is not None and fast._step[1] is not None  # the fast step ran
    monkeypatch.setattr(DQN, "fast_step", False)
    reference = learn(cfg, prepared_small.env_data)
    assert fast._n_updates == reference._n_updates > 300
    for (k, p), q in zip(fast.policy.state_dict().items(), reference.policy.state_dict().values()):
        assert th.equal(p, q), k
