"""Optuna Dashboard on a study journal: objective and parameter names are readable (no ``simplex:``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from intradayjules.config import config_from_dict
from intradayjules.tune.optuna_backend import DEFAULT_METRIC_NAME, metric_name, run_optuna

OBJ = Path(__file__).resolve().parent / "objectives.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.time() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:] if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.25)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_metric_name_of_the_default_and_a_custom_trial():
    from intradayjules.config import TuneConfig

    assert metric_name(TuneConfig().trial_fn) == DEFAULT_METRIC_NAME == "objective (bps/day - 10 x composite)"
    assert metric_name("pkg.mod:fn") == "objective (pkg.mod:fn)"


def test_dashboard_shows_readable_names(tmp_path, monkeypatch):
    exe = shutil.which("optuna-dashboard") or str(Path(sys.executable).with_name("optuna-dashboard"))
    if not Path(exe).exists():
        pytest.skip("optuna-dashboard is not installed (pip install '.[dashboard]')")
    monkeypatch.setenv("IJ_TEST_SLEEP", "0")
    cfg = config_from_dict({"workdir": str(tmp_path / "runs"), "tune": {"trial_fn": f"{OBJ}:noisy_quadratic"}})
    res = run_optuna(cfg, workers=1, n_trials=3, study="dash", progress=False)
    assert res.n_complete == 3
    journal = Path(res.run_dir) / "journal.log"
    assert journal.is_file()

    port = _free_port()
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, str(journal), "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        studies = _get_json(f"{base}/api/studies", proc=proc, log=log)["study_summaries"]
        assert [s["study_name"] for s in studies] == ["dash"]
        detail = _get_json(f"{base}/api/studies/{studies[0]['study_id']}")
    finally:
        _stop(proc)
    assert proc.poll() is not None
    # a custom trial function: its objective is named after it
    assert detail["objective_names"] == [f"objective ({OBJ}:noisy_quadratic)"]
    names = {p["name"] for p in detail["union_search_space"]}
    assert not any(n.startswith("simplex:") for n in names), names
    weights = {f"risk.weights.{c}.raw_u" for c in ("drawdown", "ulcer", "impact", "staleness")}
    assert weights <= names and "agent.learning_rate" in names
    # the materialised weights are user attributes of each trial, summing to 1
    for t in detail["trials"]:
        attrs = {a["key"]: float(a["value"]) for a in t["user_attrs"] if a["key"].startswith("risk.weights.")}
        assert len(attrs) == 5 and abs(sum(attrs.values()) - 1.0) < 1e-9


def test_a_study_started_with_simplex_names_keeps_them_on_resume():
    """Renaming the raw weights must not break a resumed study: it keeps its old names (TPE history),
    and materialize maps either name to the same weights."""
    import optuna

    from intradayjules.config import TuneConfig
    from intradayjules.tune.space import SIMPLEX_PREFIX, SearchSpace, simplex_name

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace.from_config(TuneConfig(search_space={}))
    old = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    old.optimize(lambda t: sum(t.suggest_float(SIMPLEX_PREFIX + c, 1e-6, 1.0) for c in space.simplex), n_trials=2)
    raw = space.suggest(old.ask())
    assert sorted(raw) == sorted(SIMPLEX_PREFIX + c for c in space.simplex)
    new = space.suggest(optuna.create_study().ask())
    assert sorted(new) == sorted(simplex_name(c) for c in space.simplex)
    renamed = {simplex_name(k[len(SIMPLEX_PREFIX):]): v for k, v in raw.items()}
    assert space.materialize(raw) == space.materialize(renamed)
