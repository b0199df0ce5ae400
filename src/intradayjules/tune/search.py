"""One entry point for a search with either backend, with MLflow nested runs when tracking is on.

With tracking on, this (coordinating) process opens the study's parent run before any worker starts,
adds ``intradayjules.track.tune_callbacks:from_config`` to ``tune.callbacks`` so every worker (Optuna)
or the driver (Ray) writes one child run per trial under it, and closes the study at the end (leftover
RUNNING children of dead workers become KILLED).
"""

from __future__ import annotations

from pathlib import Path

from ..config import ExperimentConfig
from ..track.tune_callbacks import from_config
from .backend import get_backend
from .results import TuneResult

TRACK_CALLBACK = "intradayjules.track.tune_callbacks:from_config"


def absolute_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config with every path made absolute against this process's working directory, so workers
    started elsewhere (Ray trial directories, other machines with a shared file system) find the same
    work dir, feature store and data."""
    def absolute(p):
        return None if p is None else Path(p).expanduser().resolve()

    upd = {"workdir": absolute(cfg.workdir),
           "features": cfg.features.model_copy(update={"store_dir": absolute(cfg.features.store_dir)}),
           "data": cfg.data.model_copy(update={"path": absolute(cfg.data.path)}),
           "tune": cfg.tune.model_copy(update={"data_path": absolute(cfg.tune.data_path)})}
    return cfg.model_copy(update=upd)


def run_search(cfg: ExperimentConfig, *, track: bool | None = None, resume: bool = False, progress: bool = True,
               token_file: str | None = None) -> tuple[TuneResult, object | None]:
    """Run ``cfg.tune`` with its backend; returns the result and the study's ``TrialTracking`` (or None)."""
    track = cfg.tracking.enabled if track is None else track
    cfg = absolute_paths(cfg)  # Ray runs trials in their own working directories
    coordinator = None
    if track:
        if TRACK_CALLBACK not in cfg.tune.callbacks:
            cfg = cfg.model_copy(update={"tune": cfg.tune.model_copy(
                update={"callbacks": [*cfg.tune.callbacks, TRACK_CALLBACK]})})
        coordinator = from_config(cfg)  # the parent run exists before any worker looks for it
    status = "FAILED"
    try:
        result = get_backend(cfg.tune.backend).run(cfg, resume=resume, progress=progress, token_file=token_file)
        status = "FINISHED"
        return result, coordinator
    finally:
        if coordinator is not None:
            coordinator.close(study_finished=True, status=status)
