"""Controls: the expected edge of the planted momentum against the oracle rule's P&L measured in the env,
the pass/fail rules of the controls table, and the negative control run end to end on a small budget
(slow: a test that could fail if selection or evaluation leaked)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import config_from_dict
from intradayjules.pipeline.compare import realistic
from intradayjules.pipeline.controls import control_row, edge_oracle, expected_edge, oracle_pnl, run_controls
from intradayjules.pipeline.prepare import prepare
from intradayjules.pipeline.walk_forward import FoldResult, WalkForwardResult


def single_cfg(tmp_path, edge: float, **over):
    base = {"name": "ctl", "workdir": str(tmp_path / "runs"), "features": {"store_dir": str(tmp_path / "store")},
            "data": {"synthetic": {"n_symbols": 3, "days": 100, "seed": 1, "edge_bps": edge},
                     "splits": {"train_frac": 0.3, "val_frac": 0.05}},
            "env": {"mode": "single", "symbols": ["LQ01"], "initial_cash": 100_000, "reward_scale": 1e4},
            "tracking": {"enabled": False}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    return config_from_dict(base)


@pytest.mark.parametrize("edge", [0.0, 6.0])
def test_expected_edge_matches_the_oracle_measured_in_the_env(tmp_path, edge):
    cfg = single_cfg(tmp_path, edge)
    p = prepare(cfg, use_store=False)
    daily = oracle_pnl(cfg, p.env_data, "test")
    ex = expected_edge(cfg, p.env_data, list(daily.index))
    n = len(daily)
    se = daily["pnl"].std(ddof=1) / math.sqrt(n)
    assert n > 50 and ex["tier"] == "liquid"
    assert ex["gross_bps_per_day"] == pytest.approx(edge * 0.25 * 76, rel=0.02)  # B = 78 except half days
    assert abs(daily["pnl"].mean() - ex["net_bps_per_day"]) < 3 * se, (daily["pnl"].mean(), ex, se)
    # fills: entry + exit + reversals; the formula's reversal rate against the rollout's count
    b = 78
    assert daily["trades"].mean() == pytest.approx(2 + ex["reversal_rate"] * (b - 3), rel=0.05)


def test_the_oracle_trades_on_the_last_printed_close_and_assumes_no_capped_fills(tmp_path):
    cfg = single_cfg(tmp_path, 6.0)
    p = prepare(cfg, use_store=False)
    act = edge_oracle(p.env_data, cfg)
    panel = p.env_data.panel
    i = int(p.env_data.session_indices("test")[0])
    s = str(np.datetime_as_string(panel.sessions[i], unit="D"))
    r0 = int(panel.starts[i])
    assert act(None, {"session": s, "start_bar": 0}) == 1  # flat at the open: bar 0's return spans the night
    for t in range(1, 10):
        d = panel.close[r0 + t, 0] - panel.close[r0 + t - 1, 0]
        assert act(None, {"session": s, "bar": t}) == (2 if d > 0 else 0 if d < 0 else 1)
    from intradayjules.evaluate.evaluation import evaluate_policy

    _, res = evaluate_policy(act, p.env_data, realistic(cfg), "test")
    assert res.steps["unfilled_notional"].sum() == 0.0  # the formula's assumption holds at this size
    with pytest.raises(ValueError, match="single"):
        edge_oracle(p.env_data, cfg.model_copy(update={"env": cfg.env.model_copy(update={"mode": "multi"})}))


def _fake_result(contrasts: dict, dsr_p: list[float], pbo: list[float]) -> WalkForwardResult:
    folds = [FoldResult(i, {}, None, {}, None, {}, {"dsr": {"p_value": p}, "pbo": {"pbo": q}}, [], {})
             for i, (p, q) in enumerate(zip(dsr_p, pbo))]
    rows = [{"a": "model", "b": b, "mean_diff_bps": m, "ci_low": lo, "ci_high": hi} for b, (m, lo, hi) in
            contrasts.items()]
    oos = {"table": {"contrasts": rows, "arms": {"model": {"mean": 1.0, "sd": 0.5, "per_seed": [1.0]}}},
           "n_sessions": 10, "sharpe": {}, "psr_vs_0": 0.5}
    return WalkForwardResult(None, folds, oos)


def test_control_verdicts_follow_the_intervals(tmp_path):
    cfg = single_cfg(tmp_path, 6.0).model_copy(update={"env": single_cfg(tmp_path, 6.0).env.model_copy(
        update={"mode": "multi", "symbols": None})})
    win = _fake_result({"flat": (5, 1, 9), "buy_hold": (6, 0.5, 11)}, [0.01, 0.02], [0.2, 0.3])
    assert control_row("positive", cfg, None, win)["passed"] is True
    lose = _fake_result({"flat": (5, 1, 9), "buy_hold": (6, -0.5, 11)}, [0.01, 0.02], [0.2, 0.3])
    assert control_row("positive", cfg, None, lose)["passed"] is False  # one interval reaches 0: not met
    null_ok = _fake_result({"flat": (-3, -6, 0.5), "buy_hold": (1, -2, 4)}, [0.4, 0.7], [0.5, 0.6])
    row = control_row("negative", cfg, None, null_ok)
    assert row["passed"] is True and "found nothing" in row["verdict"] and "PBO by fold 0.50, 0.60" in row["verdict"]
    null_bad = _fake_result({"flat": (-3, -6, 0.5)}, [0.4, 0.01], [0.5, 0.6])
    assert control_row("negative", cfg, None, null_bad)["passed"] is False  # a significant DSR in a null market


@pytest.mark.slow
def test_negative_control_finds_nothing_on_a_small_budget(tmp_path):
    cfg = config_from_dict({
        "name": "null", "workdir": str(tmp_path / "runs"), "features": {"store_dir": str(tmp_path / "store")},
        "data": {"synthetic": {"n_symbols": 3, "days": 60, "seed": 2},
                 "tiers": {"adv_window_days": 10}, "splits": {"mode": "walk_forward", "folds": 2}},
        "env": {"mode": "single", "symbols": ["LQ01"], "initial_cash": 100_000, "reward_scale": 1e4},
        "agent": {"total_timesteps": 3000, "learning_starts": 500, "buffer_size": 5000, "n_seeds": 2},
        "risk": {"eval_freq": 1000, "eval_episodes": 2},
        "tune": {"n_trials": 4, "workers": 1, "trial_timesteps": 1500, "reports_per_trial": 2, "pruner": "none",
                 "search_space": {"agent.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
                                  "agent.gamma": {"type": "float", "low": 0.9, "high": 0.99}}},
        "tracking": {"enabled": False}})
    out = run_controls(cfg, which=("negative",), out=tmp_path / "controls")
    row = out["rows"]["negative"]
    assert row["edge_bps_per_bar"] == 0.0 and len(row["dsr_p_by_fold"]) == 2
    assert all(0.0 <= p <= 1.0 for p in row["pbo_by_fold"]), row["pbo_by_fold"]
    assert all(p >= 0.05 for p in row["dsr_p_by_fold"]), row["verdict"]
    assert row["vs"]["flat"]["ci_low"] <= 0.0, row["verdict"]
    assert row["passed"] is True
    # the expected edge of a null market is the cost of trading it
    assert row["expected"]["gross_bps_per_day"] == 0.0 and row["expected"]["net_bps_per_day"] < 0


def _move_bps(frame, symbol):
    d = frame[frame["symbol"] == symbol]
    lc, lo = np.log(d["close"].to_numpy()), np.log(d["open"].to_numpy())
    pos = d.groupby("session").cumcount().to_numpy()
    prev = np.r_[np.nan, np.nan, lc[1:-1] - lc[:-2]]
    ok = pos >= 2
    x = np.sign(prev[ok]) * (lc - lo)[ok] * 1e4
    return x.mean(), x.std(ddof=1) / np.sqrt(len(x))


def test_plant_edge_in_bars_adds_exactly_the_rule_and_nothing_else():
    from intradayjules.config import SyntheticConfig
    from intradayjules.data.bars import find_problems
    from intradayjules.data.synthetic import generate
    from intradayjules.pipeline.controls import plant_edge_in_bars

    frame = generate(SyntheticConfig(n_symbols=3, days=60, seed=5)).bars.frame
    out = plant_edge_in_bars(frame, ["LQ01"], 5.0)
    assert find_problems(out) == []
    m, se = _move_bps(out, "LQ01")
    m0, se0 = _move_bps(frame, "LQ01")
    assert abs((m - m0) - 5.0) < 0.05 and se < 0.5  # the same noise: the difference is the edge itself
    other = out["symbol"] != "LQ01"
    pd.testing.assert_frame_equal(out[other], frame[other])
    # close-to-close log returns change by exactly +-edge on bars 2.. of a session, by 0 elsewhere
    a, b = (np.log(f.loc[f["symbol"] == "LQ01", "close"].to_numpy()) for f in (frame, out))
    step = np.round((np.diff(b) - np.diff(a)) * 1e4, 6)
    pos = frame[frame["symbol"] == "LQ01"].groupby("session").cumcount().to_numpy()[1:]
    assert set(np.unique(step[pos >= 2])) <= {-5.0, 0.0, 5.0} and (step[pos < 2] == 0).all()
    assert (np.abs(step[pos >= 2]) == 5.0).mean() > 0.95  # zero only after an unchanged close


def test_the_controls_preset_plants_the_edge_the_rule_picks_from_training_sessions(tmp_path):
    """The planted edge's size is a rule on fold 0's training sessions and the generator (costs at most half
    the expected gross), not a choice made on test results: the preset must carry what the rule picks."""
    from intradayjules.config import apply_overrides, load_config
    from intradayjules.config.presets import preset_path
    from intradayjules.pipeline.controls import DEFAULT_EDGE_BPS, MIN_NET_SHARE, tradable_edge

    cfg = apply_overrides(load_config(preset_path("controls")), {"workdir": str(tmp_path / "runs"),
                                                     "features.store_dir": str(tmp_path / "store")})
    p = prepare(cfg, use_store=False)
    edge, rows = tradable_edge(cfg, p.env_data)
    assert edge == cfg.data.synthetic.edge_bps == DEFAULT_EDGE_BPS
    # the picked edge keeps at least half its gross, the one before it does not
    assert rows[-1]["net_bps_per_day"] >= MIN_NET_SHARE * rows[-1]["gross_bps_per_day"]
    assert rows[-2]["net_bps_per_day"] < MIN_NET_SHARE * rows[-2]["gross_bps_per_day"]
    # only training sessions were used
    assert rows[-1]["sessions"] == len(p.env_data.folds[0]["train"])
