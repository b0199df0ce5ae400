import pytest

from intradayjules.config import ExperimentConfig


def small_config(tmp_path, **over) -> ExperimentConfig:
    """A small, fast multi-asset experiment on the synthetic market (2 liquid, 2 mid, 2 illiquid)."""
    base = {
        "name": "t", "workdir": str(tmp_path / "runs"),
        "data": {"synthetic": {"n_symbols": 6, "days": 45, "seed": 0}},
        "features": {"store_dir": str(tmp_path / "store")},
        "env": {"mode": "multi"},
        "agent": {"total_timesteps": 2000, "learning_starts": 300, "buffer_size": 5000, "checkpoint_freq": 1000,
                  "batch_size": 32, "target_update_interval": 250},
        "risk": {"eval_freq": 1000, "eval_episodes": 2},
        "tracking": {"enabled": False},
    }
    for k, v in over.items():
        base.setdefault(k, {}).update(v) if isinstance(v, dict) else base.__setitem__(k, v)
    return ExperimentConfig.model_validate(base)


@pytest.fixture(scope="module")
def prepared_small(tmp_path_factory):
    from intradayjules.pipeline.prepare import prepare

    tmp = tmp_path_factory.mktemp("prep")
    cfg = small_config(tmp)
    return prepare(cfg)


@pytest.fixture
def no_unpickling(monkeypatch):
    """Every unpickling entry point (pickle, cloudpickle, torch.load) raises while the test runs."""
    import pickle

    import cloudpickle
    import torch

    def forbidden(*a, **k):
        raise AssertionError("the bundle loader unpickled something")

    for mod, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (cloudpickle, "loads"),
                      (cloudpickle, "load"), (torch, "load")):
        monkeypatch.setattr(mod, name, forbidden)
