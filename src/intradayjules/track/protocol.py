"""The tracking interface the rest of the package talks to, whichever implementation it is given.

``Tracker`` (MLflow) and ``NoOpTracker`` (tracking off) both implement :class:`TrackerProtocol`, and
their runs :class:`RunProtocol`, so callers (``pipeline``, ``tune`` callbacks) never ask whether
tracking is on: they are handed a tracker (qlib's recorder pattern). A test keeps both
implementations in step with these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class RunProtocol(Protocol):
    run_id: str | None
    ended: str | None

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def set_tags(self, tags: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def heartbeat(self) -> None: ...

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> str: ...

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> dict[str, str]: ...

    def log_text(self, text: str, artifact_file: str) -> str: ...

    def end(self, status: str = "FINISHED") -> None: ...

    def end_trial(self, state: str) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> None: ...


@runtime_checkable
class TrackerProtocol(Protocol):
    enabled: bool

    @property
    def uri(self) -> str | None: ...

    def start_run(self, name: str, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None, parent_run_id: str | None = None) -> RunProtocol: ...

    def run(self, name: str, cfg: Any = None, lineage: Any = None, *, params: Mapping[str, Any] | None = None,
            tags: Mapping[str, Any] | None = None) -> RunProtocol: ...

    def get_run(self, run_id: str) -> RunProtocol: ...

    def start_study(self, study_name: str, params: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None) -> RunProtocol: ...

    def start_trial(self, parent_run_id: str, key: str | int, params: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None, name: str | None = None) -> RunProtocol: ...

    def trial(self, parent_run_id: str, key: str | int, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None) -> AbstractContextManager[RunProtocol]: ...

    def find_trial(self, parent_run_id: str, key: str | int) -> str | None: ...

    def finish_trial(self, parent_run_id: str, key: str | int, state: str) -> str | None: ...

    def reap_stale_trials(self, parent_run_id: str, **kw: Any) -> list[str]: ...

    def end_study(self, parent_run_id: str, status: str = "FINISHED") -> list[str]: ...
