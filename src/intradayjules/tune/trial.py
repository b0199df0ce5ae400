"""The contract between a search backend and a trial function.

A trial function is named by an import path in ``cfg.tune.trial_fn`` (``"package.module:function"`` or
``"/absolute/path/file.py:function"``) and called as::

    value = trial_fn(params, cfg, reporter)

``params`` maps dotted config paths to the sampled values (risk weights already on the simplex);
``cfg`` is the experiment config with ``params`` applied and ``cfg.agent.device`` set for this trial;
``reporter.report(step, value)`` records an intermediate objective (``step`` counts evaluations,
1, 2, ...) and raises :class:`Prune` when the pruner/scheduler says stop (it returns ``False``
otherwise); ``reporter.checkpoint_dir()`` is a directory whose contents are attached to the next
``report`` as the trial's checkpoint (Ray; PBT restores from it); ``reporter.restore_dir()`` is the
directory of the checkpoint this trial starts from, or ``None``; ``reporter.checkpoint_every`` is the
number of reports between checkpoints the backend needs (``None``: no checkpoints needed);
``reporter.trial_key`` (optional) is the trial's id as the backend's results list it.
The return value is the final objective, higher is better for ``direction: maximize``. Raising, or
returning NaN/inf, marks the trial failed; the search goes on.

Callbacks (tracking, e.g. MLflow nested runs) see every trial without the tune layer importing them::

    on_trial_start(trial_id: str, params: dict)
    on_report(trial_id: str, step: int, value: float)
    on_trial_end(trial_id: str, params: dict, state: str, value: float | None)  # complete|pruned|failed

They run in the Optuna worker process that owns the trial, or in the Ray driver. Factories named in
``tune.callbacks`` are also called once in the coordinating process (the command itself) before any
worker starts, so a tracker can create the study's parent run exactly once; when the search ends the
coordinator calls ``close()`` on its callbacks that have one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any, Callable, Protocol

from ..config import ExperimentConfig
from ..errors import ConfigError, IntradayJulesError

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"


class Prune(Exception):
    """Raised by ``reporter.report`` when the pruner/scheduler stops the trial early."""


class TrialFailed(IntradayJulesError):
    """The trial produced no usable objective (NaN/inf, or an error the trial raised)."""


class Reporter(Protocol):
    checkpoint_every: int | None

    def report(self, step: int, value: float) -> bool: ...

    def checkpoint_dir(self) -> Path: ...

    def restore_dir(self) -> Path | None: ...


class TrialCallbacks(Protocol):
    def on_trial_start(self, trial_id: str, params: dict[str, Any]) -> None: ...

    def on_report(self, trial_id: str, step: int, value: float) -> None: ...

    def on_trial_end(self, trial_id: str, params: dict[str, Any], state: str, value: float | None) -> None: ...


def load_callable(path: str, field: str = "tune.trial_fn") -> Callable[..., Any]:
    """Resolve ``"pkg.mod:name"`` or ``"/abs/file.py:name"``; errors name the config field."""
    if ":" not in path:
        raise ConfigError([f"{field}: expected 'module:function' or '/path/file.py:function' (got {path!r})"])
    mod_part, _, name = path.rpartition(":")
    try:
        if mod_part.endswith(".py"):
            file = Path(mod_part).resolve()
            if not file.is_file():
                raise FileNotFoundError(f"no such file {file}")
            mod_name = "_ij_trial_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
            module = sys.modules.get(mod_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(mod_name, file)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_part)
    except Exception as e:  # noqa: BLE001 - any import failure is a config problem here
        raise ConfigError([f"{field}: cannot import {mod_part!r}: {type(e).__name__}: {e}"]) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError([f"{field}: {mod_part!r} has no callable {name!r}"])
    return fn


def make_callbacks(cfg: ExperimentConfig, extra: list[Any] | None = None) -> list[Any]:
    """Callbacks from ``cfg.tune.callbacks`` (factories called with ``cfg``) plus ``extra`` objects."""
    out = [load_callable(p, "tune.callbacks")(cfg) for p in cfg.tune.callbacks]
    return out + list(extra or [])


def fire(callbacks: list[Any], event: str, *args: Any) -> None:
    """Call ``event`` on each callback that defines it. A failing callback never fails the trial."""
    import logging

    for cb in callbacks:
        fn = getattr(cb, event, None)
        if fn is None:
            continue
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("tune callback %r.%s failed", cb, event)


def close_callbacks(callbacks: list[Any]) -> None:
    """Call ``close()`` on callbacks that have one (the coordinating process, once the search ended)."""
    import logging

    for cb in callbacks:
        fn = getattr(cb, "close", None)
        if fn is None:
            continue
        try:
            fn()
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("tune callback %r.close failed", cb)


def check_value(value: Any, what: str = "objective") -> float:
    """A finite float, or :class:`TrialFailed` naming what was wrong."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TrialFailed(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(v):
        raise TrialFailed(f"{what} is {v}")
    return v


def trial_device(gpus_per_trial: float, visible: str | None) -> str:
    """The torch device string for a trial.

    ``visible`` is the trial process's ``CUDA_VISIBLE_DEVICES`` (Ray sets it to the GPU(s) it assigned;
    the Optuna backend sets it per worker). Inside that mask the assigned GPU is always ``cuda:0``.
    """
    if gpus_per_trial <= 0:
        return "cpu"
    if visible is None or visible.strip() in ("", "-1", "NoDevFiles"):
        raise TrialFailed(f"gpus_per_trial={gpus_per_trial} but no GPU is visible to this trial")
    return "cuda:0"


def assign_gpus(n_workers: int, visible: list[str]) -> list[str | None]:
    """Round-robin GPU ids for Optuna worker processes (``CUDA_VISIBLE_DEVICES`` value per worker)."""
    if not visible:
        return [None] * n_workers
    return [visible[i % len(visible)] for i in range(n_workers)]
