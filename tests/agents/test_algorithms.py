"""Every algorithm of the table through what DQN goes through: training with the risk callback and shaping,
early stopping, checkpoints and resume, export parity, loading by the algorithm in the zip, PBT weights."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from intradayjules.agents.algos import ALGO_ATTR, ALGOS, algo_of_zip, build_model
from intradayjules.agents.export import (export_torchscript, latency_us, load_torchscript, parity, policy_description,
                                        random_walk_observations)
from intradayjules.agents.qrdqn import RiskAwareQRDQNPolicy, set_risk_measure
from intradayjules.agents.risk_measures import RiskMeasure
from intradayjules.agents.sb3 import latest_checkpoint, load_model, replay_buffer_for
from intradayjules.config import config_from_dict
from intradayjules.env import make_env
from intradayjules.errors import ConfigError
from intradayjules.pipeline.train_run import train
from intradayjules.track.loader import load_model as registry_load
from intradayjules.track.sb3_pyfunc import sb3_class

# small per-algorithm settings: on-policy rollouts that divide the 1,000-step checkpoint/eval grid
SMALL = {"ppo": {"n_steps": 250, "batch_size": 50, "n_epochs": 2}, "a2c": {"n_steps": 10},
         "qrdqn": {"n_quantiles": 16}}


def _cfg(prepared, algo: str, **agent):
    c = prepared.cfg
    upd = {"algo": algo, **SMALL, **agent}
    data = c.model_dump(mode="python")
    for k, v in upd.items():
        data["agent"][k] = {**data["agent"][k], **v} if isinstance(v, dict) else v
    return type(c).model_validate(data)


def _params(model) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()]).numpy()


def _observations(prepared, n=1000) -> np.ndarray:
    return random_walk_observations(make_env(prepared.cfg, None, split="test", data=prepared.env_data), n)


@pytest.fixture(scope="module")
def trained(prepared_small, tmp_path_factory):
    """One 1,000-step run per algorithm (risk callback + balanced shaping, as `train` always does)."""
    root = tmp_path_factory.mktemp("algos")
    return {a: train(prepared_small, root / a, cfg=_cfg(prepared_small, a), total_timesteps=1000) for a in ALGOS}


@pytest.mark.parametrize("algo", list(ALGOS))
def test_trains_with_the_risk_callback_and_loads_as_its_class(trained, algo):
    res = trained[algo]
    assert res.timesteps == 1000
    assert [e["timesteps"] for e in res.evaluations] == [1000.0]  # eval_freq 1000 in the small config
    assert {"risk/composite", "eval/objective"} <= set(res.evaluations[0])
    model = load_model(res.model_path)
    assert type(model) is ALGOS[algo].cls and getattr(model, ALGO_ATTR) == algo
    assert algo_of_zip(res.model_path).name == algo
    assert sb3_class(type(model).__name__) is ALGOS[algo].cls and sb3_class(algo) is ALGOS[algo].cls
    # the registry's local loader reads the algorithm from the zip (it used to assume DQN)
    obs = np.random.default_rng(1).normal(size=(32, model.observation_space.shape[0])).astype(np.float32)
    np.testing.assert_array_equal(registry_load(None, str(res.model_path)).predict(obs),
                                  model.predict(obs, deterministic=True)[0])


def test_legacy_zip_without_the_stamp_is_recognised(trained, tmp_path):
    """Zips saved before the algorithm stamp existed: told apart by policy class (and PPO's clip_range)."""
    for algo, res in trained.items():
        src = zipfile.ZipFile(res.model_path)
        out = tmp_path / f"{algo}.zip"
        with zipfile.ZipFile(out, "w") as dst:
            for item in src.infolist():
                raw = src.read(item.filename)
                if item.filename == "data":
                    data = json.loads(raw)
                    data.pop(ALGO_ATTR)
                    raw = json.dumps(data).encode()
                dst.writestr(item, raw)
        assert ALGO_ATTR not in json.loads(zipfile.ZipFile(out).read("data"))
        assert algo_of_zip(out).name == algo
    with pytest.raises(ValueError, match="not a Stable-Baselines3 model zip"):
        algo_of_zip(tmp_path / "qrdqn.zip.missing")


@pytest.mark.parametrize("algo", list(ALGOS))
def test_export_parity_on_1000_observations(trained, prepared_small, tmp_path, algo):
    model = load_model(trained[algo].model_path)
    scripted = load_torchscript(export_torchscript(model, tmp_path / "policy.pt"))
    obs = _observations(prepared_small)
    assert parity(model, scripted, obs) == 1.0
    x = torch.as_tensor(obs)
    with torch.no_grad():
        if algo == "dqn":
            want, got = model.q_net(x), scripted.q_values(x)
        elif algo == "qrdqn":
            want, got = model.policy.risk_values(x), scripted.risk_values(x)
            torch.testing.assert_close(scripted.quantiles(x), model.policy.quantiles(x), rtol=1e-6, atol=1e-6)
        else:
            dist = model.policy.get_distribution(x)
            want, got = dist.distribution.logits, torch.log_softmax(scripted.action_logits(x), dim=-1)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    lat = latency_us(scripted, obs.shape[1], n=200)
    assert 0 < lat["p50"] <= lat["p99"]
    desc = policy_description(model)
    assert desc["algo"] == algo and desc["obs_dim"] == obs.shape[1] and desc["hidden"] == [64, 64]


@pytest.mark.parametrize("measure", [RiskMeasure("cvar", alpha=0.25), RiskMeasure("mean_std", lam=1.0),
                                     RiskMeasure("mean")])
def test_qrdqn_acts_by_its_risk_measure_in_python_and_in_the_export(trained, prepared_small, tmp_path, measure):
    model = set_risk_measure(load_model(trained["qrdqn"].model_path), measure)
    obs = _observations(prepared_small)
    with torch.no_grad():
        q = model.policy.quantiles(torch.as_tensor(obs)).numpy().astype(np.float64)  # [n, N, actions]
    # independent numpy reference of each measure
    srt = np.sort(q, axis=1)
    n_q = q.shape[1]
    w = np.clip(0.25 - np.arange(n_q) / n_q, 0, 1 / n_q) / 0.25
    ref = {"mean": q.mean(axis=1), "cvar": np.einsum("bna,n->ba", srt, w),
           "mean_std": q.mean(axis=1) - 1.0 * q.std(axis=1)}
    want = ref[measure.name].argmax(axis=1)
    if measure.name != "mean":  # the test can tell measures apart: they disagree somewhere
        assert (want != ref["mean"].argmax(axis=1)).any()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], want)
    # saved and exported with the model
    model.save(tmp_path / "m.zip")
    again = load_model(tmp_path / "m.zip", trust_pickle=True)  # saved by hand here: unsigned
    assert again.policy.risk == measure and isinstance(again.policy, RiskAwareQRDQNPolicy)
    scripted = load_torchscript(export_torchscript(again, tmp_path / "policy.pt"))
    assert (scripted.risk_measure, scripted.cvar_alpha, scripted.risk_lambda) == (measure.name, measure.alpha,
                                                                                   measure.lam)
    with torch.no_grad():
        np.testing.assert_array_equal(scripted(torch.as_tensor(obs)).numpy(), want)
        np.testing.assert_allclose(scripted.risk_values(torch.as_tensor(obs)).numpy(), ref[measure.name],
                                   rtol=1e-5, atol=1e-5)


def test_risk_measure_comes_from_the_config(prepared_small, tmp_path):
    cfg = _cfg(prepared_small, "qrdqn", qrdqn={"n_quantiles": 8, "risk_measure": "cvar", "cvar_alpha": 0.1})
    env = make_env(cfg, None, split="train", data=prepared_small.env_data)
    model = build_model(cfg.agent, env, "cpu")
    assert model.policy.risk == RiskMeasure("cvar", alpha=0.1, lam=0.5)  # lambda: the section default
    assert model.policy.quantile_net.n_quantiles == 8
    model.save(tmp_path / "q.zip")
    kwargs = json.loads(zipfile.ZipFile(tmp_path / "q.zip").read("data"))["policy_kwargs"]
    assert (kwargs["risk_measure"], kwargs["cvar_alpha"], kwargs["n_quantiles"]) == ("cvar", 0.1, 8)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_resume_continues_the_same_run(prepared_small, tmp_path, algo):
    cfg = _cfg(prepared_small, algo)
    first = train(prepared_small, tmp_path / "run", cfg=cfg, total_timesteps=1000)
    ckpt = latest_checkpoint(tmp_path / "run")
    assert ckpt is not None and ckpt.name == f"{algo}_1000_steps.zip"
    assert (replay_buffer_for(ckpt) is not None) == ALGOS[algo].off_policy
    if not ALGOS[algo].off_policy:
        # saved after the last rollout's update: the checkpoint is the 1,000-step model itself
        np.testing.assert_array_equal(_params(load_model(ckpt)), _params(load_model(first.model_path)))
    resumed = train(prepared_small, tmp_path / "run", cfg=cfg, total_timesteps=2000, resume_from=ckpt)
    assert resumed.timesteps == 2000
    assert [e["timesteps"] for e in resumed.evaluations] == [1000.0, 2000.0]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [e["timesteps"] for e in metrics["evaluations"]] == [1000.0, 2000.0]
    assert latest_checkpoint(tmp_path / "run").name == f"{algo}_2000_steps.zip"
    assert not np.array_equal(_params(load_model(resumed.model_path)), _params(load_model(ckpt)))  # it learned
    if algo != "dqn":
        with pytest.raises(ValueError, match="cannot resume agent.algo=dqn"):
            train(prepared_small, tmp_path / "other", cfg=_cfg(prepared_small, "dqn"), total_timesteps=2000,
                  resume_from=ckpt)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_risk_callback_stops_every_algorithm(prepared_small, tmp_path, algo):
    cfg = _cfg(prepared_small, algo)
    strict = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={
        "stop_threshold": 1e-6, "threshold_floor": 1e-6, "patience": 2, "eval_freq": 250})})
    res = train(prepared_small, tmp_path / "s", cfg=strict, total_timesteps=2000, checkpoints=False)
    assert res.stopped_early and res.timesteps == 500


@pytest.mark.parametrize("algo", ["qrdqn", "ppo", "a2c"])
def test_init_weights_from_takes_new_hyperparameters(trained, prepared_small, tmp_path, algo):
    """PBT exploit: the donor's weights and step count, the recipient's hyperparameters."""
    change = {"qrdqn": {"learning_rate": 7e-4}, "ppo": {"ppo": {**SMALL["ppo"], "learning_rate": 7e-4}},
              "a2c": {"a2c": {**SMALL["a2c"], "learning_rate": 7e-4}}}[algo]
    cfg = _cfg(prepared_small, algo, gamma=0.95, **change)
    donor = trained[algo].model_path
    res = train(prepared_small, tmp_path / "r", cfg=cfg, total_timesteps=1500, init_weights_from=donor,
                checkpoints=False)
    m = load_model(res.model_path)
    assert m.learning_rate == 7e-4 and m.gamma == 0.95
    assert res.timesteps == 1500
    assert not np.array_equal(_params(m), _params(load_model(donor)))


def test_config_sections_are_validated_with_field_paths():
    with pytest.raises(ConfigError) as e:
        config_from_dict({"agent": {"algo": "sac", "qrdqn": {"risk_measure": "var", "cvar_alpha": 1.5},
                                    "ppo": {"n_steps": 32, "batch_size": 64}, "a2c": {"n_steps": 1},
                                    "net_arch": [64, 0]}})
    text = str(e.value)
    for needle in ("agent.algo:", "agent.qrdqn.risk_measure:", "agent.qrdqn.cvar_alpha: must be <= 1",
                   "agent.ppo: batch_size (64) must be <= n_steps (32)", "agent.a2c.n_steps: must be >= 2",
                   "agent.net_arch: every hidden layer"):
        assert needle in text, (needle, text)
    ok = config_from_dict({"agent": {"algo": "qrdqn", "qrdqn": {"risk_measure": "mean_std", "risk_lambda": 2}}})
    assert ok.agent.qrdqn.risk_lambda == 2.0 and ok.agent.ppo.n_steps == 2048  # other sections: defaults


@pytest.mark.parametrize("algo", list(ALGOS))
def test_evaluate_command_loads_each_algorithm(trained, prepared_small, tmp_path, algo):
    from typer.testing import CliRunner

    from intradayjules.agents.policy import policy_from_model
    from intradayjules.cli import app
    from intradayjules.config import dump_config
    from intradayjules.evaluate.evaluation import evaluate_policy

    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(dump_config(prepared_small.cfg))
    res = CliRunner().invoke(app, ["evaluate", "--model", str(trained[algo].model_path), "--config", str(cfg_path),
                                   "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output[res.output.index("{"):])
    want, _ = evaluate_policy(policy_from_model(load_model(trained[algo].model_path)), prepared_small.env_data,
                              prepared_small.cfg, "test")
    assert got["n_trades"] == want["n_trades"] and got["total_return"] == pytest.approx(want["total_return"])
