"""Optuna backend: N worker *processes* share one study (GIL-free parallelism for CPU-bound training).

Storage: by default a ``JournalFileBackend`` file ``<workdir>/tune/<study>/journal.log``; an RDB URL
(``postgresql://``, ``mysql+pymysql://``, ``sqlite:///``) lets workers on several machines join one study.
Each finished trial is appended to the storage the moment it ends, so killing a worker, or the whole
command, loses no completed trial; ``resume=True`` continues until ``n_trials`` trials have *finished*
(complete + pruned + failed). A trial whose worker died is marked FAIL with user attribute
``interrupted`` and does not count. Worker ``i`` samples with ``TPESampler(seed=sampler_seed + i)``
(exactly seed 42 for the sequential baseline) and ``constant_liar`` when there are several workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..procs import pid_alive as _pid_alive
from ..config import ExperimentConfig
from .objective import PREPARED_ENV, share_prepared
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


def open_storage(spec: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if spec.startswith("journal:"):
        path = Path(spec[len("journal:") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=_flock_lock(str(path))))
    if spec.startswith("sqlite"):
        return RDBStorage(spec, engine_kwargs={"connect_args": {"timeout": 30}})
    try:
        return RDBStorage(spec)
    except (ImportError, ModuleNotFoundError) as e:  # a database driver is missing
        raise TuneError(f"--storage {spec}: {e}") from None
    except optuna.exceptions.StorageInternalError as e:  # pragma: no cover - needs a real DB
        raise TuneError(f"--storage {spec}: cannot connect: {e}") from None


def make_pruner(kind: str) -> Any:
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise TuneError(f"unknown pruner {kind!r} (median, hyperband, none)")


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
    space = SearchSpace.from_config(cfg.tune)
    trial_fn = load_callable(cfg.tune.trial_fn)
    extra = []
    if (Path(job["run_dir"]) / "callbacks.pkl").exists():
        import pickle

        extra = pickle.loads((Path(job["run_dir"]) / "callbacks.pkl").read_bytes())
    callbacks = make_callbacks(cfg, extra)
    storage = open_storage(job["storage"])
    sampler = optuna.samplers.TPESampler(seed=job["seed"], constant_liar=job["n_workers"] > 1)
    study = optuna.load_study(study_name=job["study"], storage=storage, sampler=sampler,
                              pruner=make_pruner(job["pruner"]))
    run_dir = Path(job["run_dir"])
    lock = FileLock(str(run_dir / "ask.lock")) if job["storage"].startswith("journal:") else contextlib.nullcontext()
    parent = os.getppid()
    while os.getppid() == parent:
        with lock:
            reap_orphans(study)
            c = count_trials(study)
            if c["finished"] + c["running"] >= job["n_trials"]:
                break
            trial = study.ask()
            trial.set_user_attr("host", HOST)
            trial.set_user_attr("pid", os.getpid())
            trial.set_user_attr("worker", job["index"])
        _run_one(study, trial, space, cfg, trial_fn, callbacks, run_dir, job)


def _run_one(study: Any, trial: Any, space: SearchSpace, cfg: ExperimentConfig, trial_fn: Any,
             callbacks: list[Any], run_dir: Path, job: dict[str, Any]) -> None:
    from optuna.trial import TrialState

    tid = f"{job['study']}/{trial.number}"
    trial_dir = run_dir / "trials" / f"{trial.number:05d}"
    params: dict[str, Any] = {}
    reporter = OptunaReporter(trial, trial_dir, callbacks, tid)
    t0 = time.perf_counter()
    try:
        params = space.materialize(space.suggest(trial))
        trial.set_user_attr("params", json_safe(params))
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
        reason = f"{type(e).__name__}: {e}"
        trial.set_user_attr("fail_reason", reason[:2000])
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.log").write_text(traceback.format_exc())
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
    callbacks: list[Any] | None = None,
) -> TuneResult:
    """Run (or resume) a study with ``workers`` processes until ``n_trials`` trials have finished.

    Workers are ``python -m intradayjules.tune.optuna_backend JOB.json`` processes (logs in
    ``run_dir/logs``); on another machine the same command joins an RDB-backed study.
    ``callbacks`` must be picklable (they are sent to the worker processes). Ctrl-C stops the workers,
    marks their running trials interrupted and raises ``KeyboardInterrupt``; ``resume=True`` continues.
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
    spec = storage_spec(storage or tc.storage, run_dir)
    SearchSpace.from_config(tc)  # fail fast on a bad space
    load_callable(tc.trial_fn)  # ... and on a bad trial_fn path
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
        raise TuneError(f"study {name!r} already exists in {spec}; pass --resume to continue it "
                        "or choose another --study")
    if not exists and resume:
        raise TuneError(f"--resume: no study {name!r} in {spec}")
    if exists:
        s = optuna.load_study(study_name=name, storage=st)
        sd = optuna.study.StudyDirection
        want = sd.MAXIMIZE if tc.direction == "maximize" else sd.MINIMIZE
        if s.direction != want:
            raise TuneError(f"study {name!r} was created to {s.direction.name.lower()}, config says {tc.direction}")
    else:
        s = optuna.create_study(study_name=name, storage=st, direction=tc.direction)
        s.set_user_attr("trial_fn", tc.trial_fn)
    write_config(cfg, run_dir)
    reap_orphans(s)
    coordinator_cbs = make_callbacks(cfg)  # e.g. a tracker's study-level parent run, created once here

    base = dict(cfg=cfg.model_dump(mode="json"), storage=spec, study=name, n_trials=n_trials,
                pruner=pruner, run_dir=str(run_dir), n_workers=workers,
                torch_threads=cfg.agent.torch_threads, gpus_per_trial=tc.gpus_per_trial)
    procs = []
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    if callbacks:
        import pickle

        (run_dir / "callbacks.pkl").write_bytes(pickle.dumps(list(callbacks)))
    else:
        (run_dir / "callbacks.pkl").unlink(missing_ok=True)
    t0 = time.perf_counter()
    shared = share_prepared(cfg, run_dir)  # issue 16: the trial data prepared once, loaded by every worker
    env = {**os.environ, PREPARED_ENV: str(shared)} if shared else None
    for i in range(workers):
        job = dict(base, index=i, seed=tc.sampler_seed + i, gpu=gpus[i])
        job_file = run_dir / f"worker_{i}.json"
        job_file.write_text(json.dumps(job))
        with open(logs / f"worker_{i}.log", "ab") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", __name__, str(job_file)], env=env,
                                          stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
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


def _stop(procs: list[subprocess.Popen], grace_s: float = 10.0) -> None:
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
                       "fail_reason": t.user_attrs.get("fail_reason")})
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
    _worker_main(json.loads(Path(sys.argv[1]).read_text()))
