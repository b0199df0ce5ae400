"""Tuning each algorithm: its default search space, the default trial with the Optuna backend (worker
processes) and with Ray Tune (ASHA and PBT, slow)."""

from __future__ import annotations

import math

import optuna
import pytest

from intradayjules.agents.algos import ALGOS
from intradayjules.config import ExperimentConfig, config_from_dict
from intradayjules.tune.space import ARCHITECTURE_PARAMS, DEFAULT_SPACES, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
OWN = {"dqn": "agent.", "qrdqn": "agent.qrdqn.", "ppo": "agent.ppo.", "a2c": "agent.a2c."}


@pytest.mark.parametrize("algo", list(ALGOS))
def test_default_space_per_algorithm_samples_valid_configs(algo):
    assert set(DEFAULT_SPACES) == set(ALGOS)
    cfg = config_from_dict({"agent": {"algo": algo}})
    space = SearchSpace.from_config(cfg.tune, algo)
    names = {p.name for p in space.params}
    assert names == set(DEFAULT_SPACES[algo])
    assert any(n.startswith(OWN[algo]) and n != "agent.net_arch" for n in names)  # the algorithm's own knobs
    if algo in ("ppo", "a2c"):  # nothing of the value-based section: it would be ignored
        assert not names & {"agent.learning_rate", "agent.buffer_size", "agent.batch_size"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        params = space.materialize(space.suggest(study.ask()))
        c = space.apply(cfg, params)  # validates, e.g. ppo.batch_size <= ppo.n_steps
        for name, value in params.items():
            obj = c
            for part in name.split("."):
                obj = getattr(obj, part)
            assert obj == pytest.approx(value), name
        assert c.agent.algo == algo


def test_unknown_algo_space_and_architecture_params_exist():
    for name in ARCHITECTURE_PARAMS:  # every shape parameter is a real config path in some default space
        assert any(name in DEFAULT_SPACES[a] for a in ALGOS)
    with pytest.raises(Exception, match="no default search space for 'sac'"):
        SearchSpace.from_config(ExperimentConfig().tune, "sac")


def _tune_cfg(tmp_path, algo: str, **tune) -> ExperimentConfig:
    return config_from_dict({
        "name": f"tune-{algo}", "workdir": str(tmp_path / "runs"),
        "data": {"synthetic": {"n_symbols": 3, "days": 40, "seed": 0}},
        "features": {"store_dir": str(tmp_path / "store")},
        "env": {"mode": "multi", "n_assets": 3},
        "agent": {"algo": algo, "learning_starts": 100, "buffer_size": 2000},
        "risk": {"eval_episodes": 2},
        "tune": {"trial_timesteps": 600, "reports_per_trial": 2, **tune,
                 "search_space": {**_small_space(algo), **tune.get("search_space", {})}},
        "tracking": {"enabled": False},
    })


def _small_space(algo: str) -> dict:
    """The default space, with rollouts short enough for a 600-step trial."""
    space = dict(DEFAULT_SPACES[algo])
    if algo == "ppo":
        space["agent.ppo.n_steps"] = {"type": "categorical", "choices": [128, 256]}
        space["agent.ppo.batch_size"] = {"type": "categorical", "choices": [32, 64]}
        space["agent.ppo.n_epochs"] = {"type": "int", "low": 1, "high": 3}
    if algo in ("dqn", "qrdqn"):
        space["agent.buffer_size"] = {"type": "int", "low": 500, "high": 2000}
    space["agent.net_arch"] = {"type": "categorical", "choices": [[32], [32, 32]]}
    return space


class _Reporter:
    checkpoint_every = None

    def __init__(self):
        self.reports: list[tuple[int, float]] = []

    def report(self, step: int, value: float) -> bool:
        self.reports.append((step, value))
        return False

    def checkpoint_dir(self):
        raise AssertionError("no checkpoints without PBT")

    def restore_dir(self):
        return None


@pytest.mark.parametrize("algo", list(ALGOS))
def test_default_trial_trains_each_algorithm(tmp_path, algo):
    """The default trial function, called as a backend calls it, with a sampled point of the space."""
    from intradayjules.tune.trial import load_callable

    cfg = _tune_cfg(tmp_path, algo)
    space = SearchSpace.from_config(cfg.tune, algo)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = space.materialize(space.suggest(trial))
    reporter = _Reporter()
    value = load_callable(cfg.tune.trial_fn)(params, space.apply(cfg, params), reporter)
    assert [s for s, _ in reporter.reports] == [1, 2]
    assert math.isfinite(value)
    if ALGOS[algo].off_policy:  # on-policy runs may end their last rollout past 600 steps, judged once more there
        assert value == pytest.approx(sum(v for _, v in reporter.reports) / 2)  # mean of the last (<= 3) evaluations


@pytest.mark.parametrize("algo", [pytest.param("dqn", marks=pytest.mark.slow), "qrdqn",
                                  pytest.param("ppo", marks=pytest.mark.slow),
                                  pytest.param("a2c", marks=pytest.mark.slow)])
def test_default_trial_with_optuna_worker_processes(tmp_path, algo):
    from intradayjules.tune.optuna_backend import run_optuna

    cfg = _tune_cfg(tmp_path, algo)
    res = run_optuna(cfg, workers=1, n_trials=2, study=f"s-{algo}", pruner="none", progress=False)
    assert res.n_complete == 2, [t.get("fail_reason") for t in res.trials]
    for t in res.trials:
        assert t["last_step"] == 2  # two reports of the validation objective
        assert any(k.startswith(OWN[algo]) for k in t["params"])


def logged_default_trial(params, cfg, reporter):
    """The default trial, logging to $IJ_TEST_LOG when it starts from a PBT donor's checkpoint."""
    import json
    import os

    from intradayjules.pipeline.trial import dqn_trial

    if reporter.restore_dir() is not None:
        with open(os.environ["IJ_TEST_LOG"], "a") as f:
            f.write(json.dumps({"restore": str(reporter.restore_dir()), "net_arch": params["agent.net_arch"]}) + "\n")
    return dqn_trial(params, cfg, reporter)


@pytest.mark.slow
@pytest.mark.parametrize("algo,scheduler", [("qrdqn", "pbt"), ("ppo", "pbt"), ("a2c", "asha")])
def test_default_trial_with_ray_tune(tmp_path, monkeypatch, algo, scheduler):
    """Ray Tune runs the default trial for the algorithm; with PBT, exploiting trials start from a donor's
    checkpoint (agents.sb3.learn init_weights_from), which needs the donor's network shape."""
    pytest.importorskip("ray")
    import shutil
    import tempfile
    from pathlib import Path

    from intradayjules.tune import cluster
    from intradayjules.tune.ray_backend import run_ray

    tmp = Path(tempfile.mkdtemp(prefix="ijray_", dir="/tmp"))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(cluster.TOKEN_ENV, str(tmp / "token"))
    log = tmp_path / "restores.jsonl"
    monkeypatch.setenv("IJ_TEST_LOG", str(log))
    try:
        cfg = _tune_cfg(tmp_path, algo, reports_per_trial=6, pbt_perturbation_interval=2, trial_timesteps=1200,
                        trial_fn=f"{Path(__file__).resolve()}:logged_default_trial")
        res = run_ray(cfg, n_trials=4, study=f"r-{algo}", scheduler=scheduler, num_cpus=2, temp_dir=str(tmp))
        assert res.n_failed == 0, [t.get("fail_reason") for t in res.trials]
        assert res.n_complete + res.n_pruned == 4
        if scheduler == "pbt":  # trials really started from donors (whose net_arch they kept)
            assert log.exists() and log.read_text().count("restore") >= 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
