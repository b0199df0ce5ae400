"""Each algorithm through the registry: log -> register -> load by alias (pyfunc and SB3) -> same actions.
QR-DQN's registered pyfunc model acts by its risk measure, not by the mean."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from intradayjules.agents.algos import ALGOS, build_model
from intradayjules.config import AgentConfig
from intradayjules.track import load_model, load_sb3, register_model


@pytest.fixture
def backend() -> str:  # sqlite only here: the server path is the same code (tests/track/test_train_registry.py)
    return "sqlite"


def _model(algo: str):
    torch.set_num_threads(1)
    agent = AgentConfig(algo=algo, learning_starts=50, buffer_size=1000, net_arch=[32], seed=0,
                        ppo={"n_steps": 64, "batch_size": 32, "n_epochs": 1}, a2c={"n_steps": 8},
                        qrdqn={"n_quantiles": 11, "risk_measure": "cvar", "cvar_alpha": 0.2})
    model = build_model(agent, gym.make("CartPole-v1"), "cpu")
    model.learn(300)
    return model


@pytest.mark.parametrize("algo", list(ALGOS))
def test_register_and_load_each_algorithm(tracker, tmp_path, algo):
    model = _model(algo)
    zip_path = tmp_path / "model.zip"
    model.save(zip_path)
    run = tracker.start_run(f"train-{algo}")
    run.end()
    v = register_model(tracker, run.run_id, zip_path, trust_pickle=True)  # algorithm read from the zip; saved by hand (unsigned)
    assert tracker.client.get_run(run.run_id).data.tags["intradayjules.algo"] == type(model).__name__
    ref = f"models:/{v.name}@champion"
    obs = np.random.default_rng(0).normal(scale=0.5, size=(256, 4)).astype(np.float32)
    want = model.predict(obs, deterministic=True)[0]
    sb3 = load_sb3(tracker, ref, trust_pickle=True)
    assert type(sb3) is ALGOS[algo].cls
    np.testing.assert_array_equal(load_model(tracker, ref, tmp_path / "dl", trust_pickle=True).predict(obs), want)
    np.testing.assert_array_equal(sb3.predict(obs, deterministic=True)[0], want)
    if algo == "qrdqn":  # the registered model acts by CVaR_0.2 of its quantiles (numpy reference), not the mean
        with torch.no_grad():
            q = sb3.policy.quantiles(torch.as_tensor(obs)).numpy().astype(np.float64)
        n = q.shape[1]
        w = np.clip(0.2 - np.arange(n) / n, 0, 1 / n) / 0.2
        by_cvar = np.einsum("bna,n->ba", np.sort(q, axis=1), w).argmax(axis=1)
        by_mean = q.mean(axis=1).argmax(axis=1)
        assert (by_cvar != by_mean).any()  # the two rules disagree on some observations: the check can fail
        np.testing.assert_array_equal(want, by_cvar)
