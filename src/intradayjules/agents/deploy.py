"""The deployable policy bundle: everything a live loop needs to act, in one verified directory.

``complete_bundle(bundle, cfg, env_data)`` adds to a bundle written by ``bundle.export_bundle`` (the
trainer's ``model.bundle/``; ``pipeline/train_run.write_outputs`` calls it for every final model)::

    model.bundle/
      manifest.json          + a "deployment" section (below) and every file's sha256 under "files"
      weights.safetensors    the acting network (bundle.py; DQN, QR-DQN, PPO, A2C)
      policy.pt              TorchScript greedy policy: float32 [N, D] -> int64 actions [N] (export.py)
      scaler.json            per-symbol feature standardisation fitted on the training sessions
      feature_spec.json      feature settings, calendar, pipeline and indicator code versions, columns
      config.json            the resolved experiment config (credentials redacted): market, risk, env...

``manifest["deployment"]`` (``version`` 1)::

    {"version": 1, "symbols": [...],            # order of the observation and of the actions
     "features": [...], "lookback": 5, "calendar": "XNYS", "bar_seconds": 300.0,
     "observation": {"dim": D, "dtype": "float32", "clip": 10.0, "standardize": true, "parts": [
         {"name": "window", "offset": 0, "shape": [L, K, F]},  # last L bars, oldest first
         {"name": "position_value", "offset": L*K*F, "size": K, "bound": 5.0},
         {"name": "gross_exposure", ..., "bound": 10.0}, {"name": "cash", ..., "bound": 10.0},
         {"name": "time_of_day", ...}]},
     "actions": {"mode": "multi", "n": 1 + 3K, "position_size": 0.25, "max_gross_exposure": 1.0,
                 "unfilled": "cancel", "map": "..."},    # the rule of env/actions.py
     "limits": {...},                          # the pre-trade limits (risk/pretrade_env.pretrade_limits_for)
     "splits": {"train": [first, last], "val": [...], "test": [...]},   # session dates
     "versions": {"package": ..., "feature_version": ..., "torch": ..., "numpy": ...},
     "files": {"policy": "policy.pt", "scaler": "scaler.json", "feature_spec": "feature_spec.json",
               "config": "config.json"}}

The observation and the action map are the environment's (``env/trading_env.py``, ``env/actions.py``);
``live/policy.py`` rebuilds both from this section alone. ``verify_bundle`` checks every listed file's
sha256; the registry records the manifest's sha256, so ``models:/NAME@ALIAS`` pins every part.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..config import ExperimentConfig
from ..env import EnvData
from ..env.actions import n_actions
from ..env.simulator import CASH_BOUND, EXPO_BOUND, POS_BOUND
from ..features.pipeline import feature_spec
from ..redact import redact_obj
from ..risk.pretrade_env import panel_bar_seconds, pretrade_limits_for
from .bundle import MANIFEST, SUPPORTED, BundleError, _sha256, is_bundle, load_policy, read_manifest, verify_bundle
from .export import export_torchscript

DEPLOYMENT_VERSION = 1
FILES = {"policy": "policy.pt", "scaler": "scaler.json", "feature_spec": "feature_spec.json",
         "config": "config.json"}
ACTION_MAP = ("single: 0 short, 1 flat, 2 long; multi: 0 no-op, 1 + 3k + j sets symbol k's target to j - 1 "
              "(short, flat, long); a target is floor(position_size * equity / close) shares (env/actions.py)")


def _json_number(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    return x


def _dates(sessions) -> list[str]:
    s = list(sessions)
    return [str(pd.Timestamp(s[0]).date()), str(pd.Timestamp(s[-1]).date())] if len(s) else []


def deployment_section(cfg: ExperimentConfig, env_data: EnvData) -> dict[str, Any]:
    """The manifest's ``deployment`` section for a policy trained on ``env_data`` under ``cfg``."""
    panel = env_data.panel
    symbols = [str(s) for s in panel.symbols]
    names = [str(f) for f in panel.feature_names]
    L, K, F = int(cfg.features.lookback), len(symbols), len(names)
    nf = L * K * F
    bar_seconds = panel_bar_seconds(panel)
    spec = json.dumps(feature_spec(cfg.features, cfg.data.calendar), sort_keys=True, default=str)
    import torch

    return {
        "version": DEPLOYMENT_VERSION, "symbols": symbols, "features": names, "lookback": L,
        "calendar": cfg.data.calendar, "bar_seconds": bar_seconds,
        "observation": {"dim": nf + K + 3, "dtype": "float32", "clip": float(cfg.env.obs_clip),
                        "standardize": bool(cfg.env.standardize and panel.scaler is not None), "parts": [
                            {"name": "window", "offset": 0, "shape": [L, K, F]},
                            {"name": "position_value", "offset": nf, "size": K, "bound": POS_BOUND},
                            {"name": "gross_exposure", "offset": nf + K, "size": 1, "bound": EXPO_BOUND},
                            {"name": "cash", "offset": nf + K + 1, "size": 1, "bound": CASH_BOUND},
                            {"name": "time_of_day", "offset": nf + K + 2, "size": 1}]},
        "actions": {"mode": cfg.env.mode, "n": n_actions(K, cfg.env.mode == "multi"),
                    "position_size": float(cfg.env.position_size),
                    "max_gross_exposure": float(cfg.env.max_gross_exposure), "unfilled": cfg.market.unfilled,
                    "map": ACTION_MAP},
        "limits": {k: _json_number(v) for k, v in asdict(pretrade_limits_for(cfg, bar_seconds)).items()},
        "splits": {k: _dates(v) for k, v in env_data.splits.items()},
        "versions": {"package": __version__,
                     "feature_version": hashlib.blake2b(spec.encode(), digest_size=8).hexdigest(),
                     "torch": torch.__version__, "numpy": np.__version__},
        "files": dict(FILES),
    }


def deployable(path: str | Path) -> bool:
    """Whether :func:`complete_bundle` can complete this bundle: there is one and its algorithm is one
    the bundle holds (every algorithm of the table, each with a TorchScript export)."""
    return is_bundle(path) and read_manifest(path).get("algorithm") in SUPPORTED


def complete_bundle(path: str | Path, cfg: ExperimentConfig, env_data: EnvData) -> Path:
    """Add the TorchScript policy, scaler, feature spec, config and the ``deployment`` section to the
    bundle at ``path`` (module docstring). The manifest is replaced atomically, last."""
    path = Path(path)
    manifest = verify_bundle(path)
    if env_data.panel.scaler is None and cfg.env.standardize:
        raise BundleError(f"{path}: the env data has no scaler although env.standardize is on")
    export_torchscript(load_policy(path), path / FILES["policy"])
    scaler = env_data.panel.scaler
    (path / FILES["scaler"]).write_text(scaler.to_json() if scaler is not None else "null")
    (path / FILES["feature_spec"]).write_text(
        json.dumps(feature_spec(cfg.features, cfg.data.calendar), indent=1, default=str))
    (path / FILES["config"]).write_text(json.dumps(redact_obj(cfg.model_dump(mode="json")), indent=1))
    section = deployment_section(cfg, env_data)
    dim = manifest["observation_space"]["shape"]
    if list(dim) != [section["observation"]["dim"]]:
        raise BundleError(f"{path / MANIFEST}: observation_space {dim} is not the deployment layout's "
                          f"{section['observation']['dim']} (a model of another env?)")
    files = dict(manifest["files"])
    for name in FILES.values():
        files[name] = {"sha256": _sha256(path / name), "bytes": (path / name).stat().st_size}
    manifest["files"] = files
    manifest["deployment"] = section
    tmp = path / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1, allow_nan=False))
    tmp.replace(path / MANIFEST)
    return path


def read_deployment(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(manifest, deployment)`` of a bundle, after checking every file's sha256; raises
    ``BundleError`` for a bundle without a deployment section (an older or partial export)."""
    path = Path(path)
    m = verify_bundle(path)
    d = m.get("deployment")
    if not isinstance(d, dict):
        raise BundleError(f"{path / MANIFEST}: no deployment section: this bundle holds the network only "
                          "(re-export it with intradayjules.agents.deploy.complete_bundle, or use the "
                          "model.bundle/ of a run trained with this version)")
    if d.get("version") != DEPLOYMENT_VERSION:
        raise BundleError(f"{path / MANIFEST}: deployment version {d.get('version')!r}; this version reads "
                          f"{DEPLOYMENT_VERSION}")
    for key, name in FILES.items():
        if d.get("files", {}).get(key) != name or name not in m["files"]:
            raise BundleError(f"{path / MANIFEST}: deployment file {key} ({name}) is not listed with a sha256")
    return m, d


__all__ = ["DEPLOYMENT_VERSION", "FILES", "complete_bundle", "deployable", "deployment_section", "read_deployment",
           "read_manifest"]
