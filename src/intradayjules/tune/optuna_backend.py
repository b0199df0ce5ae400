"""Optuna backend: N worker *processes* share one study (GIL-free parallelism for CPU-bound training).

Storage: by default a ``JournalFileBackend`` file ``<workdir>/tune/<study>/journal.log``; an RDB URL
(``postgresql://``, ``mysql+pymysql://``, ``sqlite:///``) lets workers on several machines join one study.
Each finished trial is appended to the storage the moment it ends, so killing a worker, or the whole
command, loses no completed trial; ``resume=True`` continues until ``n_trials`` trials have *finished*
(complete + pruned + failed). A trial whose worker died is marked FAIL with user attribute
``interrupted`` and does not count.

Sampling: each trial gets its own ``TPESampler`` seed, :func:`trial_seed` of (``sampler_seed``, the
trial's number), with ``constant_liar`` when there are several workers. A resumed study (after a kill,
or to a larger budget) therefore continues the seed sequence instead of replaying it: re-seeding every
worker with ``sampler_seed + i`` made TPE's random start-up trials repeat earlier configurations exactly.
A sequential run is reproducible from ``sampler_seed``; with several workers, trial k draws the same
parameters whichever worker asks for it, so the random start-up trials (TPE's first 10) are those of
the sequential run; what later trials draw, and which are pruned, still depends on which finished first.

Journal: a write torn by a killed process or a full disk left a partial last line, and the next append
glued a record onto it, after which Optuna could not read the journal at all (with an error naming no
file). :func:`recover_journal` (run by :func:`open_storage`) keeps every complete record up to the
first bad line, after copying the damaged file to ``journal.log.corrupt-<time>``; appends first cut a
torn tail so one torn write cannot spoil the records after it.

Worker start (issue 16): on Linux/macOS without GPUs per trial, workers are *forked* from the
coordinator after it has imported the trial function (torch, SB3) and called the trial function's
``warm(cfg)`` when it has one (the default DQN trial prepares the study's data: bars, feature-store entry,
env arrays). A forked worker starts with those modules and arrays already in memory (shared copy-on-write:
nothing is pickled, written or re-read), so its fixed start-up is the fork (~10-50 ms) instead of
~2 s of imports and data preparation per worker; it stays warm across all the trials it runs. With
GPUs per trial, on platforms without ``fork``, or with ``$INTRADAYJULES_TUNE_START=spawn``, workers are
fresh interpreters as before (``python -m intradayjules.tune.optuna_backend``); so are they when the
coordinator runs other threads at that moment. Each worker records its
start-up (spawn or fork to its first trial) in its first trial's user attribute ``worker_startup_s``.

Workers get their job through a pipe (stdin) or, forked, in memory; never a file others could write: ``worker_<i>.json`` in the
run directory is a copy for people, with passwords redacted (``redact.py``), and the worker's own output
is redacted too. Callbacks are named by import path (``tune.callbacks``); no pickle is passed between
processes. One coordinator per study directory at a time (``rundir.lock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from .. import rundir
from ..config import ExperimentConfig
from ..procs import fork_is_safe, pid_alive as _pid_alive
from ..redact import REDACTED, Redactor, RedactingStream, redact_obj, redact_text, uri_password
from .results import TuneError, TuneResult, json_safe, run_dir_for, write_config
from .space import SearchSpace
from .trial import (
    COMPLETE,
    FAILED,
    PRUNED,
    Prune,
    assign_gpus,
    check_value,
    close_callbacks,
    fire,
    load_callable,
    make_callbacks,
    trial_device,
)

log = logging.getLogger(__name__)
HOST = socket.gethostname()
STORAGE_ENV = "INTRADAYJULES_TUNE_STORAGE"  # a worker started by hand: the storage URL with its password
START_ENV = "INTRADAYJULES_TUNE_START"  # "spawn": fresh worker interpreters even where fork is available
DEFAULT_TRIAL_FN = "intradayjules.pipeline.trial:dqn_trial"
# what the default trial returns (risk/callback.py: mean daily net bps - OBJECTIVE_RISK_BPS x composite)
DEFAULT_METRIC_NAME = "objective (bps/day - 10 x composite)"


def metric_name(trial_fn: str) -> str:
    """The study's objective name as Optuna Dashboard shows it (``study.set_metric_names``)."""
    return DEFAULT_METRIC_NAME if trial_fn == DEFAULT_TRIAL_FN else f"objective ({trial_fn})"


class _Interrupted(BaseException):
    """The worker was asked to stop (SIGTERM) in the middle of a trial."""


# --------------------------------------------------------------------------------------- storage
def storage_spec(storage: str | None, run_dir: Path) -> str:
    """``journal:/abs/file`` for a journal file (default ``run_dir/journal.log``), or the RDB URL."""
    if storage is None:
        return f"journal:{run_dir / 'journal.log'}"
    if "://" in storage:
        return storage
    return f"journal:{Path(storage).expanduser().resolve()}"


def _flock_lock(path: str) -> Any:
    """A journal lock held with ``flock``: the kernel releases it when its holder dies, so a worker
    killed while writing cannot block the others (Optuna's default lock files linger until a 30 s
    grace period ends)."""
    import fcntl

    try:  # the lock interface is not exported by optuna 5.0; duck typing works if it moves
        from optuna.storages.journal._file import BaseJournalFileLock
    except ImportError:  # pragma: no cover
        BaseJournalFileLock = object  # type: ignore[misc,assignment]

    class FlockLock(BaseJournalFileLock):
        def __init__(self, target: str):
            self._path = target + ".flock"
            self._fd: int | None = None

        def acquire(self) -> bool:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            return True

        def release(self) -> None:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    return FlockLock(path)


def _first_bad_record(path: Path) -> tuple[int, int, int] | None:
    """(line number, byte offset, records after it) of the journal's first line that is not one complete
    JSON record ending in a newline; None when every line is good."""
    offset = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            ok = line.endswith(b"\n")
            if ok:
                try:
                    ok = isinstance(json.loads(line), dict)
                except ValueError:
                    ok = False
            if not ok:
                return number, offset, sum(1 for _ in f)
            offset += len(line)
    return None


def recover_journal(path: str | Path) -> str | None:
    """Make a damaged journal readable again: copy it to ``<file>.corrupt-<time>``, then truncate it after
    the last complete record before the first bad line. Returns what was done (None: nothing to do).
    Hold the journal's lock (``open_storage`` does) so no worker appends meanwhile."""
    path = Path(path)
    if not path.is_file():
        return None
    bad = _first_bad_record(path)
    if bad is None:
        return None
    line, offset, after = bad
    size = path.stat().st_size
    backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    shutil.copy2(path, backup)
    with open(path, "r+b") as f:
        f.truncate(offset)
        f.flush()
        os.fsync(f.fileno())
    msg = (f"Optuna journal {path}: line {line} is not a complete record (a torn write); kept the {line - 1} "
           f"records before it, dropped {size - offset} bytes ({after} later line(s)); the damaged file is "
           f"backed up at {backup}")
    log.warning(msg)
    return msg


def _journal_backend(path: Path) -> Any:
    """``JournalFileBackend`` with the flock lock, whose appends first cut a torn tail (see module doc)."""
    from optuna.storages.journal import JournalFileBackend

    class RepairingJournal(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n"
            with self._lock_guard():
                with open(self._file_path, "r+b") as f:
                    end = f.seek(0, os.SEEK_END)
                    if end:
                        f.seek(end - 1)
                        if f.read(1) != b"\n":  # a torn write before us: cut it, keep the good records
                            recover_journal(self._file_path)
                with open(self._file_path, "ab") as f:
                    f.write(text.encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())

        def _lock_guard(self):
            from optuna.storages.journal._file import get_lock_file

            return get_lock_file(self._lock)

    return RepairingJournal(str(path), lock_obj=_flock_lock(str(path)))


def open_storage(spec: str) -> Any:
    from optuna.storages import JournalStorage, RDBStorage

    if spec.startswith("journal:"):
        path = Path(spec[len("journal:") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _flock_lock(str(path))
        lock.acquire()
        try:
            recover_journal(path)
        finally:
            lock.release()
        try:
            return JournalStorage(_journal_backend(path))
        except Exception as e:  # noqa: BLE001 - Optuna's own errors do not name the file
            raise TuneError(f"Optuna journal {path} cannot be read: {type(e).__name__}: {e}") from None
    if spec.startswith("sqlite"):
        return RDBStorage(spec, engine_kwargs={"connect_args": {"timeout": 30}})
    if REDACTED in spec.split("@")[0]:
        raise TuneError(f"--storage {spec}: the password was redacted (a job file is a copy for people); give "
                        f"the worker its job on stdin (--job-stdin) or the full URL in ${STORAGE_ENV}")
    try:
        return RDBStorage(spec)
    except (ImportError, ModuleNotFoundError) as e:  # a database driver is missing
        raise TuneError(f"--storage {redact_text(spec)}: {redact_text(str(e))}") from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy/Optuna connection errors: one line, no password
        raise TuneError(f"--storage {redact_text(spec)}: cannot connect: {type(e).__name__}: "
                        f"{redact_text(str(e))[:500]}") from None


def make_pruner(kind: str, startup_trials: int = 4, warmup_steps: int = 2) -> Any:
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise TuneError(f"unknown pruner {kind!r} (median, hyperband, none)")


def trial_seed(base: int, number: int) -> int:
    """The sampler seed of trial ``number``: a 31-bit hash of both, so every trial of a study, resumed or
    not, samples from its own stream, whichever worker asks for it (the trailing ``:0`` keeps the seeds
    sequential studies had when the worker's index was part of the hash)."""
    digest = hashlib.blake2b(f"{int(base)}:{int(number)}:0".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)


def make_sampler(base: int, number: int, n_workers: int, kind: str = "tpe") -> Any:
    """The sampler that asks trial ``number``: ``tpe`` (constant liar with several workers), ``random`` and
    ``cmaes`` seeded per trial (:func:`trial_seed`), ``qmc`` (scrambled Sobol) seeded by ``base`` only: its
    points are indexed by the trial number, so a resumed study continues the sequence."""
    import optuna

    seed = trial_seed(base, number)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=n_workers > 1)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if kind == "qmc":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=int(base),
                                          warn_independent_sampling=False)
    raise TuneError(f"unknown sampler {kind!r} (tpe, random, cmaes, qmc)")


# ---------------------------------------------------------------------------------- bookkeeping


def reap_orphans(study: Any) -> list[int]:
    """Mark RUNNING trials of dead workers on *this host* as FAIL (``interrupted``). Returns numbers."""
    from optuna.trial import TrialState

    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
        if host != HOST or pid is None or pid == os.getpid() or _pid_alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", f"worker pid {pid} died")
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        reaped.append(t.number)
    return reaped


def count_trials(study: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    c = {"complete": 0, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            c["complete"] += 1
        elif t.state == TrialState.PRUNED:
            c["pruned"] += 1
        elif t.state == TrialState.FAIL:
            c["interrupted" if t.user_attrs.get("interrupted") else "failed"] += 1
        elif t.state == TrialState.RUNNING:
            c["running"] += 1
    c["finished"] = c["complete"] + c["pruned"] + c["failed"]
    return c


def _best(study: Any) -> tuple[float | None, dict[str, Any] | None]:
    try:
        bt = study.best_trial
    except ValueError:
        return None, None
    return bt.value, bt.user_attrs.get("params")


# -------------------------------------------------------------------------------------- reporter
class OptunaReporter:
    """``report`` -> ``trial.report`` + ``should_prune``; checkpoints go to the trial's own folder."""

    checkpoint_every: int | None = None

    def __init__(self, trial: Any, trial_dir: Path, callbacks: list[Any], trial_id: str):
        self._trial, self._dir, self._cbs, self._id = trial, trial_dir, callbacks, trial_id
        self.last_value: float | None = None

    @property
    def trial_key(self) -> str:
        """The trial's id in the study results (``TuneResult.trials[*]["id"]``): its number."""
        return str(self._trial.number)

    def report(self, step: int, value: float) -> bool:
        v = check_value(value, f"intermediate value at step {step}")
        self._trial.report(v, int(step))
        self.last_value = v
        fire(self._cbs, "on_report", self._id, int(step), v)
        if self._trial.should_prune():
            raise Prune(f"pruned at step {step} (value {v:.6g})")
        return False

    def checkpoint_dir(self) -> Path:
        d = self._dir / "checkpoint"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def restore_dir(self) -> Path | None:
        return None


# ---------------------------------------------------------------------------------------- worker
def _worker_main(job: dict[str, Any]) -> None:
    """One worker process: ask -> run the trial function -> tell, until the budget is reached."""
    threads = str(job["torch_threads"])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = threads
    if job["gpu"] is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = job["gpu"]
    elif job["gpus_per_trial"] <= 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""

    def _on_term(signum: int, frame: Any) -> None:
        raise _Interrupted()

    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and sends SIGTERM

    import optuna
    from filelock import FileLock

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = ExperimentConfig.model_validate(job["cfg"])
    redactor = Redactor([uri_password(job["storage"]), uri_password(cfg.tracking.uri)])
    sys.stdout = RedactingStream(sys.stdout, redactor)  # the log files carry no password
    sys.stderr = RedactingStream(sys.stderr, redactor)
    space = SearchSpace.from_config(cfg.tune, cfg.agent.algo)
    trial_fn = load_callable(cfg.tune.trial_fn)
    callbacks = make_callbacks(cfg)  # factories named by import path; nothing is unpickled
    storage = open_storage(job["storage"])
    study = optuna.load_study(study_name=job["study"], storage=storage,
                              sampler=make_sampler(job["seed"], 0, job["n_workers"], cfg.tune.sampler),
                              pruner=make_pruner(job["pruner"], cfg.tune.pruner_startup_trials,
                                                 cfg.tune.pruner_warmup_steps))
    run_dir = Path(job["run_dir"])
    lock = FileLock(str(run_dir / "ask.lock")) if job["storage"].startswith("journal:") else contextlib.nullcontext()
    parent = os.getppid()
    first = True
    while os.getppid() == parent:
        with lock:
            reap_orphans(study)
            c = count_trials(study)
            if c["finished"] + c["running"] >= job["n_trials"]:
                break
            number = len(study.get_trials(deepcopy=False))  # the number ask() gives (the lock is held)
            study.sampler = make_sampler(job["seed"], number, job["n_workers"], cfg.tune.sampler)
            trial = study.ask()
            trial.set_user_attr("host", HOST)
            trial.set_user_attr("pid", os.getpid())
            trial.set_user_attr("worker", job["index"])
            if first and job.get("spawned_at") is not None:  # spawn/fork -> first trial (benchmarks)
                trial.set_user_attr("worker_startup_s", time.time() - float(job["spawned_at"]))
            first = False
        _run_one(study, trial, space, cfg, trial_fn, callbacks, run_dir, job, redactor)


def _run_one(study: Any, trial: Any, space: SearchSpace, cfg: ExperimentConfig, trial_fn: Any,
             callbacks: list[Any], run_dir: Path, job: dict[str, Any], redactor: Redactor | None = None) -> None:
    from optuna.trial import TrialState

    tid = f"{job['study']}/{trial.number}"
    trial_dir = run_dir / "trials" / f"{trial.number:05d}"
    params: dict[str, Any] = {}
    reporter = OptunaReporter(trial, trial_dir, callbacks, tid)
    t0 = time.perf_counter()
    try:
        params = space.materialize(space.suggest(trial))
        trial.set_user_attr("params", json_safe(params))
        for key in (k for k in params if k.startswith("risk.weights.")):  # the weights, readable in the dashboard
            trial.set_user_attr(key, params[key])
        fire(callbacks, "on_trial_start", tid, params)
        tcfg = space.apply(cfg, params)
        tcfg.agent.device = trial_device(job["gpus_per_trial"], os.environ.get("CUDA_VISIBLE_DEVICES"))
        value = check_value(trial_fn(params, tcfg, reporter))
    except Prune:
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        study.tell(trial, state=TrialState.PRUNED)
        fire(callbacks, "on_trial_end", tid, params, PRUNED, reporter.last_value)
    except _Interrupted:
        trial.set_user_attr("interrupted", True)
        trial.set_user_attr("fail_reason", "worker stopped (SIGTERM)")
        study.tell(trial, state=TrialState.FAIL)
        fire(callbacks, "on_trial_end", tid, params, FAILED, None)
        raise SystemExit(143)
    except Exception as e:  # noqa: BLE001 - any trial error is recorded, the search goes on
        clean = redactor or redact_text
        reason = clean(f"{type(e).__name__}: {e}")
        trial.set_user_attr("fail_reason", reason[:2000])
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.log").write_text(clean(traceback.format_exc()))
        study.tell(trial, state=TrialState.FAIL)
        fire(callbacks, "on_trial_end", tid, params, FAILED, None)
    else:
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        study.tell(trial, value)
        fire(callbacks, "on_trial_end", tid, params, COMPLETE, value)


# ---------------------------------------------------------------------------------------- driver
def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []


def run_optuna(
    cfg: ExperimentConfig,
    *,
    workers: int | None = None,
    n_trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    pruner: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TuneResult:
    """Run (or resume) a study with ``workers`` processes until ``n_trials`` trials have finished.

    Workers are ``python -m intradayjules.tune.optuna_backend JOB.json --job-stdin`` processes (logs in
    ``run_dir/logs``); on another machine ``python -m intradayjules.tune.optuna_backend JOB.json`` joins an
    RDB-backed study (with ``$INTRADAYJULES_TUNE_STORAGE`` holding the storage URL when it has a
    password). Trial callbacks are factories named in ``tune.callbacks``. Ctrl-C stops the workers,
    marks their running trials interrupted and raises ``KeyboardInterrupt``; ``resume=True`` continues.
    A second coordinator of the same study directory is refused (:class:`~intradayjules.rundir.RunDirLocked`).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tc = cfg.tune
    n_trials = n_trials or tc.n_trials
    workers = workers if workers is not None else tc.workers
    if workers <= 0:
        workers = max(1, int((os.cpu_count() or 1) // max(tc.cpus_per_trial, 1)))
    pruner = pruner or tc.pruner
    name = study or tc.study_name or cfg.name
    run_dir = run_dir_for(cfg, name, "optuna")
    with rundir.lock(run_dir):
        return _run_locked(cfg, run_dir, name, workers, n_trials, storage, pruner, resume, progress)


def _run_locked(cfg: ExperimentConfig, run_dir: Path, name: str, workers: int, n_trials: int,
                storage: str | None, pruner: str, resume: bool, progress: bool) -> TuneResult:
    import optuna

    tc = cfg.tune
    spec = storage_spec(storage or tc.storage, run_dir)
    shown = redact_text(spec)
    SearchSpace.from_config(tc, cfg.agent.algo)  # fail fast on a bad space
    trial_fn = load_callable(tc.trial_fn)  # ... and on a bad trial_fn path
    gpus: list[str | None] = [None] * workers
    if tc.gpus_per_trial > 0:
        visible = _visible_gpus()
        if not visible:
            raise TuneError(f"tune.gpus_per_trial={tc.gpus_per_trial} but no GPU is visible "
                            "(CUDA_VISIBLE_DEVICES / nvidia-smi)")
        gpus = assign_gpus(workers, visible)
    st = open_storage(spec)
    exists = name in optuna.study.get_all_study_names(st)
    if exists and not resume:
        raise TuneError(f"study {name!r} already exists in {shown}; pass --resume to continue it "
                        "or choose another --study")
    if not exists and resume:
        raise TuneError(f"--resume: no study {name!r} in {shown}")
    if exists:
        s = optuna.load_study(study_name=name, storage=st)
        sd = optuna.study.StudyDirection
        want = sd.MAXIMIZE if tc.direction == "maximize" else sd.MINIMIZE
        if s.direction != want:
            raise TuneError(f"study {name!r} was created to {s.direction.name.lower()}, config says {tc.direction}")
    else:
        try:
            s = optuna.create_study(study_name=name, storage=st, direction=tc.direction)
        except optuna.exceptions.DuplicatedStudyError:
            raise TuneError(f"study {name!r} was just created in {shown} by another process running the same "
                            "search; wait for it, or pass --resume to join it") from None
        s.set_user_attr("trial_fn", tc.trial_fn)
        with warnings.catch_warnings():  # experimental in Optuna 5.0, stable in what it does
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            s.set_metric_names([metric_name(tc.trial_fn)])
    write_config(cfg, run_dir)
    reap_orphans(s)
    coordinator_cbs = make_callbacks(cfg)  # e.g. a tracker's study-level parent run, created once here

    base = dict(cfg=cfg.model_dump(mode="json"), storage=spec, study=name, n_trials=n_trials,
                pruner=pruner, run_dir=str(run_dir), n_workers=workers,
                torch_threads=cfg.agent.torch_threads, gpus_per_trial=tc.gpus_per_trial)
    procs: list[Any] = []
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    fork = use_fork(tc.gpus_per_trial)
    if fork and callable(getattr(trial_fn, "warm", None)):
        trial_fn.warm(cfg)  # e.g. the study's data, prepared once here and shared with the forked workers
    for i in range(workers):
        job = dict(base, index=i, seed=tc.sampler_seed, gpu=gpus[i], spawned_at=time.time())
        job_file = run_dir / f"worker_{i}.json"
        job_file.write_text(json.dumps(redact_obj(job)))  # a copy for people: no password
        if fork:
            procs.append(_fork_worker(job, logs / f"worker_{i}.log"))
            continue
        with open(logs / f"worker_{i}.log", "ab") as out:
            p = subprocess.Popen([sys.executable, "-m", __name__, str(job_file), "--job-stdin"],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
        procs.append(p)
        _send_job(p, job)
    (run_dir / "workers.json").write_text(json.dumps([{"index": i, "pid": p.pid} for i, p in enumerate(procs)]))

    display = _Progress(name, n_trials, workers, enabled=progress)
    reported_dead: set[int] = set()
    try:
        with display:
            while True:
                codes = [p.poll() for p in procs]
                for i, code in enumerate(codes):
                    if code not in (0, None) and i not in reported_dead:
                        reported_dead.add(i)
                        reap_orphans(s)
                        display.note(f"worker {i} (pid {procs[i].pid}) died with exit code {code}; "
                                     f"log: {logs / f'worker_{i}.log'}")
                display.update(count_trials(s), _best(s)[0], time.perf_counter() - t0)
                if all(c is not None for c in codes):
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        _stop(procs)
        reap_orphans(s)
        raise
    reap_orphans(s)
    result = summarize(s, run_dir, spec, time.perf_counter() - t0)
    result.write()
    if result.n_finished >= n_trials:
        close_callbacks(coordinator_cbs)
    if result.n_finished < n_trials:
        raise TuneError(f"study {name!r} stopped at {result.n_finished}/{n_trials} finished trials "
                        f"(workers died: {sorted(reported_dead)}); run again with --resume")
    return result


def use_fork(gpus_per_trial: float) -> bool:
    """Fork the workers (module docstring) unless GPUs are per trial, ``$INTRADAYJULES_TUNE_START`` is
    ``spawn``, or ``procs.fork_is_safe`` says no (no ``fork``; the coordinator runs other threads, whose
    locks held at the fork would stay held in the child forever; CUDA initialised here)."""
    return gpus_per_trial <= 0 and os.environ.get(START_ENV, "fork") != "spawn" and fork_is_safe()


class _ForkedWorker:
    """A worker forked by :func:`_fork_worker`, with the part of ``Popen``'s interface the driver uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def _signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)


def _fork_worker(job: dict[str, Any], log_path: Path) -> _ForkedWorker:
    """Fork a worker running ``_worker_main(job)`` with stdout/stderr appended to ``log_path``. The child
    leaves with ``os._exit`` (never returning into the coordinator's code, its locks or atexit hooks)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return _ForkedWorker(pid)
    code = 1
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own streams
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        _worker_main(job)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported in the worker's log, exit code 1
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _send_job(proc: subprocess.Popen, job: dict[str, Any]) -> None:
    """The full job (with credentials) through the worker's stdin pipe, then EOF."""
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except BrokenPipeError:  # the worker died at start-up; the coordinator reports its exit code
        pass


def read_job(argv: list[str]) -> dict[str, Any]:
    """The worker's job: from stdin with ``--job-stdin``, else the JOB.json file, with
    ``$INTRADAYJULES_TUNE_STORAGE`` (when set) as its storage."""
    job = json.loads(sys.stdin.read() if "--job-stdin" in argv else Path(argv[1]).read_text())
    if os.environ.get(STORAGE_ENV):
        job["storage"] = os.environ[STORAGE_ENV]
    return job


def _stop(procs: list[Any], grace_s: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def summarize(study: Any, run_dir: Path, spec: str | None, wall_s: float) -> TuneResult:
    from optuna.trial import TrialState

    c = count_trials(study)
    best_value, best_params = _best(study)
    trials = []
    for t in study.get_trials(deepcopy=False):
        state = {TrialState.COMPLETE: COMPLETE, TrialState.PRUNED: PRUNED}.get(t.state, t.state.name.lower())
        if t.state == TrialState.FAIL:
            state = "interrupted" if t.user_attrs.get("interrupted") else FAILED
        trials.append({"id": str(t.number), "state": state, "value": t.value,
                       "last_step": t.last_step, "params": t.user_attrs.get("params"),
                       "seconds": t.user_attrs.get("seconds"), "worker_pid": t.user_attrs.get("pid"),
                       "fail_reason": t.user_attrs.get("fail_reason"),
                       "worker_startup_s": t.user_attrs.get("worker_startup_s")})
    return TuneResult(backend="optuna", study=study.study_name, run_dir=str(run_dir),
                      direction=study.direction.name.lower(), best_value=best_value, best_params=best_params,
                      n_complete=c["complete"], n_pruned=c["pruned"], n_failed=c["failed"],
                      n_interrupted=c["interrupted"], wall_s=wall_s, trials=trials, storage=spec)


class _Progress:
    """Live rich table (trials done/pruned/failed/running, best value, rate); plain lines off a TTY."""

    def __init__(self, study: str, total: int, workers: int, enabled: bool = True):
        from rich.console import Console

        self.study, self.total, self.workers, self.enabled = study, total, workers, enabled
        self.console = Console(stderr=True, soft_wrap=True)
        self.notes: list[str] = []
        self._live: Any = None
        self._last: tuple | None = None

    def __enter__(self) -> "_Progress":
        if self.enabled and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def note(self, msg: str) -> None:
        """Always printed (stderr), with or without the live display."""
        self.notes.append(msg)
        self.console.print(f"[yellow]{msg}[/]", highlight=False)

    def update(self, c: dict[str, int], best: float | None, elapsed: float) -> None:
        if not self.enabled:
            return
        key = (c["finished"], c["running"], c["interrupted"], best)
        if self._live is None:
            if key != self._last:
                self.console.print(self._line(c, best, elapsed), highlight=False)
            self._last = key
            return
        from rich.table import Table

        t = Table(title=f"optuna study {self.study}: {self.workers} worker process(es)")
        cols = ("finished", "complete", "pruned", "failed", "running", "interrupted", "best", "trials/h", "elapsed")
        for col in cols:
            t.add_column(col, justify="right")
        rate = c["finished"] / elapsed * 3600 if elapsed > 0 else 0.0
        t.add_row(f"{c['finished']}/{self.total}", str(c["complete"]), str(c["pruned"]), str(c["failed"]),
                  str(c["running"]), str(c["interrupted"]), "-" if best is None else f"{best:.6g}",
                  f"{rate:,.0f}", f"{elapsed:,.1f} s")
        self._live.update(t)

    def _line(self, c: dict[str, int], best: float | None, elapsed: float) -> str:
        b = "-" if best is None else f"{best:.6g}"
        return (f"[{elapsed:7.1f} s] {c['finished']}/{self.total} finished: {c['complete']} complete, "
                f"{c['pruned']} pruned, {c['failed']} failed, {c['running']} running; best {b}")


if __name__ == "__main__":
    _worker_main(read_job(sys.argv))
