"""Orphaned MLflow runs: RUNNING runs whose process is gone are marked KILLED when the next run starts.

A process killed with SIGKILL (or a machine that lost power) never ends its MLflow runs: they stay
RUNNING forever. Every run records its owner when it starts (``Tracker.start_run``: tags
``intradayjules.worker_host`` and ``intradayjules.worker_pid``). ``reap_orphaned_runs(tracker, stale)``
looks at every RUNNING run of the tracker's experiment and marks it KILLED
(``MlflowClient.set_terminated(run_id, "KILLED")``, tag ``intradayjules.orphaned`` saying why) when

* its host is this host and its pid is not alive (``procs.pid_alive``: a zombie counts as dead), or
* its host and pid are those of ``stale``, the record a dead holder left in the run directory's lock file
  (``rundir.stale_holder``): that process held the lock until it died, so it is gone even when it ran on
  another host sharing the run directory.

A run of another host that is not named by a stale lock record is left alone (its pid means nothing here),
as is any run whose process is alive. A trial run (``intradayjules.trial_key``) also gets
``intradayjules.trial_state = killed``. Returns one line per reaped run, for the caller to print.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from ..procs import pid_alive
from .lineage import TAG_PREFIX
from .mlflow_tracking import TAG_TRIAL_KEY, TAG_TRIAL_STATE, TAG_WORKER_HOST, TAG_WORKER_PID

log = logging.getLogger(__name__)

TAG_ORPHANED = TAG_PREFIX + "orphaned"


def orphan_reason(tags: Mapping[str, str], stale: Mapping[str, Any] | None = None,
                  host: str | None = None) -> str | None:
    """Why the RUNNING run with ``tags`` is orphaned (module docstring), or None when it may be alive."""
    host = host or socket.gethostname()
    run_host, pid = tags.get(TAG_WORKER_HOST), tags.get(TAG_WORKER_PID, "")
    if not run_host or not pid.isdigit():
        return None  # no owner recorded (not started by this package): nothing to judge by
    if stale and str(stale.get("pid")) == pid and stale.get("host") == run_host:
        return f"pid {pid} on {run_host} died holding the run directory lock"
    if run_host == host and not pid_alive(int(pid)):
        return f"pid {pid} on {run_host} is no longer running"
    return None


def reap_orphaned_runs(tracker: Any, stale: Mapping[str, Any] | None = None) -> list[str]:
    """Mark the orphaned RUNNING runs of ``tracker``'s experiment KILLED (module docstring); returns one
    line per run reaped. A tracker with tracking off reaps nothing."""
    if not getattr(tracker, "enabled", False):
        return []
    client = tracker.client
    running = client.search_runs([tracker.experiment_id], filter_string="attributes.status = 'RUNNING'",
                                 max_results=5000)
    me = socket.gethostname()
    lines = []
    for r in running:
        why = orphan_reason(r.data.tags, stale, me)
        if why is None:
            continue
        run_id = r.info.run_id
        client.set_tag(run_id, TAG_ORPHANED, f"{why}; marked KILLED by pid {os.getpid()} on {me} at "
                                             f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}")
        if TAG_TRIAL_KEY in r.data.tags:
            client.set_tag(run_id, TAG_TRIAL_STATE, "killed")
        client.set_terminated(run_id, status="KILLED")
        line = f"MLflow run {run_id} ({r.info.run_name}) was left RUNNING: {why}; marked KILLED"
        log.warning(line)
        lines.append(line)
    return lines
