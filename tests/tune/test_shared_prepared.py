"""The DQN trial's data prepared once per study: the bundle workers load instead of preparing again."""

from __future__ import annotations

import pytest

from intradayjules import experiment
from intradayjules.config import config_from_dict
from intradayjules.tune import objective


def _cfg(tmp_path, **tune):
    return config_from_dict({"workdir": str(tmp_path / "runs"), "features": {"store_dir": str(tmp_path / "fs")},
                             "data": {"synthetic": {"n_symbols": 3, "days": 30}, "tiers": {"adv_window_days": 5}},
                             "tune": tune})


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(objective, "_PREPARED", {})
    monkeypatch.delenv(objective.PREPARED_ENV, raising=False)


def test_workers_load_the_bundle_instead_of_preparing(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    path = objective.share_prepared(cfg, tmp_path)
    assert path == tmp_path / "prepared.pkl" and path.exists()
    made = objective._PREPARED[next(iter(objective._PREPARED))]

    # a worker: fresh cache, the bundle in the environment, and prepare() must not be called
    monkeypatch.setattr(objective, "_PREPARED", {})
    monkeypatch.setenv(objective.PREPARED_ENV, str(path))
    calls = []
    monkeypatch.setattr(experiment, "prepare", lambda *a, **k: calls.append(1) or made)
    got = objective.prepared_for(cfg, cfg.tune.data_path)
    assert calls == [] and got.bars is None  # loaded from the bundle (raw bars left out)
    assert got.lineage() == made.lineage()
    assert (got.env_data.panel.feat == made.env_data.panel.feat).all()
    assert list(got.env_data.splits["train"]) == list(made.env_data.splits["train"])

    # a trial that changes the data (another key) prepares its own
    other = cfg.model_copy(update={"env": cfg.env.model_copy(update={"obs_clip": 5.0})})
    monkeypatch.setattr(objective, "_PREPARED", {})
    objective.prepared_for(other, other.tune.data_path)
    assert calls == [1]


def test_only_the_default_dqn_trial_gets_a_bundle(tmp_path):
    cfg = _cfg(tmp_path, trial_fn="/abs/objectives.py:noisy_quadratic")
    assert objective.share_prepared(cfg, tmp_path) is None
    assert not (tmp_path / "prepared.pkl").exists()
