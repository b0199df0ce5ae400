"""Experiment tracking (MLflow) and the model registry, with lineage.

Importing this package does not import mlflow; see docs/tracking.md for the API. Entry points:
``resolve_tracking``, ``make_tracker`` / ``Tracker`` / ``NoOpTracker`` (runs, studies, trials),
``Lineage`` and ``flatten_config``, ``register_model``, ``resolve_model`` / ``load_policy`` (the one
verified loader, ``loader.py``) / ``load_model`` / ``load_sb3`` (accept ``models:/NAME@ALIAS``),
``promote``, ``rerun_version``,
``log_training_outputs`` (standard artifact layout of a training run), and
``tune_callbacks.TrialTracking`` (nested trial runs as tune-layer callbacks).
"""

from __future__ import annotations

from .lineage import IntegrityError, Lineage, flatten_config, git_state, sha256_file
from .mlflow_tracking import NoOpTracker, Run, Tracker, make_tracker
from .protocol import RunProtocol, TrackerProtocol
from .target import TrackingError, TrackingTarget, TrackingUnreachableError, check_reachable, resolve_tracking
from .registry import (DEFAULT_ALIAS, RegistryError, ResolvedModel, VersionInfo, get_version, list_models,
                       list_versions, log_sb3_model, promote, register_model, resolve_model, resolve_model_uri,
                       write_sha256_sidecar)
from .loader import ResolvedBundle, load_model, load_policy, load_sb3, resolve_bundle
from .rerun import LineageMismatchError, plan_rerun, rerun_version
from .outputs import log_report_outputs, log_training_outputs

__all__ = ["DEFAULT_ALIAS", "IntegrityError", "Lineage", "LineageMismatchError", "NoOpTracker", "RegistryError",
           "RunProtocol", "TrackerProtocol",
           "ResolvedModel", "Run", "Tracker", "TrackingError", "TrackingTarget", "TrackingUnreachableError",
           "VersionInfo", "check_reachable", "flatten_config", "get_version", "git_state", "list_models",
           "list_versions", "load_model", "load_policy", "load_sb3", "log_sb3_model", "log_report_outputs", "resolve_bundle", "ResolvedBundle", "log_training_outputs", "make_tracker", "plan_rerun", "promote",
           "register_model", "rerun_version", "resolve_model", "resolve_model_uri", "resolve_tracking", "sha256_file",
           "write_sha256_sidecar"]
