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

``log_report_outputs(tracker, run_id, out_dir)`` adds what a main job writes once it is done, under
``report/``: ``report.html``, ``report_data.json``, ``summary.json`` and every ``*.parquet`` table in
``out_dir`` or below it (keeping its relative path, e.g. ``report/tables/daily.parquet``), each with its
sha256; with ``metrics`` it also logs those (finite numbers only) as ``test/<name>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


REPORT_FILES = ("report.html", "report_data.json", "summary.json")
REPORT_ARTIFACT = "report"


def log_report_outputs(tracker: Any, run_id: str | None, out_dir: str | Path,
                       metrics: Mapping[str, Any] | None = None, tables: bool = True) -> dict[str, str]:
    """Upload a finished job's report files and parquet tables to run ``run_id`` (module docstring);
    returns artifact path -> sha256. Nothing happens when ``run_id`` is None (tracking off)."""
    if run_id is None:
        return {}
    out_dir = Path(out_dir)
    run = tracker.get_run(run_id)
    digests = {}
    for name in REPORT_FILES:
        if (out_dir / name).is_file():
            digests[f"{REPORT_ARTIFACT}/{name}"] = run.log_artifact(out_dir / name, REPORT_ARTIFACT)
    for table in sorted(out_dir.rglob("*.parquet")) if tables else ():
        folder = "/".join(p for p in (REPORT_ARTIFACT, table.parent.relative_to(out_dir).as_posix()) if p != ".")
        digests[f"{folder}/{table.name}"] = run.log_artifact(table, folder)
    if metrics:
        run.log_metrics({f"test/{k}": float(v) for k, v in metrics.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))})
        run.flush()
    return digests
