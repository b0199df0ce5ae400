"""The default trial stores its validation P&L per session; ``load_pnl_matrix`` reads the sessions x trials
matrix back (the input of DSR and PBO)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from intradayjules.agents.references import reference_policy
from intradayjules.config import apply_overrides
from intradayjules.env import make_env
from intradayjules.env.rollout import run_sessions
from intradayjules.pipeline.trial import dqn_trial, load_pnl_matrix, pnl_dir, prepared_for
from intradayjules.risk.callback import pick_sessions, validation_rollout
from intradayjules.tune.trial import Prune

from .conftest import small_config


class FakeReporter:
    checkpoint_every = None

    def __init__(self, key: str | None, prune_at: int | None = None):
        self.trial_key, self.prune_at, self.steps = key, prune_at, []

    def report(self, step, value):
        self.steps.append(step)
        if self.prune_at is not None and step >= self.prune_at:
            raise Prune(f"pruned at {step}")
        return False

    def checkpoint_dir(self):
        raise AssertionError("no checkpoints asked for")

    def restore_dir(self):
        return None


def test_validation_rollout_returns_the_daily_bps_per_session(prepared_small):
    cfg = prepared_small.cfg
    env = make_env(cfg, None, split="val", data=prepared_small.env_data)
    sessions = env.unwrapped.session_dates()[:4]
    metrics, daily = validation_rollout(reference_policy("buy_hold", env), env, sessions, cfg.risk)
    ref = run_sessions(reference_policy("buy_hold", env), env, sessions)
    assert list(daily.index) == sessions
    assert np.allclose(daily.to_numpy(), 1e4 * ref.daily_returns())
    assert metrics["eval/mean_daily_return_bps"] == pytest.approx(daily.mean())
    flat_metrics, flat = validation_rollout(reference_policy("flat", env), env, sessions, cfg.risk)
    assert (flat == 0).all() and np.isnan(flat_metrics["eval/sharpe"])  # one convention: NaN, not 0


def test_trials_write_the_pnl_matrix(tmp_path):
    cfg = small_config(tmp_path, tune={"trial_timesteps": 1200, "reports_per_trial": 2, "study_name": "s1"},
                       risk={"eval_episodes": 3})
    dqn_trial({}, cfg, FakeReporter("0"))
    other = apply_overrides(cfg, {"agent.learning_rate": 1e-3})
    dqn_trial({"agent.learning_rate": 1e-3}, other, FakeReporter("1"))
    pruned = FakeReporter("2", prune_at=1)
    with pytest.raises(Prune):
        dqn_trial({}, cfg, pruned)
    files = {p.stem: json.loads(p.read_text()) for p in pnl_dir(cfg, "s1").glob("*.json")}
    assert set(files) == {"0", "1", "2"}
    assert files["0"]["timesteps"] == 1200 and files["2"]["timesteps"] == 600  # the pruned trial's last one
    m = load_pnl_matrix(cfg, "s1")
    val = make_env(cfg, None, split="val", data=prepared_for(cfg).env_data).unwrapped.session_dates()
    want = pick_sessions(val, len(val))  # every validation session, not risk.eval_episodes (3)
    assert len(want) > 3
    assert list(m.columns) == ["0", "1", "2"] and [d.date().isoformat() for d in m.index] == want
    assert np.isfinite(m.to_numpy()).all()
    assert list(load_pnl_matrix(cfg, "s1", trials=["2", "0"]).columns) == ["0", "2"]
    assert load_pnl_matrix(cfg, "no-such-study").empty
    # a trial evaluated on other sessions cannot join the matrix
    bad = dict(files["1"], trial="9", sessions=["2020-01-02"] + files["1"]["sessions"][1:])
    (pnl_dir(cfg, "s1") / "9.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"9\.json: its validation sessions differ .*2020-01-02"):
        load_pnl_matrix(cfg, "s1")


def test_trial_key_without_a_backend_id_is_a_digest_of_the_parameters():
    from intradayjules.pipeline.trial import trial_key

    class Bare:
        pass

    a = trial_key({"x": 1}, Bare())
    assert a == trial_key({"x": 1}, Bare()) != trial_key({"x": 2}, Bare()) and a.startswith("p")
    assert trial_key({"x": 1}, FakeReporter("17")) == "17"
