"""Training on the project's vectorised env (agents.sb3.make_training_vec_env): SB3 gets SessionVecEnv
itself, gradient steps per env step stay 1 / agent.train_freq with N slots, checkpoints land on schedule."""

from __future__ import annotations

import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from intradayjules.agents.sb3 import Checkpoint, learn, make_training_vec_env
from intradayjules.env import SessionVecEnv

from .conftest import small_config


def test_sb3_trains_on_session_vec_env_not_dummy(prepared_small, tmp_path):
    cfg = small_config(tmp_path, env={"n_envs": 4})
    venv = make_training_vec_env(cfg, prepared_small.env_data)
    assert isinstance(venv, VecMonitor) and isinstance(venv.venv, SessionVecEnv)
    assert venv.num_envs == 4 and venv.venv.info_level == "minimal" and venv.venv.shaping is not None
    model = learn(cfg, prepared_small.env_data, total_timesteps=400)
    assert not isinstance(model.get_env(), DummyVecEnv) and model.get_env().num_envs == 4


@pytest.mark.parametrize("n_envs, train_freq", [(8, 4), (6, 4), (3, 2)])
def test_gradient_steps_per_env_step_are_kept(prepared_small, tmp_path, n_envs, train_freq):
    """SB3 counts its gradient steps in ``_n_updates``; 1 slot with train_freq 4 makes one every 4 steps
    after learning_starts, so N slots must make (steps - learning_starts) / train_freq as well."""
    total, starts = 2400, 600
    cfg = small_config(tmp_path, env={"n_envs": n_envs},
                       agent={"train_freq": train_freq, "learning_starts": starts, "total_timesteps": total})
    model = learn(cfg, prepared_small.env_data)
    one = learn(small_config(tmp_path, agent={"train_freq": train_freq, "learning_starts": starts,
                                              "total_timesteps": total}), prepared_small.env_data)
    expected = (total - starts) / train_freq
    assert model.batch_size == one.batch_size
    assert abs(model._n_updates - expected) <= n_envs and abs(one._n_updates - expected) <= 1, \
        (model._n_updates, one._n_updates, expected)


def test_checkpoints_on_schedule_with_several_slots(prepared_small, tmp_path):
    cfg = small_config(tmp_path, env={"n_envs": 3})  # 3 does not divide checkpoint_freq 1000
    ckpt = tmp_path / "ck"
    learn(cfg, prepared_small.env_data, [Checkpoint(1000, ckpt)], total_timesteps=2100)
    steps = sorted(int(p.stem.split("_")[1]) for p in ckpt.glob("dqn_*_steps.zip"))
    assert steps == [1002, 2001]  # the first call at or after each multiple of 1000 (3 steps a call)


def test_collect_schedule_keeps_the_ratio():
    from fractions import Fraction

    from intradayjules.agents.algos import collect_schedule

    # hand-worked: 16 slots, one gradient step per 4 env steps -> 4 gradient steps per SB3 step of 16
    assert collect_schedule(4, 16) == (1, 4)
    assert collect_schedule(4, 6) == (2, 3)  # 12 env steps, 3 gradient steps
    assert collect_schedule(3, 8) == (3, 8)  # 24 env steps, 8 gradient steps
    assert collect_schedule(4, 1) == (4, 1)
    for tf in range(1, 13):
        for n in range(1, 33):
            sb3_tf, g = collect_schedule(tf, n)
            assert Fraction(g, sb3_tf * n) == Fraction(1, tf) and sb3_tf >= 1 and g >= 1
            assert sb3_tf * n <= tf * n  # never collects more than train_freq steps per slot between updates
