"""What a search returns, whichever backend ran it, and where it is written (``runs/tune/<study>/``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, dump_config
from ..errors import IntradayJulesError
from ..redact import redact_text
from ..rundir import check_name


class TuneError(IntradayJulesError):
    """A search could not start or continue (existing study without --resume, no GPU, ...)."""


@dataclass
class TuneResult:
    backend: str
    study: str
    run_dir: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any] | None
    n_complete: int
    n_pruned: int
    n_failed: int
    n_interrupted: int
    wall_s: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    storage: str | None = None

    @property
    def n_finished(self) -> int:
        """Trials that count towards the budget: complete, pruned, failed (not interrupted)."""
        return self.n_complete + self.n_pruned + self.n_failed

    def write(self) -> Path:
        path = Path(self.run_dir) / "summary.json"
        path.write_text(redact_text(json.dumps(asdict(self), indent=2, default=str)))  # storage URL password
        return path


def run_dir_for(cfg: ExperimentConfig, study: str, backend: str) -> Path:
    """Absolute ``<workdir>/tune/<study>`` (Ray: ``<workdir>/tune_ray``'s experiment folder sits inside)."""
    check_name(study, "study name (--study / tune.study_name)")
    base = Path(cfg.workdir)
    if not base.is_absolute():
        base = Path(os.getcwd()) / base
    d = base.resolve() / ("tune" if backend == "optuna" else "tune_ray") / study
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_config(cfg: ExperimentConfig, run_dir: Path) -> None:
    (run_dir / "config.yaml").write_text(dump_config(cfg))


def json_safe(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))
