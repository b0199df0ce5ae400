"""MLflow nested runs for tuning, as tune-layer callbacks (``intradayjules.tune.trial.TrialCallbacks``).

One parent run per study, one child run per trial::

    tracking = TrialTracking.for_study(tracker, "study-1", params=flatten_config(cfg))
    # the backends then call, per trial (Optuna: in the worker that owns it; Ray: in the driver)
    tracking.on_trial_start(trial_id, params)
    tracking.on_report(trial_id, step, value)           # metric "objective" at ``step``
    tracking.on_trial_end(trial_id, params, state, value)  # state: complete | pruned | failed
    tracking.close()                                      # end the study: leftover RUNNING -> KILLED

The parent run carries the study's best value so far: after each complete trial (and once more at
``close``) the metric ``best_objective`` (step = number of complete trials seen), the tags
``intradayjules.best_trial`` (trial id) and ``intradayjules.best_trial_run_id``. Best = max or min of
the children's ``objective_final`` by the study's direction (``tune.direction``). Workers update it
concurrently, so an intermediate step can lag; the value written at ``close`` is the study's.

Set ``tune.callbacks: ["intradayjules.track.tune_callbacks:from_config"]`` to have every worker
build one from the config. The coordinating process should call :func:`from_config` (or
``for_study``) once before starting workers so that exactly one parent run exists; workers find it by
the study name. ``close()`` only reaps when called with ``study_finished=True`` (the coordinator).
"""

from __future__ import annotations

from typing import Any

from .lineage import TAG_PREFIX, Lineage, flatten_config
from .mlflow_tracking import TAG_TRIAL_KEY, TAG_TRIAL_STATE, NoOpTracker, Run, Tracker, make_tracker, resolve_tracking

OBJECTIVE = "objective"
BEST_METRIC = "best_objective"
TAG_BEST_TRIAL = TAG_PREFIX + "best_trial"
TAG_BEST_RUN = TAG_PREFIX + "best_trial_run_id"


class TrialTracking:
    """Tune callbacks writing MLflow child runs under one study parent run."""

    def __init__(self, tracker: Tracker | NoOpTracker, parent_run_id: str | None, direction: str = "maximize"):
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self.direction = direction
        self._runs: dict[str, Run] = {}
        self._last: dict[str, tuple[int, float]] = {}

    @classmethod
    def for_study(cls, tracker: Tracker | NoOpTracker, study_name: str, params: dict[str, Any] | None = None,
                  tags: dict[str, Any] | None = None, direction: str = "maximize") -> "TrialTracking":
        parent = tracker.start_study(study_name, params=params, tags=tags)
        return cls(tracker, parent.run_id, direction)

    def on_trial_start(self, trial_id: str, params: dict[str, Any]) -> None:
        if not self.tracker.enabled:
            return
        self._runs[trial_id] = self.tracker.start_trial(self.parent_run_id, trial_id,
                                                        params=flatten_config(params) if params else None)

    def on_report(self, trial_id: str, step: int, value: float) -> None:
        run = self._runs.get(trial_id)
        if run is not None and self._last.get(trial_id) != (step, value):  # a repeated result: once
            self._last[trial_id] = (step, value)
            run.log_metrics({OBJECTIVE: value}, step=step)

    def on_trial_end(self, trial_id: str, params: dict[str, Any], state: str, value: float | None) -> None:
        if not self.tracker.enabled:
            return
        run = self._runs.pop(trial_id, None)
        self._last.pop(trial_id, None)
        if run is None:  # failed before it started, or ended by another process
            run = self.tracker.start_trial(self.parent_run_id, trial_id,
                                           params=flatten_config(params) if params else None)
        if value is not None:
            run.log_metrics({OBJECTIVE + "_final": value}, step=0)
        run.end_trial(state)
        if state == "complete":
            self.record_best()

    def run_id_of(self, trial_id: str) -> str | None:
        """The MLflow run id of trial ``trial_id`` (None if it has none)."""
        if not self.tracker.enabled:
            return None
        return self.tracker.find_trial(self.parent_run_id, trial_id)

    def best_run_id(self, mode: str = "max", metric: str = OBJECTIVE + "_final") -> str | None:
        """Run id of the best *complete* trial by ``metric`` (``mode`` max or min); None if none.
        Register it with ``register_model(tracker, run_id, best_trial_zip, lineage=...)``."""
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        if not self.tracker.enabled:
            return None
        best = None
        for r in self.tracker.children(self.parent_run_id):
            if r.data.tags.get(TAG_TRIAL_STATE) != "complete" or metric not in r.data.metrics:
                continue
            v = r.data.metrics[metric]
            if best is None or (v > best[0] if mode == "max" else v < best[0]):
                best = (v, r.info.run_id)
        return None if best is None else best[1]

    def record_best(self) -> float | None:
        """Write the best complete trial's value on the parent run (module docstring); returns it."""
        if not self.tracker.enabled or self.parent_run_id is None:
            return None
        mode = "max" if self.direction == "maximize" else "min"
        best, n_complete = None, 0
        for r in self.tracker.children(self.parent_run_id):
            if r.data.tags.get(TAG_TRIAL_STATE) != "complete" or OBJECTIVE + "_final" not in r.data.metrics:
                continue
            n_complete += 1
            v = r.data.metrics[OBJECTIVE + "_final"]
            if best is None or (v > best[0] if mode == "max" else v < best[0]):
                best = (v, r.info.run_id, r.data.tags.get(TAG_TRIAL_KEY))
        if best is None:
            return None
        parent = self.tracker.get_run(self.parent_run_id)
        parent.log_metrics({BEST_METRIC: best[0]}, step=n_complete)
        parent.flush({TAG_BEST_TRIAL: best[2], TAG_BEST_RUN: best[1]})
        return best[0]

    def close(self, study_finished: bool = True, status: str = "FINISHED") -> list[str]:
        """End the study parent run (coordinator only), after writing its best value; returns trial runs
        reaped as KILLED."""
        if not self.tracker.enabled or self.parent_run_id is None:
            return []
        if study_finished:
            self.record_best()
            return self.tracker.end_study(self.parent_run_id, status)
        return self.tracker.reap_stale_trials(self.parent_run_id)


def from_config(cfg: Any) -> TrialTracking:
    """Factory for ``tune.callbacks``: tracking per ``cfg.tracking`` (no-op when disabled), parent run
    named after ``cfg.tune.study_name`` (or ``cfg.name``), with the flattened config as params and
    lineage tags."""
    tracker = make_tracker(resolve_tracking(cfg))
    study = cfg.tune.study_name or cfg.name
    return TrialTracking.for_study(tracker, study, params=flatten_config(cfg), tags=Lineage.collect(cfg).tags(),
                                   direction=cfg.tune.direction)
