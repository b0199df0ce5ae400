"""The standard artifact layout of a tracked training run, so every trainer logs the same way.

``log_training_outputs(run, model_zip=..., ...)`` uploads, each with its sha256 recorded as a run tag:

| artifact path            | what                                                              |
|--------------------------|-------------------------------------------------------------------|
| ``model/``               | pyfunc model around the SB3 zip (observation batch -> actions)    |
| ``export/<file>``        | exported TorchScript policy                                       |
| ``config/<file>``        | the resolved experiment config (YAML)                             |
| ``features/<file>``      | the feature spec and the scaler (training-session statistics)     |
| ``evaluation/<file>``    | evaluation JSON and the report                                    |
| ``lineage/config.json``  | the config as the registry's rerun reads it (with ``lineage``)    |

Metrics by step are logged by the caller (``run.log_metrics({...}, step=num_timesteps)``, e.g. from the
risk callback at each evaluation).
"""

from __future__ import annotations

from pathlib import Path

from .lineage import Lineage
from .registry import log_sb3_model


def log_training_outputs(run, *, model_zip: str | Path, torchscript: str | Path | None = None,
                         config_yaml: str | Path | None = None, feature_spec: str | Path | None = None,
                         evaluation_json: str | Path | None = None, report: str | Path | None = None,
                         scaler_json: str | Path | None = None,
                         lineage: Lineage | None = None, algo: str | None = None) -> dict[str, str]:
    """Upload a training run's outputs in the standard layout; returns artifact path -> sha256.
    With a disabled tracker (NoOpRun) nothing is uploaded and an empty mapping is returned. ``algo``: the
    SB3 class name (None: read from the zip, ``agents.algos.algo_of_zip``)."""
    if getattr(run, "run_id", None) is None:
        return {}
    digests = {"model/data/sb3/model.zip": log_sb3_model(run, model_zip, algo=algo, lineage=lineage)}
    for path, folder in ((torchscript, "export"), (config_yaml, "config"), (feature_spec, "features"), (scaler_json, "features"),
                         (evaluation_json, "evaluation"), (report, "evaluation")):
        if path is not None:
            p = Path(path)
            digests[f"{folder}/{p.name}"] = run.log_artifact(p, folder)
    return digests
