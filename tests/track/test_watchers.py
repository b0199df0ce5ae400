"""``mlflow ui`` on a work dir (the command docs/watching.md gives): healthy, shows the experiment with its
kind, serves a run's report artifact; stopped by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from intradayjules.track import log_report_outputs, make_tracker, resolve_tracking
from intradayjules.track.mlflow_tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

from .conftest import _stop_group, free_port


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return r.read()


def test_mlflow_ui_on_a_work_dir(tmp_path, sqlite_template, monkeypatch):
    import shutil

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work = tmp_path / "runs"
    work.mkdir()
    shutil.copyfile(sqlite_template, work / "mlflow.db")
    tracker = make_tracker(resolve_tracking(None, work))
    with tracker.start_run("job") as run:
        pass
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.html").write_text("<html>the report</html>")
    log_report_outputs(tracker, run.run_id, tmp_path / "out")

    port = free_port()
    log = tmp_path / "ui.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if _get(base + "/health").strip() == b"OK":
                    break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"mlflow ui not healthy after 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        exp = json.loads(_get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=intradayjules"))
        tags = {t["key"]: t["value"] for t in exp["experiment"].get("tags", [])}
        assert tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
        q = urllib.parse.urlencode({"path": "report/report.html", "run_uuid": run.run_id})
        assert _get(f"{base}/get-artifact?{q}") == b"<html>the report</html>"
    finally:
        _stop_group(proc)
    with pytest.raises(OSError):
        _get(base + "/health")
