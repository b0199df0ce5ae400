"""Nested runs for tuning: Optuna and Ray Tune studies, a killed worker, no duplicate runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from intradayjules.track.mlflow_tracking import PARENT_TAG, TAG_TRIAL_KEY, TAG_TRIAL_STATE
from intradayjules.track.tune_callbacks import OBJECTIVE, TrialTracking

STATUS = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED", "killed": "KILLED"}


def _children_by_key(tracker, parent_id):
    kids = tracker.children(parent_id)
    keys = [r.data.tags[TAG_TRIAL_KEY] for r in kids]
    assert len(keys) == len(set(keys)), f"duplicate trial runs: {keys}"
    return {r.data.tags[TAG_TRIAL_KEY]: r for r in kids}


def _curve(x: float, step: int) -> float:
    return (x - 1.0) ** 2 + 1.0 / step


def test_optuna_study_nested_runs_match_optuna_states(tracker, cartpole_zip):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tracking = TrialTracking.for_study(tracker, "optuna-study", params={"tune.backend": "optuna"})

    def objective(trial):
        tid = str(trial.number)
        params = {"x": trial.suggest_float("x", -4, 4)}
        tracking.on_trial_start(tid, params)
        try:
            if trial.number == 3:
                raise ValueError("boom")
            for step in range(1, 6):
                v = _curve(params["x"], step)
                trial.report(v, step)
                tracking.on_report(tid, step, v)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        except optuna.TrialPruned:
            tracking.on_trial_end(tid, params, "pruned", v)
            raise
        except ValueError:
            tracking.on_trial_end(tid, params, "failed", None)
            raise
        tracking.on_trial_end(tid, params, "complete", v)
        return v

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=42),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    study.optimize(objective, n_trials=10, catch=(ValueError,))
    assert tracking.close() == []  # nothing left running

    parent = tracker.client.get_run(tracking.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.params == {"tune.backend": "optuna"}
    runs = _children_by_key(tracker, tracking.parent_run_id)
    assert sorted(runs, key=int) == [str(t.number) for t in study.trials]
    optuna_state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
    seen = set()
    for t in study.trials:
        r = runs[str(t.number)]
        state = optuna_state[t.state.name]
        seen.add(state)
        assert r.data.tags[TAG_TRIAL_STATE] == state and r.info.status == STATUS[state]
        assert r.data.tags[PARENT_TAG] == tracking.parent_run_id
        assert r.data.params == {"x": str(t.params["x"])}
        hist = sorted(tracker.client.get_metric_history(r.info.run_id, OBJECTIVE), key=lambda m: m.step)
        assert [(m.step, m.value) for m in hist] == [(s, pytest.approx(v)) for s, v in sorted(t.intermediate_values.items())]
        if state == "complete":
            assert r.data.metrics[OBJECTIVE + "_final"] == pytest.approx(t.value)
    assert seen == {"complete", "pruned", "failed"}
    # the study's best model becomes the champion version
    best = tracking.best_run_id(mode="min")
    assert best == tracking.run_id_of(str(study.best_trial.number))
    assert best == runs[str(study.best_trial.number)].info.run_id
    from intradayjules.track import get_version, register_model

    v = register_model(tracker, best, cartpole_zip)
    assert get_version(tracker, v.name, "@champion").run_id == best


@pytest.fixture(scope="module")
def ray_token(tmp_path_factory):
    """One token file for every ray.init of this module (Ray caches the token per process)."""
    import secrets

    token = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    return token


@pytest.mark.slow
def test_ray_tune_nested_runs(tracker, tmp_path, monkeypatch, ray_token):
    """Ray Tune (ASHA) drives the callbacks from the driver, as the ray backend does."""
    pytest.importorskip("ray.tune")
    token = ray_token
    for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                 "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
        monkeypatch.setenv(k, v)
    reset_token_cache = "ray" in sys.modules
    import ray
    from ray import tune

    if reset_token_cache:  # another test of this process may have used another token file
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    from ray.tune.schedulers import ASHAScheduler

    tracking = TrialTracking.for_study(tracker, "ray-study", params={"tune.backend": "ray"})
    max_t = 8

    class Forward(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            tracking.on_trial_start(trial.trial_id, dict(trial.config))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            tracking.on_report(trial.trial_id, int(result["training_iteration"]), float(result["loss"]))

        def on_trial_complete(self, iteration, trials, trial, **info):
            last = trial.last_result or {}
            state = "complete" if last.get("training_iteration") == max_t else "pruned"
            tracking.on_trial_end(trial.trial_id, dict(trial.config), state, last.get("loss"))

        def on_trial_error(self, iteration, trials, trial, **info):
            tracking.on_trial_end(trial.trial_id, dict(trial.config), "failed", None)

    def trainable(config):  # self-contained: pickled by value into Ray workers (no test-module globals)
        if config["x"] == 3.0:
            raise RuntimeError("trial fails on purpose")
        for step in range(1, max_t + 1):
            tune.report({"loss": (config["x"] - 1.0) ** 2 + 1.0 / step})

    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="ijray-", dir="/tmp")  # AF_UNIX socket paths must stay < 108 bytes
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=ray_tmp,
                 logging_level="WARNING")
        tuner = tune.Tuner(
            trainable,
            param_space={"x": tune.grid_search([-2.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])},
            tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=2,
                                        scheduler=ASHAScheduler(max_t=max_t, grace_period=1, reduction_factor=2)),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "ray_results"), callbacks=[Forward()],
                                      verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert tracking.close() == []
    runs = _children_by_key(tracker, tracking.parent_run_id)
    assert len(runs) == 8 == len(grid)
    seen = set()
    by_x = {float(r.data.params["x"]): r for r in runs.values()}
    for res in grid:
        x = res.config["x"]
        r = by_x[x]
        if res.error is not None:
            state = "failed"
        else:
            state = "complete" if res.metrics["training_iteration"] == max_t else "pruned"
            hist = tracker.client.get_metric_history(r.info.run_id, OBJECTIVE)
            steps = sorted(m.step for m in hist)
            assert steps == list(range(1, res.metrics["training_iteration"] + 1)), (x, steps, res.metrics)
            assert r.data.metrics[OBJECTIVE + "_final"] == pytest.approx(res.metrics["loss"])
        seen.add(state)
        assert r.data.tags[TAG_TRIAL_STATE] == state and r.info.status == STATUS[state], (x, state, r.data.tags)
    assert seen == {"complete", "pruned", "failed"}, seen


WORKER = textwrap.dedent("""
    import sys, time
    from intradayjules.track import Tracker, TrackingTarget
    target = TrackingTarget(uri=sys.argv[1], artifact_location=sys.argv[2] or None, experiment=sys.argv[3])
    tracker = Tracker(target)
    run = tracker.start_trial(sys.argv[4], sys.argv[5], params={"x": "1"})
    run.log_metrics({"objective": 0.5}, step=1)
    print("ready", flush=True)
    time.sleep(600)
""")


def _start_worker(target, parent_id, key):
    p = subprocess.Popen([sys.executable, "-c", WORKER, target.uri, target.artifact_location or "",
                          target.experiment, parent_id, key], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    line = p.stdout.readline().strip()
    assert line == "ready", f"worker did not start: {line!r}"
    return p


def test_killed_worker_run_is_marked_killed_not_running(tracker, target):
    study = tracker.start_study("kill-study")
    dead = _start_worker(target, study.run_id, "7")
    alive = _start_worker(target, study.run_id, "8")
    try:
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait(timeout=10)
        runs = _children_by_key(tracker, study.run_id)
        assert runs["7"].info.status == "RUNNING"  # the dead worker could not say anything
        # the study resumes (another worker or the coordinator restarts): the dead trial is reaped,
        # the live one is left alone
        again = tracker.start_study("kill-study")
        assert again.run_id == study.run_id  # same parent, no duplicate
        runs = _children_by_key(tracker, study.run_id)
        assert (runs["7"].info.status, runs["7"].data.tags[TAG_TRIAL_STATE]) == ("KILLED", "killed")
        assert runs["8"].info.status == "RUNNING"
        # a restarted trial logs into its existing run: no duplicate runs
        again_7 = tracker.start_trial(study.run_id, "7")
        assert again_7.run_id == runs["7"].info.run_id
        again_7.end_trial("complete")
        # heartbeat timeout catches a worker on another host (here: a live one with a stale beat)
        time.sleep(1.2)
        assert tracker.reap_stale_trials(study.run_id, heartbeat_timeout_s=60) == []
        assert tracker.reap_stale_trials(study.run_id, heartbeat_timeout_s=1.0) == [runs["8"].info.run_id]
    finally:
        for p in (dead, alive):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
    runs = _children_by_key(tracker, study.run_id)
    assert {k: (r.info.status, r.data.tags[TAG_TRIAL_STATE]) for k, r in runs.items()} == {
        "7": ("FINISHED", "complete"), "8": ("KILLED", "killed")}
    assert tracker.end_study(study.run_id) == []
    assert tracker.client.get_run(study.run_id).info.status == "FINISHED"


def test_end_study_reaps_trials_left_running(tracker):
    tracking = TrialTracking.for_study(tracker, "leftover")
    tracking.on_trial_start("a", {"x": 1})
    tracking.on_trial_start("b", {"x": 2})
    tracking.on_trial_end("a", {"x": 1}, "complete", 1.0)
    reaped = tracking.close()
    runs = _children_by_key(tracker, tracking.parent_run_id)
    assert reaped == [runs["b"].info.run_id]
    assert runs["b"].info.status == "KILLED" and runs["a"].info.status == "FINISHED"
    # a context-managed trial: exceptions map to states
    import optuna

    parent = tracker.start_study("ctx")
    with pytest.raises(optuna.TrialPruned):
        with tracker.trial(parent.run_id, 0):
            raise optuna.TrialPruned()
    with pytest.raises(KeyError):
        with tracker.trial(parent.run_id, 1):
            raise KeyError("x")
    with tracker.trial(parent.run_id, 2) as t:
        t.log_metrics({"objective": 1.0}, step=1)
    runs = _children_by_key(tracker, parent.run_id)
    assert {k: r.data.tags[TAG_TRIAL_STATE] for k, r in runs.items()} == {"0": "pruned", "1": "failed", "2": "complete"}
