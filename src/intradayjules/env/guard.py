"""The test-block guard: choices (tuning, early stopping, model selection, thresholds) never see test sessions.

Inside ``with tuning_phase(horizon=...)`` the data layer refuses held-out sessions:
``EnvData.session_indices("test")`` (and so ``make_env(..., split="test")``, ``evaluate_policy(..., "test")``)
raises :class:`HeldOutAccessError`, and so does a request for any split whose sessions reach ``horizon``
(the first test session of the fold being tuned: with walk-forward folds, a later fold's training or
validation block lies after an earlier fold's test block, and must not be used to choose for that fold).

The tuning trial (``pipeline.trial.dqn_trial``) runs its whole body inside the phase, in whichever process
runs it (Optuna worker, Ray actor), so the guard holds where the work happens. The state is per process
(a stack, phases nest; threads of the process share it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from ..errors import IntradayJulesError


class HeldOutAccessError(IntradayJulesError):
    """A test block (or a session at or after the tuning horizon) was requested during tuning."""


_PHASES: list[dict] = []


@contextmanager
def tuning_phase(horizon=None, what: str = "tuning") -> Iterator[None]:
    """Refuse test sessions (and sessions on or after ``horizon``, a date) until the block ends."""
    h = None if horizon is None else np.datetime64(pd.Timestamp(horizon).tz_localize(None).normalize(), "ns")
    _PHASES.append({"horizon": h, "what": what})
    try:
        yield
    finally:
        _PHASES.pop()


def in_tuning_phase() -> bool:
    return bool(_PHASES)


def check_access(split: str, sessions) -> None:
    """Raise :class:`HeldOutAccessError` if ``split`` (with these sessions) may not be used right now."""
    if not _PHASES:
        return
    what = _PHASES[-1]["what"]
    if split == "test":
        raise HeldOutAccessError(
            f"the {what} phase asked for the 'test' split: test blocks are never used for tuning, early "
            "stopping, model selection or thresholds (use 'val'; evaluate on 'test' after the choice is made)")
    horizons = [p["horizon"] for p in _PHASES if p["horizon"] is not None]
    s = np.asarray(sessions, dtype="datetime64[ns]")
    if horizons and len(s):
        h = min(horizons)
        late = s[s >= h]
        if len(late):
            raise HeldOutAccessError(
                f"the {what} phase asked for split {split!r}, which holds {len(late)} session(s) on or after "
                f"{np.datetime_as_string(h, unit='D')} (first: {np.datetime_as_string(late.min(), unit='D')}), "
                "the first test session of the fold being tuned")
