"""The DQN trainer: run directory, seeded reproducibility, resume, early stopping, export parity."""

import json

import numpy as np
import torch

from intradayjules.agents.dqn import latest_checkpoint, load_model, replay_buffer_for
from intradayjules.config import with_risk_profile
from intradayjules.pipeline.train_run import train
from intradayjules.agents.export import export_torchscript, latency_us, load_torchscript, parity, random_walk_observations

from .conftest import small_config


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()]).numpy()


def test_run_directory_and_seeded_reproducibility(prepared_small, tmp_path):
    a = train(prepared_small, tmp_path / "a")
    b = train(prepared_small, tmp_path / "b")
    for name in ("config.yaml", "lineage.json", "model.zip", "metrics.json", "progress.csv"):
        assert (tmp_path / "a" / name).exists(), name
    lineage = json.loads((tmp_path / "a" / "lineage.json").read_text())
    assert lineage["data_fingerprint"] == prepared_small.data_fingerprint and lineage["feature_key"]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["timesteps"] == 2000 and len(metrics["evaluations"]) == 2
    assert {"risk/composite", "eval/objective", "risk/illiquid_share"} <= set(metrics["evaluations"][0])
    np.testing.assert_array_equal(_params(load_model(a.model_path)), _params(load_model(b.model_path)))
    other_cfg = prepared_small.cfg.model_copy(update={"agent": prepared_small.cfg.agent.model_copy(update={"seed": 1})})
    c = train(prepared_small, tmp_path / "c", cfg=other_cfg)
    assert not np.array_equal(_params(load_model(a.model_path)), _params(load_model(c.model_path)))


def test_resume_from_checkpoint_continues_the_step_count(prepared_small, tmp_path):
    first = train(prepared_small, tmp_path / "r", total_timesteps=1000)
    assert first.timesteps == 1000
    ckpt = latest_checkpoint(tmp_path / "r")
    assert ckpt is not None and ckpt.name == "dqn_1000_steps.zip"
    assert replay_buffer_for(ckpt) == ckpt.parent / "replay_buffer_1000.pkl"
    resumed = train(prepared_small, tmp_path / "r2", total_timesteps=2000, resume_from=ckpt)
    assert resumed.timesteps == 2000
    assert [e["timesteps"] for e in resumed.evaluations] == [2000.0]


def test_risk_callback_stops_training_when_risk_runs_away(prepared_small, tmp_path):
    cfg = prepared_small.cfg
    strict = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={
        "stop_threshold": 1e-6, "threshold_floor": 1e-6, "patience": 2, "eval_freq": 250})})
    res = train(prepared_small, tmp_path / "s", cfg=strict, total_timesteps=2000)
    assert res.stopped_early
    assert res.timesteps == 500  # two consecutive violating evaluations at 250 and 500 steps
    lenient = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"eval_freq": 250})})
    res2 = train(prepared_small, tmp_path / "l", cfg=lenient, total_timesteps=1000)
    assert not res2.stopped_early and res2.timesteps == 1000


def test_risk_profile_switch_keeps_explicit_values(tmp_path):
    cfg = small_config(tmp_path, risk={"illiquid_penalty_multiplier": 4.0})
    off = with_risk_profile(cfg, "off")
    assert off.risk.profile == "off" and off.risk.drawdown_penalty == 0.0
    assert off.risk.illiquid_penalty_multiplier == 4.0  # explicit value wins over the profile
    cons = with_risk_profile(cfg, "conservative")
    assert cons.risk.stop_threshold == 0.60 and cons.risk.eval_freq == 1000


def test_torchscript_export_matches_sb3_predict(prepared_small, tmp_path):
    res = train(prepared_small, tmp_path / "e", total_timesteps=1000)
    model = load_model(res.model_path)
    path = export_torchscript(model, tmp_path / "policy.pt")
    scripted = load_torchscript(path)
    from intradayjules.env import make_env

    env = make_env(prepared_small.cfg, None, split="test", data=prepared_small.env_data)
    obs = random_walk_observations(env, 1000)
    assert parity(model, scripted, obs) == 1.0
    with torch.no_grad():
        q_sb3 = model.q_net(torch.as_tensor(obs)).numpy()
        q_ts = scripted.q_values(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(q_ts, q_sb3, rtol=1e-6, atol=1e-6)
    lat = latency_us(scripted, obs.shape[1], n=200)
    assert 0 < lat["p50"] <= lat["p99"]


def test_resume_in_the_same_run_keeps_history_and_best(prepared_small, tmp_path):
    first = train(prepared_small, tmp_path / "same", total_timesteps=1000)
    best_before = first.best_objective
    ckpt = latest_checkpoint(tmp_path / "same")
    resumed = train(prepared_small, tmp_path / "same", total_timesteps=2000, resume_from=ckpt)
    steps = [e["timesteps"] for e in resumed.evaluations]
    assert steps == [1000.0, 2000.0]
    assert resumed.best_objective == max(best_before, resumed.evaluations[-1]["eval/objective"])
    metrics = json.loads((tmp_path / "same" / "metrics.json").read_text())
    assert [e["timesteps"] for e in metrics["evaluations"]] == [1000.0, 2000.0]


def test_init_weights_from_takes_new_hyperparameters(prepared_small, tmp_path):
    """PBT exploit: the donor's network weights, the recipient's hyperparameters, the donor's step count."""
    donor = train(prepared_small, tmp_path / "donor", total_timesteps=1000)
    cfg = prepared_small.cfg
    new = cfg.model_copy(update={"agent": cfg.agent.model_copy(update={"learning_rate": 7e-4, "gamma": 0.95})})
    res = train(prepared_small, tmp_path / "recipient", cfg=new, total_timesteps=1500, init_weights_from=donor.model_path)
    m = load_model(res.model_path)
    assert m.learning_rate == 7e-4 and m.gamma == 0.95
    assert res.timesteps == 1500  # continued from the donor's 1000 steps
    # learning waits for fresh transitions after the (empty-buffer) restart: with learning_starts 300 the
    # 500 new steps include 200 of learning, so the weights moved away from the donor's
    assert not np.array_equal(_params(m), _params(load_model(donor.model_path)))
