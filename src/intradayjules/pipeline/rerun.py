"""Retrain a registered model from its lineage: the pipeline's ``retrain`` for ``track.rerun``.

``retrain(cfg, lineage)`` prepares the data the lineage recorded (``--data`` path or the config's own)
and runs one training run into ``<workdir>/<name>-rerun``; ``track.rerun.rerun_version`` checks the
config digest and the data fingerprint before calling it.
"""

from __future__ import annotations

from typing import Any

from ..config import ExperimentConfig
from ..track.lineage import Lineage
from ..track.rerun import data_path_of
from .prepare import prepare, run_dir
from .train_run import TrainingRun, training_run


def retrain(cfg: ExperimentConfig, lineage: Lineage, tracker: Any = None) -> TrainingRun:
    prepared = prepare(cfg, data_path_of(lineage))
    return training_run(prepared, run_dir(cfg, f"{cfg.name}-rerun"), cfg=cfg, tracker=tracker,
                        name=f"{cfg.name}-rerun")
