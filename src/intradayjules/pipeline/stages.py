"""Per-stage resume of the main job: ``runs/<name>/stages.json`` records what each stage completed.

The main job (``main_job.py``) runs study -> train -> baseline -> evaluate -> register -> report. A killed
run used to start training from step 0 although checkpoints existed. Now:

* ``StageLog.open(run_dir, cfg)`` reads ``stages.json`` (``{"config": <the resolved config, passwords
  redacted>, "stages": {stage: record}, "finished": bool}``). Written atomically (``.tmp`` + rename)
  after every stage, so a kill leaves the previous complete version.
* When the file is missing or its run **finished**, the run starts fresh: the log is reset and the
  checkpoints a previous run left in ``model/`` and ``baseline/`` are removed (a later kill must never
  resume from another run's steps).
* When the run did **not finish** and completed at least one stage, it is resumed, but only with the same
  config: a different one raises :class:`ResumeError` naming the first differing field (dotted path, both
  values); delete ``stages.json`` to start over with the new config instead. A log with no completed
  stage is simply restarted.
* ``study``: the Optuna storage resumes by itself (a study continues until ``tune.n_trials`` trials have
  finished, so a finished study runs no new trial); the record keeps its trial numbers and parameters.
* ``train`` / ``baseline`` (:meth:`StageLog.training`): a completed stage whose ``model.zip`` still has
  the recorded sha256 is not run again (its result is read back from the run directory: ``metrics.json``,
  ``evaluation.json``, the outputs); an incomplete one continues from the newest checkpoint with a valid
  signature (``agents/integrity.py``), through ``train(resume_from=...)``, which keeps the run's evaluation
  history and best model.
* ``register`` (:meth:`StageLog.once`): a version registered before the kill is not registered again.
* Evaluation and the report are recomputed (they are deterministic given the models and the seed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..agents import integrity
from ..agents.sb3 import _checkpoints
from ..config import ExperimentConfig
from ..errors import IntradayJulesError
from ..redact import redact_obj
from .train_run import TrainingRun, TrainResult

STAGES_FILE = "stages.json"
T = TypeVar("T")


class ResumeError(IntradayJulesError):
    """An unfinished run cannot be resumed with this config."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def config_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted field, old value, new value)`` for every field that differs between two config dumps."""
    a, b = _flat(old), _flat(new)
    return [(k, a.get(k, "<absent>"), b.get(k, "<absent>")) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def newest_signed_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest ``checkpoints/*_steps.zip`` of ``run_dir`` whose signature is valid (one a kill caught
    between writing and signing is skipped)."""
    for ckpt in reversed(_checkpoints(Path(run_dir) / "checkpoints")):
        if integrity.signature_state(ckpt) == "valid":
            return ckpt
    return None


class StageLog:
    """``stages.json`` of one run directory (module docstring)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], stages: dict[str, dict[str, Any]], resumed: bool):
        self.run_dir, self.config, self.stages, self.resumed = run_dir, config, stages, resumed
        self.path = run_dir / STAGES_FILE

    @classmethod
    def open(cls, run_dir: str | Path, cfg: ExperimentConfig) -> "StageLog":
        run_dir = Path(run_dir)
        config = redact_obj(cfg.model_dump(mode="json"))
        path = run_dir / STAGES_FILE
        old = None
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except ValueError as e:
                raise ResumeError(f"{path}: not readable JSON ({e}); delete it to start the run over") from None
        if old and not old.get("finished") and old.get("stages"):
            diff = config_difference(old.get("config") or {}, config)
            if diff:
                field, was, now = diff[0]
                more = f" (and {len(diff) - 1} more field(s))" if len(diff) > 1 else ""
                raise ResumeError(
                    f"{path}: the run in {run_dir} stopped after stage(s) {', '.join(old['stages'])} and can only "
                    f"be resumed with the same config, but {field} was {was!r} and is now {now!r}{more}. Run it "
                    f"again with the old value to resume, or delete {path} to start over with the new config")
            log = cls(run_dir, config, dict(old["stages"]), True)
        else:
            for sub in ("model", "baseline"):  # another run's checkpoints must never be resumed
                shutil.rmtree(run_dir / sub / "checkpoints", ignore_errors=True)
            log = cls(run_dir, config, {}, False)
        log._write(False)
        return log

    def _write(self, finished: bool) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"config": self.config, "stages": self.stages, "finished": finished},
                                  indent=2, default=str))
        os.replace(tmp, self.path)

    def done(self, stage: str) -> dict[str, Any] | None:
        return self.stages.get(stage)

    def record(self, stage: str, **info: Any) -> None:
        self.stages[stage] = {**info, "completed_at": time.time()}
        self._write(False)

    def finish(self) -> None:
        self._write(True)

    def once(self, stage: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``fn()``'s record, run only when ``stage`` has not completed (its recorded result otherwise)."""
        rec = self.done(stage)
        if rec is not None:
            return {k: v for k, v in rec.items() if k != "completed_at"}
        out = fn()
        self.record(stage, **out)
        return out

    def training(self, stage: str, directory: Path, run: Callable[[Path | None], T],
                 load: Callable[[Path, dict[str, Any]], T], model_of: Callable[[T], tuple[Path, str | None]],
                 say: Callable[[str], None] = lambda m: None) -> T:
        """A training stage into ``directory``: read back when completed (``load(directory, record)``, the
        model's sha256 checked), else ``run(checkpoint or None)`` from the newest signed checkpoint when
        resuming. ``model_of(result)`` -> (model zip, tracking run id) to record."""
        rec = self.done(stage)
        if rec is not None:
            zip_path = directory / "model.zip"
            if zip_path.is_file() and sha256_file(zip_path) == rec.get("model_sha256"):
                say(f"completed before the restart: {zip_path} (sha256 {rec['model_sha256'][:12]}), not trained again")
                return load(directory, rec)
            say(f"{zip_path} is missing or differs from the one recorded: training again")
        ckpt = newest_signed_checkpoint(directory) if self.resumed else None
        if ckpt is not None:
            say(f"resuming from checkpoint {ckpt.name} ({ckpt.stem.split('_')[-2]} steps)")
        result = run(ckpt)
        zip_path, run_id = model_of(result)
        self.record(stage, model_sha256=sha256_file(zip_path), run_id=run_id,
                    resumed_from=ckpt.name if ckpt is not None else None)
        return result


def load_train_result(directory: str | Path) -> TrainResult:
    """The :class:`TrainResult` of a completed training in ``directory``, read from its ``metrics.json``."""
    directory = Path(directory)
    m = json.loads((directory / "metrics.json").read_text())
    best = directory / "best_model.zip"
    return TrainResult(directory, directory / "model.zip", best if best.exists() else None, int(m["timesteps"]),
                       bool(m.get("stopped_early")), list(m.get("evaluations") or []), float(m.get("wall_s") or 0.0),
                       float(m.get("eval_s") or 0.0), m.get("best_objective"))


def load_training_run(directory: str | Path, rec: Mapping[str, Any]) -> TrainingRun:
    """The :class:`TrainingRun` of a completed ``training_run`` in ``directory`` (outputs as
    ``write_outputs`` names them; the tracking run from ``rec``)."""
    directory = Path(directory)
    names = {"torchscript": "policy.pt", "feature_spec": "feature_spec.json", "scaler": "scaler.json",
             "bundle": "model.bundle", "evaluation": "evaluation.json"}
    paths = {k: directory / f for k, f in names.items() if (directory / f).exists()}
    return TrainingRun(load_train_result(directory), paths, json.loads(paths["evaluation"].read_text()),
                       rec.get("run_id"))
