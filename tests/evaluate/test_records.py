"""daily.parquet and trades.parquet: every column against an independent computation from the rollout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.agents.references import reference_policy
from intradayjules.config import ExperimentConfig, SyntheticConfig
from intradayjules.data.synthetic import generate
from intradayjules.env import make_env, prepare
from intradayjules.env.fallback_features import fallback_features
from intradayjules.env.rollout import run_sessions
from intradayjules.evaluate.records import DAILY_COLUMNS, TRADES_COLUMNS, daily_table, trades_table, write_records


@pytest.fixture(scope="module")
def rollouts():
    mk = generate(SyntheticConfig(n_symbols=6, days=30, seed=3))
    frame = mk.bars.frame
    last = frame["session"].max()
    pos = frame.groupby(["symbol", "session"]).cumcount()
    frame = frame[~((frame["session"] == last) & (pos >= 50))].reset_index(drop=True)  # last day cut short
    cfg = ExperimentConfig()
    cfg.data.tiers.adv_window_days = 5
    cfg.env.mode = "multi"
    data = prepare(cfg, frame, mk.universe, fallback_features(frame))
    env = make_env(cfg, None, split="test", data=data)
    sessions = env.unwrapped.session_dates()
    out = {}
    for name in ("random", "buy_hold", "flat"):
        out[name] = run_sessions(reference_policy(name, env, seed=5), env, sessions)
    return out


def test_daily_table_against_the_fills(rollouts):
    res = rollouts["random"]
    d = daily_table(res)
    c = res.initial_equity
    assert list(d.columns) == DAILY_COLUMNS and len(d) == len(res.sessions)
    t = res.trades.copy()
    t["cash"] = -t["qty"] * t["price"]  # flat at the close: the day's gross P&L is its cash flow without costs
    t["cost"] = t["spread_cost"] + t["impact_cost"] + t["commission"]
    t["notional"] = t["qty"].abs() * t["price"]
    by = t.groupby("session").agg(cash=("cash", "sum"), cost=("cost", "sum"), notional=("notional", "sum"),
                                  n=("qty", "size"), spread=("spread_cost", "sum"))
    by.index = pd.to_datetime(by.index)
    d = d.set_index("session")
    assert np.allclose(d["gross_bps"], 1e4 * by["cash"].reindex(d.index) / c, atol=1e-6)
    assert np.allclose(d["cost_bps"], 1e4 * by["cost"].reindex(d.index) / c, atol=1e-9)
    assert np.allclose(d["spread_bps"] + d["impact_bps"] + d["commission_bps"], d["cost_bps"])
    assert np.allclose(d["spread_bps"], 1e4 * by["spread"].reindex(d.index) / c)
    assert np.allclose(d["net_bps"], d["gross_bps"] - d["cost_bps"], atol=1e-6)
    assert np.allclose(d["net_bps"], 1e4 * res.daily_returns())
    assert np.allclose(d["turnover"], by["notional"].reindex(d.index) / c)
    assert (d["trades"] == by["n"].reindex(d.index)).all()
    # the env's own drawdown (from the episode's peak, the start included) is an independent reference
    env_dd = res.steps.groupby("session")["drawdown"].max()
    env_dd.index = pd.to_datetime(env_dd.index)
    assert np.allclose(d["max_drawdown_bps"], 1e4 * env_dd.reindex(d.index), atol=1e-6)
    assert (d["cost_bps"] > 0).all() and (d["max_drawdown_bps"] >= 0).all()


def test_partial_session_is_flagged_and_flat_is_zero(rollouts):
    d = daily_table(rollouts["flat"])
    assert d["partial"].tolist() == [False] * (len(d) - 1) + [True]
    assert d["session_bars"].iloc[-1] == 50 and (d["expected_bars"] == 78).all()
    assert (d[["net_bps", "gross_bps", "cost_bps", "turnover", "trades", "max_drawdown_bps"]].to_numpy() == 0).all()


def test_trades_table_and_parquet_round_trip(rollouts, tmp_path):
    res = rollouts["buy_hold"]
    t = trades_table(res)
    assert list(t.columns) == TRADES_COLUMNS and len(t) == len(res.trades)
    assert (t["side"] == np.where(res.trades["qty"] > 0, "buy", "sell")).all()
    assert (t["quantity"] > 0).all() and np.allclose(t["quantity"], res.trades["qty"].abs())
    assert set(t["reason"]) == {"order", "session_close"}
    assert str(t["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert (t["timestamp"].dt.normalize().dt.tz_localize(None) == t["session"]).all()
    cost = (t["spread_cost"] + t["impact_cost"] + t["commission"]) / (t["quantity"] * t["price"]) * 1e4
    assert np.allclose(t["cost_bps"], cost)
    paths = write_records(daily_table(res), t, tmp_path / "buy_hold")
    back = pd.read_parquet(paths["trades"])
    pd.testing.assert_frame_equal(back, t, check_dtype=False)
    daily = pd.read_parquet(paths["daily"])
    assert list(daily.columns) == DAILY_COLUMNS and daily["session"].dtype.kind == "M"
    returns = daily.set_index("session")["net_bps"] / 1e4  # what quantstats takes
    assert np.allclose(returns.to_numpy(), res.daily_returns())


def test_empty_rollout_tables():
    from intradayjules.env.rollout import RolloutResult, STEP_COLUMNS, TRADE_COLUMNS

    empty = RolloutResult(1e6, pd.DataFrame(columns=STEP_COLUMNS), pd.DataFrame(columns=TRADE_COLUMNS))
    assert list(daily_table(empty).columns) == DAILY_COLUMNS and len(daily_table(empty)) == 0
    assert list(trades_table(empty).columns) == TRADES_COLUMNS and len(trades_table(empty)) == 0
