"""A trained deployable bundle and the bars of its synthetic market, shared by the paper-loop tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from intradayjules.config import ExperimentConfig, SyntheticConfig
from intradayjules.data.synthetic import generate

SYNTH = {"n_symbols": 6, "days": 45, "seed": 0}


def small_config(tmp_path: Path, **over) -> ExperimentConfig:
    """The agents tests' small multi-asset experiment (2 liquid, 2 mid, 2 illiquid, 45 sessions)."""
    base = {
        "name": "paper", "workdir": str(tmp_path / "runs"),
        "data": {"synthetic": dict(SYNTH)},
        "features": {"store_dir": str(tmp_path / "store")},
        "env": {"mode": "multi"},
        "agent": {"total_timesteps": 2000, "learning_starts": 300, "buffer_size": 5000, "checkpoint_freq": 1000,
                  "batch_size": 32, "target_update_interval": 250},
        "risk": {"eval_freq": 1000, "eval_episodes": 2},
        "tracking": {"enabled": False},
    }
    base.update(over)
    return ExperimentConfig.model_validate(base)


@dataclass
class Deployed:
    cfg: ExperimentConfig
    run_dir: Path
    bundle: Path
    bars: Path  # a `data synth` folder: bars.parquet + universe.parquet of the same market


@pytest.fixture(scope="session")
def deployed(tmp_path_factory) -> Deployed:
    """A small DQN trained on the synthetic market (train -> write_outputs: the deployable bundle)."""
    from intradayjules.pipeline.prepare import prepare
    from intradayjules.pipeline.train_run import train, write_outputs

    tmp = tmp_path_factory.mktemp("deployed")
    cfg = small_config(tmp)
    prepared = prepare(cfg)
    result = train(prepared, tmp / "run", checkpoints=False)
    write_outputs(result, prepared)
    bars = tmp / "bars"
    generate(SyntheticConfig(**SYNTH)).write(bars)
    return Deployed(cfg, tmp / "run", tmp / "run" / "model.bundle", bars)
