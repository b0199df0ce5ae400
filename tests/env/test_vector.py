"""SessionVecEnv: same trajectories as TradingEnv, SB3 auto-reset convention, trains with SB3 DQN."""

from __future__ import annotations

import numpy as np
import pytest

from intradayjules.env import make_env, make_vec_env, prepare

from .helpers import config, features, market, run_episode


@pytest.fixture(scope="module")
def setup():
    mk = market(days=30)
    cfg = config("multi")
    cfg.env.eval_sampling = "sequential"
    data = prepare(cfg, mk.bars.frame, mk.universe, features(mk.bars.frame))
    return mk, cfg, data


def test_slots_match_single_env(setup):
    mk, cfg, data = setup
    venv = make_vec_env(cfg, mk.bars, mk.universe, "val", n_envs=3, data=data)
    obs = venv.reset()
    assert obs.shape == (3, venv.observation_space.shape[0]) and obs.dtype == np.float32
    sessions = [venv.sim.episodes[i].session for i in range(3)]
    assert len(set(sessions)) == 3  # sequential slots start spread over the split
    rng = np.random.default_rng(5)
    acts = rng.integers(venv.action_space.n, size=(200, 3))
    rewards, infos, first_done = [], [], [None] * 3
    for j in range(200):
        o, r, d, inf = venv.step(acts[j])
        rewards.append(r)
        infos.append(inf)
        for i in range(3):
            if d[i] and first_done[i] is None:
                first_done[i] = j
                assert "terminal_observation" in inf[i]
                assert venv.sim.t[i] == 0 and venv.sim.episodes[i].session != sessions[i]  # auto-reset
        if all(x is not None for x in first_done):
            break
    for i in range(3):
        env = make_env(cfg, mk.bars, mk.universe, "val", data=data)
        _, rew, inf1, _ = run_episode(env, list(acts[: first_done[i] + 1, i]), session=sessions[i])
        assert len(rew) == first_done[i] + 1
        np.testing.assert_allclose([r[i] for r in rewards[: len(rew)]], rew, rtol=0, atol=1e-7)
        assert [x[i]["equity"] for x in infos[: len(rew)]] == [x["equity"] for x in inf1]


def test_seeded_vec_env_is_deterministic(setup):
    mk, cfg, data = setup
    outs = []
    for _ in range(2):
        venv = make_vec_env(cfg, mk.bars, mk.universe, "train", n_envs=4, data=data, seed=9)
        venv.reset()
        acts = np.random.default_rng(1).integers(venv.action_space.n, size=(150, 4))
        outs.append(np.array([venv.step(a)[1] for a in acts]))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_sb3_dqn_trains_on_vec_env(setup):
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    mk, cfg, data = setup
    venv = make_vec_env(cfg, mk.bars, mk.universe, "train", n_envs=4, data=data, seed=0)
    model = DQN("MlpPolicy", venv, learning_starts=100, buffer_size=2000, batch_size=32, seed=0,
                train_freq=4, target_update_interval=100, verbose=0)
    model.learn(600)
    assert model.num_timesteps >= 600
    assert model.replay_buffer.size() > 0
    obs = venv.reset()
    act, _ = model.predict(obs, deterministic=True)
    assert act.shape == (4,) and ((0 <= act) & (act < venv.action_space.n)).all()
