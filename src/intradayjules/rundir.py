"""Run directories: names that are safe as paths, and one writer at a time.

``check_name(name, what)`` accepts what the config's ``name`` accepts (``[A-Za-z0-9][A-Za-z0-9_.-]*``,
at most 128 characters, not ``.``/``..``) and raises :class:`~intradayjules.errors.ConfigError` naming
``what`` otherwise: ``--name ../../x`` or ``--study ../x`` can never leave the work directory.

``lock(path)`` holds an exclusive lock on the run directory ``path`` (``path/.lock``, ``flock``: the
kernel drops it when the holder dies, so a killed run never leaves a stale lock). While held, the file
records the holder (``pid``, ``host``, ``command``, ``since``). A second process asking for the same
directory gets :class:`RunDirLocked` naming that pid at once (no waiting). Re-entrant within one
process: nested ``lock(path)`` calls of one process share the lock. A clean release empties the record,
so a record found when taking the lock was left by a holder that died: ``stale_holder(path)`` returns it
(``track/orphans.py`` marks that holder's MLflow runs KILLED). ::

    with rundir.lock(run_dir):
        train(...)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from .errors import ConfigError, IntradayJulesError
from .redact import redact_text

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 128
LOCK_FILE = ".lock"


class RunDirLocked(IntradayJulesError):
    """Another process is writing this run directory."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        since = holder.get("since")
        when = f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
        cmd = f" ({holder['command']})" if holder.get("command") else ""
        super().__init__(f"run directory {path} is in use by {who}{when}{cmd}; wait for it to finish, "
                         "stop it, or use another --name")


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is safe as one path component (see module docstring), else ConfigError."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > MAX_NAME or name in (".", ".."):
        raise ConfigError([f"{what}: {name!r} must be 1-{MAX_NAME} letters, digits, '_', '.', '-' starting with a "
                           "letter or digit (it is used as a directory name)"])
    return name


_held: dict[str, list] = {}  # realpath -> [fd, depth]
_held_guard = threading.Lock()


def _holder(lock_file: Path) -> dict:
    try:
        return json.loads(lock_file.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def stale_holder(path: str | Path) -> dict | None:
    """The holder record (``pid``, ``host``, ``command``, ``since``) that a process which died while it
    held ``path``'s lock left in the lock file, as found when this process took the lock; None when the
    last holder released it cleanly (a release empties the record) or this process does not hold it."""
    with _held_guard:
        held = _held.get(os.path.realpath(Path(path)))
        return dict(held[2]) if held and held[2] else None


@contextlib.contextmanager
def lock(path: str | Path) -> Iterator[Path]:
    """Hold ``path``'s run-directory lock (created with the directory if missing); see module docstring."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _held_guard:
                _held[key][1] -= 1
        return
    lock_file = path / LOCK_FILE
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirLocked(path, _holder(lock_file)) from None
    left = os.pread(fd, 65536, 0)  # a record left behind: its holder died without releasing the lock
    try:
        stale = json.loads(left) if left.strip() else None
    except ValueError:
        stale = {"unreadable": left[:200].decode(errors="replace")}
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
            "command": redact_text(" ".join(sys.argv))[:500]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    with _held_guard:
        _held[key] = [fd, 1, stale if isinstance(stale, dict) else None]
    try:
        yield path
    finally:
        with _held_guard:
            _held.pop(key, None)
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
