"""DQN on the vectorised env: the same gradient steps per env step, the same update as SB3's DQN.train,
per-slot exploration, and a model plain SB3 can load."""

from __future__ import annotations

import copy
from fractions import Fraction

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN

from intradayjules.agents.vec_training import (TrainingDQN, build_training_model, collection_plan, dqn_kwargs,
                                               make_training_vec_env)

from .conftest import small_config


@pytest.mark.parametrize("train_freq", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("n_envs", [1, 2, 3, 4, 8, 16])
def test_collection_plan_keeps_gradient_steps_per_env_step(train_freq, n_envs):
    f, g = collection_plan(train_freq, n_envs)
    assert f >= 1 and g >= 1
    assert Fraction(g, f * n_envs) == Fraction(1, train_freq)


@pytest.fixture(scope="module")
def model(prepared_small, tmp_path_factory):
    torch.set_num_threads(1)
    cfg = prepared_small.cfg
    venv = make_training_vec_env(cfg, prepared_small.env_data, n_envs=4)
    m = build_training_model(cfg, venv, "cpu")
    m.learn(800)  # past learning_starts (300): the buffer holds transitions of every slot
    return m


def test_learns_with_the_planned_number_of_gradient_steps(prepared_small, model):
    cfg = prepared_small.cfg
    assert model.n_envs == 4 and model.batch_size == cfg.agent.batch_size
    # 1/4 gradient step per env step after learning_starts: (800 - 300) / 4 = 125 (to one VecEnv step)
    assert abs(model._n_updates - (model.num_timesteps - cfg.agent.learning_starts) / cfg.agent.train_freq) <= 1
    assert [layer.out_features for layer in model.q_net.q_net if hasattr(layer, "out_features")] == \
        [*cfg.agent.net_arch, model.action_space.n]


def _snapshot(m):
    return copy.deepcopy(m.policy.state_dict()), copy.deepcopy(m.policy.optimizer.state_dict())


def _restore(m, snap):  # load_state_dict may alias the given tensors: hand it copies
    m.policy.load_state_dict(copy.deepcopy(snap[0]))
    m.policy.optimizer.load_state_dict(copy.deepcopy(snap[1]))


def _flat(m):
    return torch.cat([p.detach().flatten() for p in m.q_net.parameters()]).numpy().copy()


def test_update_equals_sb3_dqn_train_on_the_same_draws(model):
    snap = _snapshot(model)
    before = _flat(model)
    np.random.seed(11)
    model.train(gradient_steps=3, batch_size=32)
    lean = _flat(model)
    _restore(model, snap)
    np.random.seed(11)
    DQN.train(model, gradient_steps=3, batch_size=32)  # SB3's own update, same optimizer, same draws
    sb3 = _flat(model)
    _restore(model, snap)
    assert np.abs(lean - before).max() > 1e-6  # the update moved the weights
    np.testing.assert_allclose(lean, sb3, rtol=0, atol=1e-7)


def test_fused_adam_agrees_with_the_default_adam(model):
    snap = _snapshot(model)
    assert model.policy.optimizer.defaults["fused"]
    out = {}
    for fused in (True, False):
        _restore(model, snap)
        opt = model.policy.optimizer
        if not fused:
            model.policy.optimizer = torch.optim.Adam(model.q_net.parameters(), lr=opt.defaults["lr"])
            model.policy.optimizer.load_state_dict(copy.deepcopy(snap[1]))
            for g in model.policy.optimizer.param_groups:
                g["fused"] = None
        np.random.seed(3)
        model.train(gradient_steps=20, batch_size=32)
        out[fused] = _flat(model)
        model.policy.optimizer = opt
    _restore(model, snap)
    before = _flat(model)
    step = np.abs(out[False] - before).max()
    assert step > 1e-5
    assert np.abs(out[True] - out[False]).max() < 1e-3 * step  # float32 rounding, not a different rule
    assert step < 20 * 1.5e-4  # Adam moves each weight by at most ~lr per step (lr 1e-4)


def test_exploration_is_per_slot(model):
    obs = np.stack([model.observation_space.sample() for _ in range(4)])
    saved = model.exploration_rate
    try:
        model.exploration_rate = 0.0
        greedy = model.predict(obs)[0]
        with torch.no_grad():
            ref = model.q_net(torch.as_tensor(obs)).argmax(1).numpy()
        np.testing.assert_array_equal(greedy, ref)
        model.exploration_rate = 0.5
        np.random.seed(0)
        n_random = [int((model.predict(obs)[0] != greedy).sum()) for _ in range(300)]
        # SB3's DQN.predict explores all slots or none; here each slot draws its own coin
        assert any(0 < k < 4 for k in n_random)
        model.exploration_rate = 1.0
        acts = np.array([model.predict(obs)[0] for _ in range(300)])
        assert len(np.unique(acts)) == model.action_space.n and not (acts == acts[:, :1]).all()
    finally:
        model.exploration_rate = saved


def test_saved_model_is_a_plain_sb3_dqn(model, tmp_path):
    model.save(tmp_path / "m.zip")
    plain = DQN.load(tmp_path / "m.zip", device="cpu")
    obs = np.stack([model.observation_space.sample() for _ in range(5)])
    np.testing.assert_array_equal(plain.predict(obs, deterministic=True)[0],
                                  model.predict(obs, deterministic=True)[0])
    again = TrainingDQN.load(tmp_path / "m.zip", device="cpu")
    assert again.gradient_steps == model.gradient_steps and again.train_freq == model.train_freq


def test_kwargs_carry_the_config(prepared_small):
    cfg = prepared_small.cfg
    kw = dqn_kwargs(cfg, 8)
    a = cfg.agent
    assert (kw["learning_rate"], kw["batch_size"], kw["buffer_size"], kw["gamma"], kw["learning_starts"],
            kw["target_update_interval"]) == (a.learning_rate, a.batch_size, a.buffer_size, a.gamma,
                                              a.learning_starts, a.target_update_interval)
    assert (kw["train_freq"], kw["gradient_steps"]) == (1, 2)  # 8 transitions, 2 gradient steps


def test_slot_count_keeps_evaluations_checkpoints_and_the_end_on_the_one_env_grid(tmp_path):
    from intradayjules.agents.vec_training import training_n_envs

    cfg = small_config(tmp_path, agent={"total_timesteps": 40_000, "checkpoint_freq": 20_000},
                       risk={"eval_freq": 5000})
    assert training_n_envs(cfg) == 8
    assert training_n_envs(cfg, total_timesteps=1000) == 8
    cfg = small_config(tmp_path, agent={"total_timesteps": 2000, "checkpoint_freq": 1000}, risk={"eval_freq": 250})
    assert training_n_envs(cfg) == 5  # 250 = 2 * 5^3: the largest divisor <= 8
    cfg = small_config(tmp_path, agent={"total_timesteps": 2003})
    assert training_n_envs(cfg) == 1  # a prime run length: one slot (still no DummyVecEnv)
    cfg = small_config(tmp_path, env={"n_envs": 3})
    assert training_n_envs(cfg) == 3


def test_one_slot_reproduces_the_old_single_env_path_bit_for_bit(prepared_small):
    """Same sessions (sequential sampling), same seed, same Adam implementation: the new collection path
    with one slot stores the same transitions and ends with the same weights as SB3's DQN on
    ``Monitor(RiskShapingWrapper(TradingEnv))`` (the trainer before issue 16)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.utils import set_random_seed

    from intradayjules.env import make_env
    from intradayjules.risk.shaping import wrap_from_config

    torch.set_num_threads(1)
    base = prepared_small.cfg
    cfg = base.model_copy(update={"env": base.env.model_copy(update={"train_sampling": "sequential"})})
    assert cfg.risk.profile != "off"  # the shaping is part of what is compared
    steps = 1200
    out = {}
    for path in ("old", "new"):
        set_random_seed(cfg.agent.seed)
        if path == "old":
            env = Monitor(wrap_from_config(make_env(cfg, None, split="train", data=prepared_small.env_data), cfg))
            model = DQN("MlpPolicy", env, device="cpu", verbose=0, **dqn_kwargs(cfg, 1))
        else:
            model = build_training_model(cfg, make_training_vec_env(cfg, prepared_small.env_data, n_envs=1), "cpu")
        model.learn(steps)
        rb = model.replay_buffer
        out[path] = (rb.observations[: rb.pos].copy(), rb.actions[: rb.pos].copy(), rb.rewards[: rb.pos].copy(),
                     rb.dones[: rb.pos].copy(), _flat(model), model._n_updates)
    old, new = out["old"], out["new"]
    assert old[5] == new[5] > 200  # the same number of gradient steps, and many of them
    assert old[3].sum() >= 5  # several episodes ended (terminal transitions compared too)
    for a, b in zip(old[:5], new[:5]):
        np.testing.assert_array_equal(a, b)
