"""The search-backend protocol and the registry of backends by name (``tune.backend``).

A backend runs a study (``run``), says whether a study of that name already has trials (``exists``: the
main job resumes it then) and describes a finished study for reports (``details``: trials and parameter
importances). ``optuna`` (worker processes on a shared storage) and ``ray`` (Ray Tune) implement it;
callers pick one with :func:`get_backend` and never branch on the name. ``optuna`` and ``ray`` themselves
are imported only when a backend runs.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from ..config import ExperimentConfig
from ..errors import ConfigError
from .optuna_backend import open_storage, run_optuna, storage_spec
from .ray_backend import can_restore, run_ray
from .results import TuneResult, run_dir_for


class SearchBackend(Protocol):
    name: str

    def run(self, cfg: ExperimentConfig, *, resume: bool, progress: bool,
            token_file: str | None = None) -> TuneResult: ...

    def exists(self, cfg: ExperimentConfig, study: str) -> bool: ...

    def details(self, result: TuneResult) -> dict[str, Any]: ...


def trial_rows(result: TuneResult) -> list[dict[str, Any]]:
    """One row per trial (number, id, state, last reported value, last step, seconds)."""
    rows = []
    for i, t in enumerate(result.trials):
        number = int(t["id"]) if str(t["id"]).isdigit() else i  # Ray trial ids are names
        rows.append({"number": number, "id": str(t["id"]), "state": t["state"], "value": t.get("value"),
                     "last_step": t.get("last_step"), "seconds": t.get("seconds")})
    return rows


class OptunaBackend:
    name = "optuna"

    def run(self, cfg: ExperimentConfig, *, resume: bool, progress: bool,
            token_file: str | None = None) -> TuneResult:
        return run_optuna(cfg, resume=resume, progress=progress)

    def exists(self, cfg: ExperimentConfig, study: str) -> bool:
        import optuna

        spec = storage_spec(cfg.tune.storage, run_dir_for(cfg, study, "optuna"))
        return study in optuna.study.get_all_study_names(storage=open_storage(spec))

    def details(self, result: TuneResult) -> dict[str, Any]:
        """Trials (pruned ones with their last intermediate value) and parameter importances (fANOVA,
        or PED-ANOVA when fANOVA is unavailable); a note instead of importances when neither works."""
        import optuna

        trials = trial_rows(result)
        if not result.storage:
            return {"trials": trials, "importances": {}}
        try:
            study = optuna.load_study(study_name=result.study, storage=open_storage(result.storage))
            by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
            for row in trials:
                t = by_number.get(row["number"])
                if t is not None and row["value"] is None and t.intermediate_values:
                    row["value"] = t.intermediate_values[max(t.intermediate_values)]
            importances: dict[str, float] = {}
            complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
            if len(complete) >= 2:
                try:
                    importances = optuna.importance.get_param_importances(study)
                except (ImportError, RuntimeError, ValueError):
                    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
                    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except Exception as e:  # noqa: BLE001 - the report says why instead of failing the run
            return {"trials": trials, "importances": {},
                    "note": f"parameter importances unavailable: {type(e).__name__}: {e}"}
        return {"trials": trials,
                "importances": {k: float(v) for k, v in importances.items() if math.isfinite(v)}}


class RayBackend:
    name = "ray"

    def run(self, cfg: ExperimentConfig, *, resume: bool, progress: bool,
            token_file: str | None = None) -> TuneResult:
        return run_ray(cfg, resume=resume, token_file=token_file, verbose=1 if progress else 0)

    def exists(self, cfg: ExperimentConfig, study: str) -> bool:
        return can_restore(run_dir_for(cfg, study, "ray"))

    def details(self, result: TuneResult) -> dict[str, Any]:
        return {"trials": trial_rows(result), "importances": {}}


BACKENDS: dict[str, SearchBackend] = {"optuna": OptunaBackend(), "ray": RayBackend()}


def get_backend(name: str) -> SearchBackend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError([f"tune.backend: unknown backend {name!r}; one of {', '.join(BACKENDS)}"]) from None
