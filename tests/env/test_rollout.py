"""Reference-policy rollouts and the ``env rollout`` command."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import pytest
import typer
from typer.testing import CliRunner

from intradayjules.env import make_env, prepare
from intradayjules.cli.env_cmd import app as env_app
from intradayjules.env.rollout import rollout

from .helpers import config, features, market


@pytest.fixture(scope="module")
def env_data():
    mk = market(days=30)
    cfg = config("multi")
    return mk, cfg, prepare(cfg, mk.bars.frame, mk.universe, features(mk.bars.frame))


def test_flat_policy_earns_and_pays_nothing(env_data):
    mk, cfg, data = env_data
    df = rollout(make_env(cfg, mk.bars, mk.universe, "val", data=data), "flat", episodes=2)
    assert (df["pnl"] == 0).all() and (df["traded_notional"] == 0).all()
    assert (df["end_reason"] == "session_close").all()


def test_long_policy_summary_adds_up(env_data):
    mk, cfg, data = env_data
    df = rollout(make_env(cfg, mk.bars, mk.universe, "val", data=data), "long", episodes=2)
    tiers = df[["notional_liquid", "notional_mid", "notional_illiquid"]].sum(axis=1)
    assert tiers.to_numpy() == pytest.approx(df["traded_notional"].to_numpy())
    assert (df["spread"] > 0).all() and (df["impact"] > 0).all()
    assert (df["max_participation"] <= cfg.market.participation_cap + 1e-12).all()
    with pytest.raises(ValueError, match="policy must be one of"):
        rollout(make_env(cfg, mk.bars, mk.universe, "val", data=data), "yolo")


def test_env_rollout_command():
    app = typer.Typer()
    app.add_typer(env_app, name="env")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = CliRunner().invoke(app, ["env", "rollout", "--mode", "multi", "--episodes", "1", "--split", "val"],
                               env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "session_close" in r.output and "LQ01" in r.output
    bad = CliRunner().invoke(app, ["env", "rollout", "--mode", "sideways"])
    assert bad.exit_code == 2 and "mode" in bad.output


def test_run_sessions_is_the_one_loop(env_data):
    """Named sessions in order, one episode each; the records add up to the episode table; the tracker
    passed in sees every step; flatten fills are tagged as session closes."""
    from intradayjules.env.rollout import episode_table, named_policy, run_sessions
    from intradayjules.risk.metrics import RiskTracker

    mk, cfg, data = env_data
    env = make_env(cfg, mk.bars, mk.universe, "val", data=data)
    sessions = env.unwrapped.session_dates()[:3]
    assert len(sessions) == 3 and sessions == sorted(sessions)
    tracker = RiskTracker()
    res = run_sessions(named_policy("long", env), env, sessions, tracker)
    assert res.sessions == sessions and set(res.end_reasons) == set(sessions)
    assert res.risk == tracker.snapshot() and res.risk["steps"] == len(res.steps)
    table = episode_table(res)
    assert list(table["session"]) == sessions
    assert table["pnl"].to_numpy() == pytest.approx((res.closing_equity() - res.initial_equity).to_numpy())
    assert table["traded_notional"].sum() == pytest.approx((res.trades["qty"].abs() * res.trades["price"]).sum())
    assert set(res.trades["reason"]) == {"order", "session_close"}
    no_tracker = run_sessions(named_policy("long", env), env, sessions)
    assert no_tracker.risk == {}
    assert no_tracker.steps["equity"].to_numpy() == pytest.approx(res.steps["equity"].to_numpy())


def test_partial_sessions_and_fill_timestamps():
    """A session cut short in the data (the last day of a file) is flagged partial from the calendar's bar
    count; full sessions are not. Order fills carry their bar's open time, the closing flatten the close."""
    from intradayjules.data.sessions import schedule
    from intradayjules.env.rollout import named_policy, run_sessions

    mk = market(days=30)
    frame = mk.bars.frame
    last = frame["session"].max()
    pos = frame.groupby(["symbol", "session"]).cumcount()
    cut = frame[~((frame["session"] == last) & (pos >= 40))].reset_index(drop=True)
    cfg = config("multi")
    data = prepare(cfg, cut, mk.universe, features(cut))
    env = make_env(cfg, None, split="test", data=data)
    sessions = env.unwrapped.session_dates()
    assert sessions[-1] == str(last.date())
    res = run_sessions(named_policy("long", env), env, sessions)
    ep = res.episodes.set_index("session")
    assert ep.loc[sessions[-1], "partial"] and ep.loc[sessions[-1], "session_bars"] == 40
    assert (ep["expected_bars"] == 78).all()  # no half day in this stretch of the calendar
    assert not ep.loc[sessions[:-1], "partial"].any() and (ep.loc[sessions[:-1], "session_bars"] == 78).all()
    assert res.partial_sessions().to_dict() == ep["partial"].to_dict()
    sched = schedule("XNYS", sessions[0], sessions[-1])
    t = res.trades
    bar = pd.Timedelta(minutes=5)
    for _, r in t.iterrows():
        day = sched.loc[pd.Timestamp(r["session"])]
        bar_index = int(res.steps.loc[r["step"] - 1, "bar"])  # the step's fill bar
        start = day["open"] + bar_index * bar
        assert r["timestamp"] == (start if r["reason"] == "order" else start + bar)
    closes = t[t["reason"] == "session_close"]
    full = closes[closes["session"] != sessions[-1]]
    assert len(full) and (full["timestamp"] == full["session"].map(lambda s: sched.loc[pd.Timestamp(s), "close"])).all()


def _obs_policy(n_actions: int):
    """A deterministic, trade-happy function of the observation alone, with a batch form that applies the
    same function row by row (so both engines see exactly the same actions for the same observations)."""
    from intradayjules.env.rollout import BatchGreedy

    def act(o):
        return int(np.floor(np.abs(o[-3:]).sum() * 997 + np.abs(o[:40]).sum() * 13)) % n_actions

    return BatchGreedy(lambda obs: np.array([act(o) for o in obs]))


class _SingleOnly:
    """The same policy without ``batch``: forces the one-session-after-another engine."""

    def __init__(self, p):
        self.p = p

    def __call__(self, obs, info):
        return self.p(obs, info)


@pytest.mark.parametrize("mode", ["multi", "single"])
def test_lockstep_engine_records_what_the_sequential_one_does(mode, monkeypatch):
    """Sessions run in lockstep (one slot per session, one batched policy call per bar) give the same
    steps, trades, orders, episodes, end reasons and risk snapshot as one session after the other, with
    slots ending at different bars (a partial last session, drawdown stops) and the tracker fed in
    session order."""
    from intradayjules.env import rollout as R
    from intradayjules.risk.metrics import RiskTracker

    mk = market(days=30)
    frame = mk.bars.frame
    last = frame["session"].max()
    pos = frame.groupby(["symbol", "session"]).cumcount()
    cut = frame[~((frame["session"] == last) & (pos >= 40))].reset_index(drop=True)
    cfg = config(mode, max_daily_drawdown=0.004)
    if mode == "single":
        cfg.env.symbols = ["LQ01"]
    data = prepare(cfg, cut, mk.universe, features(cut))
    env = make_env(cfg, None, split="test", data=data)
    sessions = env.unwrapped.session_dates()
    policy = _obs_policy(env.action_space.n)
    calls = {"batch": 0}
    inner_batch = policy.batch

    def counted(obs):
        calls["batch"] += 1
        return inner_batch(obs)

    policy.batch = counted
    fast = R.run_sessions(policy, env, sessions, RiskTracker())
    slow = R.run_sessions(_SingleOnly(policy), env, sessions, RiskTracker())
    assert calls["batch"] == max(slow.steps.groupby("session").size())  # one call per bar, all slots
    assert set(slow.end_reasons.values()) >= {"drawdown", "session_close"}  # slots end at different bars
    assert slow.episodes["partial"].any()
    pd.testing.assert_frame_equal(fast.steps, slow.steps)
    pd.testing.assert_frame_equal(fast.trades, slow.trades)
    pd.testing.assert_frame_equal(fast.orders, slow.orders)
    pd.testing.assert_frame_equal(fast.episodes, slow.episodes)
    assert fast.end_reasons == slow.end_reasons and fast.risk == slow.risk
    assert len(fast.trades) > 10
    monkeypatch.setattr(R, "LOCKSTEP_SLOTS", 2)  # sessions in chunks of 2 slots: the same records
    chunked = R.run_sessions(policy, env, sessions, RiskTracker())
    assert len(sessions) > 4 and chunked.risk == slow.risk
    pd.testing.assert_frame_equal(chunked.trades, slow.trades)


def test_lockstep_needs_a_bare_env_and_named_sessions(env_data):
    """A wrapped env, drawn episodes or a policy without ``batch`` run one session after another."""
    import gymnasium as gym

    from intradayjules.env import rollout as R

    mk, cfg, data = env_data
    env = make_env(cfg, mk.bars, mk.universe, "val", data=data)
    sessions = env.unwrapped.session_dates()[:3]
    policy = _obs_policy(env.action_space.n)
    assert R._lockstep_ok(policy, env, sessions)
    assert not R._lockstep_ok(_SingleOnly(policy), env, sessions)
    assert not R._lockstep_ok(policy, gym.wrappers.RecordEpisodeStatistics(env), sessions)
    assert not R._lockstep_ok(policy, env, sessions[:1])
