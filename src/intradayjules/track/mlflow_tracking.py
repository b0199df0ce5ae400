"""MLflow runs: runs and nested trial runs, artifacts with sha256, killed-run reaping, a no-op tracker.

The only module of the package that imports mlflow, and only inside functions (``import mlflow`` costs
about 1 s). Usage::

    target = resolve_tracking(cfg)                 # or resolve_tracking(cfg, enabled=not no_track)
    tracker = make_tracker(target)                 # checks a server is reachable; no-op when disabled
    with tracker.start_run("train", params=flatten_config(cfg), tags=lineage.tags()) as run:
        run.log_metrics({"eval/return": 1.5}, step=5_000)
        run.log_artifact("runs/x/model.zip", "model")
    # tuning: parent per study, child per trial
    study = tracker.start_study("study-1", params=...)          # get-or-create; reaps dead children
    with tracker.trial(study.run_id, key=trial.number, params=trial.params) as t:
        t.log_metrics({"objective": v}, step=i)                  # optuna.TrialPruned -> state pruned
    tracker.end_study(study.run_id)                              # leftover RUNNING children -> KILLED

Statuses: a run ends FINISHED, FAILED or KILLED (MLflow's). A trial's state is the tag
``intradayjules.trial_state``: complete / pruned (both FINISHED), failed (FAILED), killed (KILLED).
Metric steps are environment steps unless the caller says otherwise; times are epoch milliseconds.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..procs import fork_is_safe
from ..procs import pid_alive as _pid_alive
from ..redact import redact_text, redact_uri
from .lineage import TAG_PREFIX, Lineage, flatten_config, sha256_file
from .target import (TrackingError, TrackingTarget, TrackingUnreachableError, _sqlite_artifacts,  # noqa: F401
                     check_reachable, resolve_tracking)

def _drop_inherited_engines() -> None:
    """In a forked child (tuning workers, tune/optuna_backend.py): MLflow keeps one SQLAlchemy engine per
    database URI at class level (``_engine_map``); a pooled SQLite/DB connection must not be shared with
    the parent. ``dispose(close=False)`` (SQLAlchemy's recipe for ``os.fork``) makes the child open its
    own connections and leaves the parent's alone. Nothing to do when mlflow was never imported."""
    import sys

    for name in ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store"):
        store = getattr(sys.modules.get(name), "SqlAlchemyStore", None)
        for engine in list(getattr(store, "_engine_map", {}).values()):
            try:
                engine.dispose(close=False)
            except Exception:  # noqa: BLE001 - best effort; the child then opens connections lazily
                logging.getLogger(__name__).debug("could not dispose an inherited MLflow engine", exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_engines)

TAG_STUDY = TAG_PREFIX + "study"
TAG_TRIAL_KEY = TAG_PREFIX + "trial_key"
TAG_TRIAL_STATE = TAG_PREFIX + "trial_state"
TAG_WORKER_HOST = TAG_PREFIX + "worker_host"
TAG_WORKER_PID = TAG_PREFIX + "worker_pid"
TAG_HEARTBEAT = TAG_PREFIX + "heartbeat"
TAG_SHA256_PREFIX = TAG_PREFIX + "sha256/"  # + artifact path (relative to the run's artifact root)
PARENT_TAG = "mlflow.parentRunId"
# MLflow 3's experiment kind. Its UI (3.x) offers GenAI or model-training views of an experiment; the
# kinds it knows are ``genai_development`` and ``custom_model_development`` (read from the 3.17 UI bundle).
# MLflow 3.17 itself picks the view from its "workflow type" switch (``?workflowType=machine_learning``
# in the URL, remembered by the browser); the tag is what the other 3.x UIs and the kind selector read.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
TRIAL_STATES = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # and its extra GET per run end
    import mlflow

    return mlflow


def make_tracker(target: Any = None, *, enabled: bool | None = None, workdir: str | Path | None = None,
                 check: bool = True, timeout: float | None = None) -> "Tracker | NoOpTracker":
    """A Tracker (after :func:`check_reachable` unless ``check=False``; ``timeout`` defaults to
    ``target.connect_timeout_s``), or a NoOpTracker with the same interface when tracking is disabled.
    ``target`` is a TrackingTarget, or an ExperimentConfig / None resolved with
    ``resolve_tracking(target, workdir, enabled=enabled)``; ``enabled=False`` is ``--no-track``.
    Call it before training starts: a dead server fails here, not hours later."""
    if not isinstance(target, TrackingTarget):
        target = resolve_tracking(target, workdir, enabled=enabled)
    elif enabled is not None and enabled != target.enabled:
        target = replace(target, enabled=enabled)
    if not target.enabled:
        return NoOpTracker(target)
    if check:
        check_reachable(target.uri, target.connect_timeout_s if timeout is None else timeout)
    return Tracker(target)


# ------------------------------------------------------------------------------------------- runs
def _q(value: str | int, what: str) -> str:
    """``value`` as a quoted MLflow filter literal; refuses quotes (the filter grammar has no escapes)."""
    value = str(value)
    if "'" in value or '"' in value or "`" in value:
        raise TrackingError(f"{what} {value!r} must not contain quotes")
    return f"'{value}'"


def _local_path(source: str) -> Path | None:
    """``source`` as an absolute local path when it names an existing file or folder (it has a path
    separator: a bare word such as ``synthetic`` is a generator, never a folder of the cwd)."""
    if "/" not in str(source) and os.sep not in str(source):
        return None
    p = Path(source).expanduser().resolve()
    return p if p.exists() else None


def _now_ms() -> int:
    return int(time.time() * 1000)




class Run:
    """One MLflow run. Methods never touch mlflow's global "active run" state, so runs are safe to use
    from several threads/processes at once. Use as a context manager: an exception ends it FAILED
    (KeyboardInterrupt: KILLED); a normal exit ends it FINISHED."""

    def __init__(self, tracker: "Tracker", run_id: str, flush_interval_s: float = 5.0):
        self.tracker = tracker
        self.run_id = run_id
        self.flush_interval_s = flush_interval_s
        self._last_flush = time.time()
        self._buffer: list = []
        self._skipped: set[str] = set()
        self.artifact_sha256: dict[str, str] = {}
        self.ended: str | None = None

    # -- logging
    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow = _mlflow()
        items = [mlflow.entities.Param(str(k), redact_text(str(v))) for k, v in params.items()]  # no passwords
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.tracker.client.log_batch(self.run_id, params=items[i:i + MAX_PARAMS_PER_BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        mlflow = _mlflow()
        items = [mlflow.entities.RunTag(str(k), redact_text(str(v))) for k, v in tags.items() if v is not None]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.tracker.client.log_batch(self.run_id, tags=items[i:i + MAX_PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Metrics at ``step``. They are buffered and written in one batch at most every
        ``flush_interval_s`` seconds (and by :meth:`flush` / :meth:`end`), which keeps tracking off the
        training loop's clock; each write also refreshes the heartbeat tag (what tells a live trial
        from a dead worker's). ``flush_interval_s=0`` writes every call at once."""
        mlflow = _mlflow()
        ts = _now_ms()
        for k, v in metrics.items():
            try:
                value = float(v)
            except (TypeError, ValueError):
                if k not in self._skipped:
                    self._skipped.add(k)
                    logging.getLogger(__name__).warning("metric %r of run %s is not a number (%r): not logged",
                                                        k, self.run_id, v)
                continue
            self._buffer.append(mlflow.entities.Metric(str(k), value, ts, int(step or 0)))
        if time.time() - self._last_flush >= self.flush_interval_s or len(self._buffer) >= MAX_METRICS_PER_BATCH:
            self.flush()

    def flush(self, tags: Mapping[str, str] | None = None) -> None:
        """Write the buffered metrics now, with a heartbeat and any extra ``tags``, in one request."""
        mlflow = _mlflow()
        now = time.time()
        self._last_flush = now
        extra = [mlflow.entities.RunTag(TAG_HEARTBEAT, f"{now:.3f}")]
        extra += [mlflow.entities.RunTag(k, str(v)) for k, v in (tags or {}).items()]
        while self._buffer or extra:
            chunk, self._buffer = self._buffer[:MAX_METRICS_PER_BATCH], self._buffer[MAX_METRICS_PER_BATCH:]
            self.tracker.client.log_batch(self.run_id, metrics=chunk, tags=extra)
            extra = []

    def heartbeat(self) -> None:
        """Write buffered metrics and refresh the heartbeat tag now."""
        if self._buffer:
            self.flush()
        else:
            self.tracker.client.set_tag(self.run_id, TAG_HEARTBEAT, f"{time.time():.3f}")

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> str:
        """Upload a file; its sha256 is recorded as the run tag ``intradayjules.sha256/<artifact path>``
        (in the tracking database, apart from the artifact store). Returns the digest."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"artifact {path} does not exist or is not a file")
        digest = sha256_file(path)
        rel = f"{artifact_path.strip('/')}/{path.name}" if artifact_path else path.name
        self.tracker.client.log_artifact(self.run_id, str(path), artifact_path)
        self.tracker.client.set_tag(self.run_id, TAG_SHA256_PREFIX + rel, digest)
        self.artifact_sha256[rel] = digest
        return digest

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> dict[str, str]:
        """Upload every file under ``directory`` (recursively) with its sha256 tag; returns path -> digest."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"artifact directory {directory} does not exist")
        digests = {}
        mlflow = _mlflow()
        tags = []
        for f in sorted(p for p in directory.rglob("*") if p.is_file()):
            rel_dir = f.parent.relative_to(directory).as_posix()
            rel = "/".join(x for x in ((artifact_path or "").strip("/"), "" if rel_dir == "." else rel_dir,
                                       f.name) if x)
            digests[rel] = sha256_file(f)
            tags.append(mlflow.entities.RunTag(TAG_SHA256_PREFIX + rel, digests[rel]))
        self.tracker.client.log_artifacts(self.run_id, str(directory), artifact_path)
        for i in range(0, len(tags), MAX_PARAMS_PER_BATCH):
            self.tracker.client.log_batch(self.run_id, tags=tags[i:i + MAX_PARAMS_PER_BATCH])
        self.artifact_sha256.update(digests)
        return digests

    def log_text(self, text: str, artifact_file: str) -> str:
        """Write ``text`` to ``artifact_file`` (a path inside the run's artifacts) with its sha256 tag."""
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / Path(artifact_file).name
            p.write_text(text)
            parent = str(Path(artifact_file).parent)
            return self.log_artifact(p, None if parent == "." else parent)

    def log_dataset(self, name: str, digest: str, source: str, context: str = "training",
                    profile: Mapping[str, Any] | None = None) -> None:
        """Record the data a run used as an MLflow dataset input (the run page's "Datasets" column):
        ``name``, ``digest`` (the data fingerprint, at most 36 characters), ``source`` (a local path,
        recorded as a ``local`` source with its absolute URI; anything else, e.g. ``synthetic``, as a
        ``code`` source naming it) and the ``mlflow.data.context`` tag ``context``. Metadata only: the
        bars themselves are not uploaded."""
        mlflow = _mlflow()
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import get_registered_sources
        from mlflow.data.meta_dataset import MetaDataset

        if len(digest) > 36:
            raise TrackingError(f"dataset {name!r}: digest {digest!r} is longer than MLflow's 36 characters")
        path = _local_path(source)
        local_cls = next(c for c in get_registered_sources() if c._get_source_type() == "local")
        src = (local_cls(path.as_uri()) if path is not None
               else CodeDatasetSource({"generator": str(source), **{k: str(v) for k, v in (profile or {}).items()}}))
        entity = MetaDataset(src, name=name, digest=digest)._to_mlflow_entity()
        tags = [mlflow.entities.InputTag(key="mlflow.data.context", value=context)]
        self.tracker.client.log_inputs(self.run_id, datasets=[mlflow.entities.DatasetInput(entity, tags=tags)])

    # -- end
    def end(self, status: str = "FINISHED") -> None:
        status = status.upper()
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise ValueError(f"run status must be FINISHED, FAILED or KILLED, not {status!r}")
        if self.ended is None:
            self._end(status)

    def _end(self, status: str, tags: Mapping[str, str] | None = None) -> None:
        if self._buffer or tags:
            self.flush(tags)
        self.tracker.client.set_terminated(self.run_id, status=status)
        self.ended = status

    def end_trial(self, state: str) -> None:
        """End a trial run: ``state`` in complete / pruned / failed / killed (see module docstring)."""
        if state not in TRIAL_STATES:
            raise ValueError(f"trial state must be one of {sorted(TRIAL_STATES)}, not {state!r}")
        if self.ended is None:
            self._end(TRIAL_STATES[state], {TAG_TRIAL_STATE: state})

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")

    @property
    def info(self):
        return self.tracker.client.get_run(self.run_id)


class Tracker:
    """Runs of one experiment at one tracking target. Picklable (the MLflow client is rebuilt on
    unpickling), so it can be handed to Optuna worker processes and Ray Tune trials."""

    def __init__(self, target: TrackingTarget):
        self.target = target
        self._client = None
        self._experiment_id: str | None = None
        self._creating: int | None = None  # pid of the child creating a new SQLite store (start_store)

    enabled = True

    def __getstate__(self) -> dict[str, Any]:
        return {"target": self.target, "_client": None, "_experiment_id": self._experiment_id, "_creating": None}

    def start_store(self) -> bool:
        """A local SQLite store that does not exist yet: create it (MLflow's schema migrations, ~2 s on the
        2-core machine) in a forked child while this process goes on; the first use of ``client`` waits
        for the child. Returns whether a child was started: not for a server, an existing database, or
        where forking is not safe (``procs.fork_is_safe``); ``client`` then creates the store itself, as
        it would have anyway (also when the child failed)."""
        uri = self.target.uri
        if self._client is not None or self._creating is not None or not uri.startswith("sqlite:///"):
            return False
        path = Path(uri[len("sqlite:///"):])
        if path.exists():
            return False
        _mlflow()  # imported here (~1.5 s; this process needs it anyway), so the child only migrates
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        if not fork_is_safe():
            return False
        pid = os.fork()
        if pid == 0:  # the child: create the store, never return into the caller's code
            code = 1
            try:
                _mlflow().MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments(max_results=1)
                code = 0
            finally:
                os._exit(code)
        self._creating = pid
        return True

    def _wait_store(self) -> None:
        if self._creating is not None:
            pid, self._creating = self._creating, None
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:  # already reaped elsewhere
                pass

    @property
    def uri(self) -> str:
        """The tracking URI as it may be shown (password redacted); ``target.uri`` connects."""
        return redact_uri(self.target.uri)

    @property
    def client(self):
        if self._client is None:
            self._wait_store()
            mlflow = _mlflow()
            self._client = mlflow.MlflowClient(tracking_uri=self.target.uri, registry_uri=self.target.uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        """Get-or-create the experiment (sqlite default: artifacts under ``<workdir>/mlartifacts``),
        tagged as model development (:data:`EXPERIMENT_KIND_TAG`); an older experiment without the tag
        gets it here."""
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.target.experiment)
            if exp is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.target.experiment, artifact_location=self.target.artifact_location,
                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
                except Exception:  # created concurrently by another worker
                    exp = self.client.get_experiment_by_name(self.target.experiment)
                    if exp is None:
                        raise
                    self._experiment_id = exp.experiment_id
            else:
                self._experiment_id = exp.experiment_id
                if EXPERIMENT_KIND_TAG not in (exp.tags or {}):
                    self.client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return self._experiment_id

    # -- plain runs
    def start_run(self, name: str, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None, parent_run_id: str | None = None) -> Run:
        """Create a RUNNING run (child of ``parent_run_id`` if given) with params and tags logged."""
        all_tags = {TAG_WORKER_HOST: socket.gethostname(), TAG_WORKER_PID: str(os.getpid()),
                    TAG_HEARTBEAT: f"{time.time():.3f}"}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        all_tags.update({k: str(v) for k, v in (tags or {}).items() if v is not None})
        info = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        run = Run(self, info.info.run_id)
        if params:
            run.log_params(params)
        return run

    def get_run(self, run_id: str) -> Run:
        """A handle on an existing run (to log more, or to register its model)."""
        self.client.get_run(run_id)  # raises a clear MlflowException for an unknown id
        return Run(self, run_id)

    def run(self, name: str, cfg: Any = None, lineage: Any = None, *, params: Mapping[str, Any] | None = None,
            tags: Mapping[str, Any] | None = None) -> Run:
        """A training/evaluation run: params = the flattened ``cfg`` (plus ``params``), tags = the lineage
        (a :class:`~.lineage.Lineage` or a mapping such as ``Prepared.lineage()``; git commit, dirty flag
        and package version are added) and ``lineage/config.json`` (the config a rerun starts from).
        Use as ``with tracker.run(name, cfg, lineage) as run:``."""
        lin = lineage if isinstance(lineage, Lineage) else Lineage.from_mapping(lineage or {}, cfg)
        all_params = {**(flatten_config(cfg) if cfg is not None else {}), **(params or {})}
        run = self.start_run(name, params=all_params, tags={**lin.tags(), **(tags or {})})
        if lin.config is not None:
            run.log_text(lin.config_json(), "lineage/config.json")
        if lin.data_fingerprint:
            source = lin.extra.get("data_source") or "unknown"
            local = _local_path(source)
            run.log_dataset(local.name if local is not None else source, lin.data_fingerprint, source,
                            profile={"symbols": lin.extra["symbols"]} if lin.extra.get("symbols") else None)
        return run

    # -- studies and trials
    def _search(self, filter_string: str) -> list:
        return list(self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=1000))

    def children(self, parent_run_id: str) -> list:
        """All child runs of ``parent_run_id`` (MLflow Run entities)."""
        return self._search(f"tags.`{PARENT_TAG}` = {_q(parent_run_id, 'run id')}")

    def start_study(self, study_name: str, params: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None) -> Run:
        """Get-or-create the parent run of study ``study_name``. Resuming reopens it (RUNNING) and reaps
        children whose worker died (see :meth:`reap_stale_trials`). Create it once, in the process
        that coordinates the study, and give its ``run_id`` to the workers."""
        found = [r for r in self._search(f"tags.`{TAG_STUDY}` = {_q(study_name, 'study name')}")
                 if PARENT_TAG not in r.data.tags]
        if found:
            found.sort(key=lambda r: r.info.start_time)
            run = Run(self, found[0].info.run_id)
            if found[0].info.status != "RUNNING":
                self.client.update_run(run.run_id, status="RUNNING")
            self.reap_stale_trials(run.run_id, heartbeat_timeout_s=self.target.heartbeat_timeout_s)
            return run
        return self.start_run(study_name, params=params, tags={**(tags or {}), TAG_STUDY: study_name})

    def start_trial(self, parent_run_id: str, key: str | int, params: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None, name: str | None = None) -> Run:
        """Get-or-create the child run for trial ``key`` (Optuna trial number, Ray trial id): a trial
        that restarts (Ray restoring it, a retried worker) logs into its existing run, never a second
        one. Returns the run, RUNNING, with this worker's host/pid and a fresh heartbeat."""
        key = str(key)
        existing = self._search(f"tags.`{PARENT_TAG}` = {_q(parent_run_id, 'run id')} and tags.`{TAG_TRIAL_KEY}` = {_q(key, 'trial key')}")
        if existing:
            run = Run(self, existing[0].info.run_id)
            self.client.update_run(run.run_id, status="RUNNING")
            run.set_tags({TAG_WORKER_HOST: socket.gethostname(), TAG_WORKER_PID: os.getpid(),
                          TAG_TRIAL_STATE: "running"})
            run.heartbeat()
            if params:
                new = {k: v for k, v in params.items() if k not in existing[0].data.params}
                if new:
                    run.log_params(new)
            return run
        return self.start_run(name or f"trial-{key}", params=params, parent_run_id=parent_run_id,
                              tags={**(tags or {}), TAG_TRIAL_KEY: key, TAG_TRIAL_STATE: "running"})

    @contextmanager
    def trial(self, parent_run_id: str, key: str | int, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None) -> Iterator[Run]:
        """``with tracker.trial(parent, trial.number, trial.params) as run:`` ends the run complete on
        success, pruned on an exception named ``TrialPruned`` (Optuna's), killed on KeyboardInterrupt,
        failed on any other exception (re-raised in every case)."""
        run = self.start_trial(parent_run_id, key, params, tags)
        try:
            yield run
        except BaseException as e:
            if type(e).__name__ == "TrialPruned":
                run.end_trial("pruned")
            elif isinstance(e, KeyboardInterrupt):
                run.end_trial("killed")
            else:
                run.end_trial("failed")
            raise
        else:
            if run.ended is None:
                run.end_trial("complete")

    def find_trial(self, parent_run_id: str, key: str | int) -> str | None:
        """Run id of trial ``key`` of the study ``parent_run_id``, or None."""
        found = self._search(f"tags.`{PARENT_TAG}` = {_q(parent_run_id, 'run id')} and tags.`{TAG_TRIAL_KEY}` = {_q(key, 'trial key')}")
        return found[0].info.run_id if found else None

    def finish_trial(self, parent_run_id: str, key: str | int, state: str) -> str | None:
        """End trial ``key`` from outside its worker (e.g. the driver after Ray Tune stopped it early:
        ``state="pruned"``). Only a RUNNING run is changed; returns its id (None if absent/ended)."""
        run_id = self.find_trial(parent_run_id, key)
        if run_id is None or self.client.get_run(run_id).info.status != "RUNNING":
            return None
        Run(self, run_id).end_trial(state)
        return run_id

    def reap_stale_trials(self, parent_run_id: str, *, study_finished: bool = False,
                          heartbeat_timeout_s: float | None = None) -> list[str]:
        """Mark RUNNING children of a study KILLED (tag ``trial_state=killed``) when their worker is gone.

        A child is stale when ``study_finished`` (nothing of the study can still be running), or its
        worker ran on this host and that pid is no longer alive, or (with ``heartbeat_timeout_s``) its
        last heartbeat is older than that. Returns the reaped run ids.
        """
        host = socket.gethostname()
        now = time.time()
        reaped = []
        for r in self.children(parent_run_id):
            if r.info.status != "RUNNING":
                continue
            tags = r.data.tags
            stale = study_finished
            if not stale and tags.get(TAG_WORKER_HOST) == host and tags.get(TAG_WORKER_PID, "").isdigit():
                stale = not _pid_alive(int(tags[TAG_WORKER_PID]))
            if not stale and heartbeat_timeout_s is not None:
                try:
                    stale = now - float(tags.get(TAG_HEARTBEAT, "0")) > heartbeat_timeout_s
                except ValueError:
                    stale = True
            if stale:
                self.client.set_tag(r.info.run_id, TAG_TRIAL_STATE, "killed")
                self.client.set_terminated(r.info.run_id, status="KILLED")
                reaped.append(r.info.run_id)
        return reaped

    def end_study(self, parent_run_id: str, status: str = "FINISHED") -> list[str]:
        """End a study's parent run after marking any still-RUNNING trial KILLED; returns those ids."""
        reaped = self.reap_stale_trials(parent_run_id, study_finished=True)
        Run(self, parent_run_id).end(status)
        return reaped

    # -- artifacts / models (used by registry.py, which does not import mlflow itself)
    def download(self, artifact_uri: str, dst: str | Path) -> Path:
        """Download ``artifact_uri`` (``runs:/...``, ``models:/...`` or a store URI) into ``dst``."""
        mlflow = _mlflow()
        Path(dst).mkdir(parents=True, exist_ok=True)
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(dst),
                                                        tracking_uri=self.target.uri))

    def download_run(self, run_id: str, path: str = "", dst: str | Path | None = None) -> Path:
        """Download ``path`` (default: everything) of run ``run_id``'s artifacts into ``dst``."""
        dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="ij-run-"))
        dst.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(run_id, path, str(dst)))

    def save_pyfunc(self, path: str | Path, data_dir: str | Path, loader_module: str,
                    pip_requirements: list[str], input_example: Any = None, output_example: Any = None) -> Path:
        """Write an MLflow pyfunc model directory at ``path`` whose ``data`` is ``data_dir``; with
        ``input_example`` (and the model's ``output_example`` for it) the model carries the example and
        the signature inferred from the pair (tensor specs: dtype and shape, batch dimension -1)."""
        mlflow = _mlflow()
        signature = None
        if input_example is not None:
            signature = mlflow.models.infer_signature(input_example, output_example)
        mlflow.pyfunc.save_model(str(path), loader_module=loader_module, data_path=str(data_dir),
                                 pip_requirements=pip_requirements, signature=signature,
                                 input_example=input_example)
        return Path(path)

    def load_pyfunc(self, local_dir: str | Path):
        """Load a pyfunc model from a local (already verified) directory."""
        return _mlflow().pyfunc.load_model(str(local_dir))


class NoOpRun:
    """Same interface as :class:`Run`; records nothing (tracking disabled)."""

    run_id = None
    ended = None

    def __init__(self) -> None:
        self.artifact_sha256: dict[str, str] = {}

    def log_params(self, params) -> None: ...
    def set_tags(self, tags) -> None: ...
    def log_metrics(self, metrics, step=None) -> None: ...
    def heartbeat(self) -> None: ...
    def log_artifact(self, path, artifact_path=None) -> str:
        return sha256_file(path)
    def log_artifacts(self, directory, artifact_path=None) -> dict[str, str]:
        return {}
    def log_text(self, text, artifact_file) -> str:
        return ""
    def log_dataset(self, name, digest, source, context="training", profile=None) -> None: ...
    def end(self, status="FINISHED") -> None:
        self.ended = status.upper()
    def end_trial(self, state) -> None:
        self.end(TRIAL_STATES[state])
    def __enter__(self) -> "NoOpRun":
        return self
    def __exit__(self, *exc) -> None:
        self.end("FINISHED" if exc[0] is None else "FAILED")


class NoOpTracker:
    """Tracking disabled (``--no-track``): every method exists and does nothing; mlflow is never imported."""

    enabled = False

    def __init__(self, target: TrackingTarget | None = None):
        self.target = target

    @property
    def uri(self) -> str | None:
        return self.target.uri if self.target is not None else None

    def start_store(self) -> bool:
        return False

    def start_run(self, name, params=None, tags=None, parent_run_id=None) -> NoOpRun:
        return NoOpRun()

    def run(self, name, cfg=None, lineage=None, *, params=None, tags=None) -> NoOpRun:
        return NoOpRun()

    def get_run(self, run_id) -> NoOpRun:
        return NoOpRun()

    def start_study(self, study_name, params=None, tags=None) -> NoOpRun:
        return NoOpRun()

    def start_trial(self, parent_run_id, key, params=None, tags=None, name=None) -> NoOpRun:
        return NoOpRun()

    @contextmanager
    def trial(self, parent_run_id, key, params=None, tags=None) -> Iterator[NoOpRun]:
        yield NoOpRun()

    def reap_stale_trials(self, parent_run_id, **kw) -> list[str]:
        return []

    def find_trial(self, parent_run_id, key) -> None:
        return None

    def finish_trial(self, parent_run_id, key, state) -> None:
        return None

    def end_study(self, parent_run_id, status="FINISHED") -> list[str]:
        return []

