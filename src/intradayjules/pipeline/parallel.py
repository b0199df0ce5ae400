"""Independent training runs (the seeds of an arm) in forked worker processes.

``map_forked(fn, items, workers)`` returns ``[fn(x) for x in items]`` in item order, computed by up to
``workers`` processes forked from this one. A forked worker starts with the prepared data, the imports
and the numba kernels already in memory (copy-on-write: nothing is pickled or re-read on the way in), and
with whatever ``before_fork`` loaded here first (the trainings' lazy imports and env kernels:
``agents.sb3.warm_training``);
only each result comes back, pickled through the pool's pipe between these two processes of the same run.
Seeded runs give the same results in a worker as in this process (tested), so the worker count changes
the wall time, never a figure. On Linux a worker dies with this process (``PR_SET_PDEATHSIG``): a killed job
leaves no worker writing into the run directory its restart resumes.

It runs one item after another in this process instead when ``workers`` is 1, there is one item, the
platform has no ``fork``, ``$INTRADAYJULES_PARALLEL`` is ``0``, CUDA is initialised here (a forked child
cannot use it), or this process runs other threads (a lock one of them holds at the fork would stay held
in the child forever): ``procs.fork_is_safe``, the rule the tuning workers follow too.

``agent.seed_workers`` sets the count for the seeds of every comparison (``pipeline.compare.train_arm``):
0 (default) = the local cores (at most one per item), 1 = one after another.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..procs import fork_is_safe

T = TypeVar("T")
R = TypeVar("R")
PARALLEL_ENV = "INTRADAYJULES_PARALLEL"

_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None  # set in the parent, inherited by the fork


def _run(i: int) -> Any:
    assert _JOB is not None
    fn, items = _JOB
    return fn(items[i])


def _die_with_parent(parent: int) -> None:
    """Linux: this worker gets SIGKILL when the process that forked it dies, so no orphan goes on writing
    into a run directory that a restart resumes (elsewhere: nothing)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # it died before the call above
            os._exit(1)


def worker_count(workers: int, n_items: int) -> int:
    """``workers`` (0 = the local cores) capped at ``n_items``, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(workers) if workers > 0 else cores, int(n_items)))


def can_fork() -> bool:
    """Whether forking workers here is safe and allowed (module docstring)."""
    return os.environ.get(PARALLEL_ENV, "1") != "0" and fork_is_safe()


def map_forked(fn: Callable[[T], R], items: Sequence[T], workers: int = 0,
               on_result: Callable[[R], None] | None = None, before_fork: Callable[[], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, in forked workers when that is possible and asked for (module docstring).
    ``on_result`` sees each result in item order as soon as it and those before it are done. An exception
    in a worker is raised here, after the pool is shut down. ``before_fork`` runs here just before the
    workers are forked, and only then: e.g. ``agents.sb3.warm_training``, so that each worker does not
    load the same lazy imports and kernels itself."""
    global _JOB
    items = list(items)
    out: list[R] = []
    n = worker_count(workers, len(items))
    if n <= 1 or not can_fork():
        for x in items:
            out.append(fn(x))
            if on_result is not None:
                on_result(out[-1])
        return out
    if before_fork is not None:
        before_fork()
    _JOB = (fn, items)
    try:
        ctx = multiprocessing.get_context("fork")
        # every worker is forked here, before the pool starts its own threads; a worker takes items until
        # none are left, as this process would one after another (each run seeds everything it uses)
        with ctx.Pool(n, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            for r in pool.imap(_run, range(len(items)), chunksize=1):
                out.append(r)
                if on_result is not None:
                    on_result(r)
        return out
    finally:
        _JOB = None
