"""The pickle-free bundle for QR-DQN, PPO and A2C: the manifest records the network and (QR-DQN) the risk
measure, the bundle acts like the SB3 model on 1,000 observations (deterministic), loads with every
unpickler disabled, completes into the paper bundle, and a manifest pointing at a pickle is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from intradayjules.agents.bundle import MANIFEST, WEIGHTS, bundle_path_for, load_policy, read_manifest
from intradayjules.agents.deploy import read_deployment
from intradayjules.agents.sb3 import load_model
from intradayjules.errors import IntegrityError, IntradayJulesError
from intradayjules.pipeline.train_run import train, write_outputs

from .test_algorithms import _cfg, _observations

ALGOS = ("qrdqn", "ppo", "a2c")


@pytest.fixture(scope="module")
def trained(prepared_small, tmp_path_factory):
    """One 1,000-step run per algorithm through the trainer (which writes model.bundle/ beside model.zip);
    QR-DQN acts by CVaR(0.25), so the bundle must carry the measure to act like the model."""
    root = tmp_path_factory.mktemp("bundle_algos")
    over = {"qrdqn": {"qrdqn": {"n_quantiles": 16, "risk_measure": "cvar", "cvar_alpha": 0.25}}}
    return {a: train(prepared_small, root / a, cfg=_cfg(prepared_small, a, **over.get(a, {})), total_timesteps=1000,
                     checkpoints=False) for a in ALGOS}


@pytest.mark.parametrize("algo", ALGOS)
def test_bundle_acts_like_the_sb3_model(trained, prepared_small, algo):
    res = trained[algo]
    bundle = bundle_path_for(res.model_path)
    m = read_manifest(bundle)
    model = load_model(res.model_path)  # the signed SB3 zip
    assert m["algorithm"] == type(model).__name__
    assert m["observation_space"]["shape"] == list(model.observation_space.shape)
    assert m["action_space"] == {"type": "Discrete", "n": int(model.action_space.n), "start": 0}
    assert m["policy"]["activation_fn"] == ("ReLU" if algo == "qrdqn" else "Tanh")  # SB3's defaults
    if algo == "qrdqn":
        assert m["policy"]["net_arch"] == [64, 64] and m["policy"]["n_quantiles"] == 16
        assert m["policy"]["risk"] == {"measure": "cvar", "cvar_alpha": 0.25, "risk_lambda": 0.5}  # lambda: the config default
    else:
        assert m["policy"]["net_arch"] == {"pi": [64, 64], "vf": [64, 64]}
    policy = load_policy(bundle)
    obs = _observations(prepared_small, 1000)
    want, _ = model.predict(obs, deterministic=True)
    got, _ = policy.predict(obs)
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) > 1, "a constant policy would make the parity check vacuous"
    x = torch.as_tensor(obs)
    with torch.no_grad():
        if algo == "qrdqn":  # the measure matters here: the risk-neutral argmax differs somewhere
            q = model.policy.quantiles(x)
            assert (q.mean(dim=1).argmax(dim=1).numpy() != want).any()
            torch.testing.assert_close(policy.policy.quantiles(x), q, rtol=0, atol=0)
        else:
            torch.testing.assert_close(policy.policy.get_distribution(x).distribution.logits,
                                       model.policy.get_distribution(x).distribution.logits, rtol=0, atol=0)
            torch.testing.assert_close(policy.policy.predict_values(x), model.policy.predict_values(x), rtol=0, atol=0)


def test_non_dqn_bundle_loads_without_unpickling(trained, no_unpickling):
    for algo in ALGOS:
        policy = load_policy(bundle_path_for(trained[algo].model_path))
        assert policy.predict(np.zeros(policy.observation_space.shape, np.float32))[0].shape == ()


def test_manifest_pointing_at_a_pickle_is_refused(trained, tmp_path, malicious):
    """A PPO bundle whose weights are swapped for a pickle that writes a marker when unpickled (with the
    manifest's digest updated to match, as an attacker who can write the folder would): refused, and the
    marker never appears. A manifest that lists the pickle beside the weights, or names it as the policy
    class, does not make the loader read it either."""
    src = bundle_path_for(trained["ppo"].model_path)

    def copy(name):
        return shutil.copytree(src, tmp_path / name)

    def rewrite(d, change):
        m = json.loads((d / MANIFEST).read_text())
        change(m)
        (d / MANIFEST).write_text(json.dumps(m))

    import hashlib

    b = copy("swapped.bundle")
    malicious.pickle_file(b / WEIGHTS)
    rewrite(b, lambda m: m["files"][WEIGHTS].update(sha256=hashlib.sha256((b / WEIGHTS).read_bytes()).hexdigest()))
    with pytest.raises(IntradayJulesError, match="not a safetensors file"):
        load_policy(b)
    assert not malicious.marker.exists()

    b = copy("listed.bundle")
    pkl = malicious.pickle_file(b / "policy.pkl")
    rewrite(b, lambda m: (m["files"].update({"policy.pkl": {"sha256": hashlib.sha256(pkl.read_bytes()).hexdigest()}}),
                          m["policy"].update({"class": "policy.pkl"})))
    policy = load_policy(b)  # loads the safetensors weights, never the listed pickle
    assert type(policy.policy).__name__ == "ActorCriticPolicy"
    assert not malicious.marker.exists()

    b = copy("nowts.bundle")  # weights replaced by a pickle name in the manifest
    shutil.move(b / WEIGHTS, b / "weights.pkl")
    rewrite(b, lambda m: m.update(files={"weights.pkl": m["files"][WEIGHTS]}))
    with pytest.raises(IntradayJulesError, match="files lists no weights.safetensors"):
        load_policy(b)
    # and the weights file altered without updating the digest: the integrity check refuses it
    b = copy("altered.bundle")
    malicious.pickle_file(b / WEIGHTS)
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        load_policy(b)
    assert not malicious.marker.exists()


@pytest.mark.parametrize("bad,match", [
    (lambda m: m["policy"]["risk"].update(measure="__import__('os')"), "risk.measure"),
    (lambda m: m["policy"].update(n_quantiles=-3), "n_quantiles"),
    (lambda m: m["policy"].update(n_quantiles=8), "do not match the network"),
    (lambda m: m["policy"]["risk"].update(cvar_alpha=2.0), "cvar alpha"),
])
def test_qrdqn_manifest_is_validated(trained, tmp_path, bad, match):
    d = shutil.copytree(bundle_path_for(trained["qrdqn"].model_path), tmp_path / "q.bundle")
    m = json.loads((d / MANIFEST).read_text())
    bad(m)
    (d / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IntradayJulesError, match=match):
        load_policy(d)


def test_write_outputs_completes_the_paper_bundle_for_qrdqn(trained, prepared_small):
    """The main job with agent.algo qrdqn: write_outputs completes model.bundle/ into the deployable
    bundle, whose TorchScript policy acts like the SB3 model (risk measure included)."""
    from intradayjules.live.policy import DeployedPolicy

    res = trained["qrdqn"]
    shutil.rmtree(bundle_path_for(res.model_path))  # a run without a bundle (older version): written here
    paths = write_outputs(res, prepared_small)
    _, d = read_deployment(paths["bundle"])
    assert d["symbols"] == list(prepared_small.env_data.symbols)
    pol = DeployedPolicy.load(paths["bundle"])
    model = load_model(res.model_path)
    obs = _observations(prepared_small, 300)
    want, _ = model.predict(obs, deterministic=True)
    assert [pol.action(o) for o in obs] == want.tolist()
