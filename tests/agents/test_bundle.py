"""The policy bundle: same greedy actions and Q-values as the SB3 model, loaded without any unpickling,
refused when altered."""

import hashlib
import json

import numpy as np
import pytest
import torch

from intradayjules.agents.bundle import (MANIFEST, WEIGHTS, BundleError, bundle_path_for, export_bundle,
                                         load_policy, read_manifest)
from intradayjules.agents.dqn import load_model
from intradayjules.agents.export import random_walk_observations
from intradayjules.pipeline.train_run import train
from intradayjules.errors import IntegrityError


@pytest.fixture(scope="module")
def trained(prepared_small, tmp_path_factory):
    """A DQN trained by the project's trainer (which writes model.bundle/ beside model.zip)."""
    return train(prepared_small, tmp_path_factory.mktemp("bundle") / "run", total_timesteps=1000, checkpoints=False)


def _observations(env, n_env: int, n_random: int, seed: int = 0) -> np.ndarray:
    """Observations the policy meets (an episode rollout with random actions) plus random points of the
    observation space (normal, clipped to its bounds)."""
    seen = random_walk_observations(env, n_env, seed)
    space = env.observation_space
    rand = np.clip(np.random.default_rng(seed + 1).normal(scale=2.0, size=(n_random, *space.shape)), space.low,
                   space.high)
    return np.concatenate([seen, rand]).astype(np.float32)


def test_bundle_parity_with_the_sb3_model(trained, prepared_small):
    from intradayjules.env import make_env

    bundle = bundle_path_for(trained.model_path)
    assert (bundle / MANIFEST).is_file() and (bundle / WEIGHTS).is_file()
    model = load_model(trained.model_path)  # the SB3 zip (signed by the trainer)
    policy = load_policy(bundle)
    obs = _observations(make_env(prepared_small.cfg, None, split="test", data=prepared_small.env_data), 500, 500)
    assert obs.shape[0] == 1000
    expected_actions, _ = model.predict(obs, deterministic=True)
    got_actions, _ = policy.predict(obs)
    np.testing.assert_array_equal(got_actions, expected_actions)
    with torch.no_grad():
        expected_q = model.q_net(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(policy.q_values(obs), expected_q, rtol=0, atol=1e-6)
    assert len(np.unique(expected_actions)) > 1, "a constant policy would make the parity check vacuous"
    # single observation, as the backtest calls it
    assert int(policy.predict(obs[3])[0]) == int(model.predict(obs[3], deterministic=True)[0])
    m = read_manifest(bundle)
    assert m["source"]["zip_sha256"] == hashlib.sha256(trained.model_path.read_bytes()).hexdigest()
    assert m["source"]["num_timesteps"] == trained.timesteps == policy.num_timesteps
    layout = m["obs_layout"]
    assert layout["symbols"] == list(prepared_small.env_data.symbols) and layout["lookback"] >= 1
    assert m["observation_space"]["shape"] == [obs.shape[1]]


def test_loading_a_bundle_unpickles_nothing(trained, no_unpickling):
    """Every unpickling entry point raises while the bundle loads: it still loads."""
    policy = load_policy(bundle_path_for(trained.model_path))
    assert policy.predict(np.zeros(policy.observation_space.shape, np.float32))[0].shape == ()


def test_infinite_bounds_round_trip_in_strict_json(tmp_path):
    import gymnasium as gym
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": [16], "activation_fn": torch.nn.Tanh},
                seed=3, device="cpu")
    path = export_bundle(model, tmp_path / "cp.bundle")

    def no_constants(c):
        raise AssertionError(f"non-strict JSON constant {c}")

    m = json.loads((path / MANIFEST).read_text(), parse_constant=no_constants)
    assert "inf" in m["observation_space"]["high"] and m["policy"]["activation_fn"] == "Tanh"
    policy = load_policy(path)
    assert policy.observation_space == model.observation_space
    assert isinstance(policy.policy.q_net.q_net[1], torch.nn.Tanh)
    obs = np.random.default_rng(1).normal(size=(200, 4)).astype(np.float32)
    np.testing.assert_array_equal(policy.predict(obs)[0], model.predict(obs, deterministic=True)[0])


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_altered_bundles_are_refused(trained, tmp_path):
    src = bundle_path_for(trained.model_path)
    # weights changed after export: the manifest's sha256 no longer matches
    b = _copy(src, tmp_path / "w.bundle")
    data = bytearray((b / WEIGHTS).read_bytes())
    data[-1] ^= 0x01
    (b / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="weights.safetensors failed its integrity check"):
        load_policy(b)

    def edited(name, change):
        d = _copy(src, tmp_path / name)
        m = json.loads((d / MANIFEST).read_text())
        change(m)
        (d / MANIFEST).write_text(json.dumps(m))
        return d

    # an activation that is not on the allow-list (the manifest never names code to import)
    with pytest.raises(BundleError, match="activation_fn 'os.system'"):
        load_policy(edited("a.bundle", lambda m: m["policy"].update(activation_fn="os.system")))
    # a network that does not fit the tensors
    with pytest.raises(BundleError, match="do not match the network"):
        load_policy(edited("n.bundle", lambda m: m["policy"].update(net_arch=[7])))
    # a file name that reaches outside the bundle
    with pytest.raises(BundleError, match="not a plain file"):
        load_policy(edited("p.bundle", lambda m: m["files"].update({"../x": {"sha256": "0" * 64}})))
    with pytest.raises(BundleError, match="format_version"):
        load_policy(edited("v.bundle", lambda m: m.update(format_version=99)))
    with pytest.raises(BundleError, match="algorithm 'SAC'"):
        load_policy(edited("g.bundle", lambda m: m.update(algorithm="SAC")))
    # a DQN's tensors under another algorithm's name: the rebuilt network does not fit them
    with pytest.raises(BundleError, match="do not match the network"):
        load_policy(edited("ppo.bundle", lambda m: m.update(algorithm="PPO")))
    with pytest.raises(BundleError, match="not a policy bundle"):
        load_policy(tmp_path)
