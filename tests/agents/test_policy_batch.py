"""Greedy policies of trained models act on batches too: the rollout's lockstep engine gives the records
of one session after another with per-observation ``predict`` (SB3 model and its TorchScript export)."""

from __future__ import annotations

import pandas as pd
import pytest

from intradayjules.agents.algos import build_model
from intradayjules.agents.policy import policy_from_model
from intradayjules.env import make_env
from intradayjules.env.rollout import run_sessions


@pytest.mark.parametrize("algo", ["dqn", "qrdqn"])
def test_model_policy_in_lockstep_equals_one_session_after_another(prepared_small, algo):
    cfg = prepared_small.cfg.model_copy(update={"agent": prepared_small.cfg.agent.model_copy(update={"algo": algo})})
    env = make_env(cfg, None, split="val", data=prepared_small.env_data)
    model = build_model(cfg.agent, env, "cpu")  # untrained weights: arbitrary but fixed greedy actions
    policy = policy_from_model(model)
    sessions = env.unwrapped.session_dates()
    batched = run_sessions(policy, env, sessions)
    single = run_sessions(lambda obs, info: policy(obs, info), env, sessions)  # no ``batch``: one by one
    assert batched.steps["action"].nunique() > 1
    pd.testing.assert_frame_equal(batched.steps, single.steps)
    pd.testing.assert_frame_equal(batched.trades, single.trades)
