"""Process helpers shared by the layers: whether a process is alive (tune/ and track/ reap the work of dead
ones) and whether this one may fork workers (tune/'s Optuna workers, pipeline/'s seed workers)."""

from __future__ import annotations

import os
import sys
import threading


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine. A zombie (killed, not yet reaped by its parent)
    still answers ``kill(pid, 0)`` but counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def fork_is_safe() -> bool:
    """Whether a child forked now can run Python safely: the platform has ``fork``, this process runs no
    other thread (a lock one of them holds at the fork would stay held in the child forever) and CUDA is
    not initialised here (a forked child cannot use it)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    torch = sys.modules.get("torch")
    return not (torch is not None and torch.cuda.is_initialized())
