"""The illiquid ablation's machinery: cells configured right, a neutral 'off' really neutral, main effects
computed right (by hand on planted numbers), and one tiny run of all eight cells (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intradayjules.agents.dqn import make_training_env
from intradayjules.config import load_config
from intradayjules.config.profiles import RISK_PROFILES
from intradayjules.pipeline import illiquid as exp
from intradayjules.pipeline.compare import DAILY_COLUMNS, RunRecord
from intradayjules.pipeline.illiquid import CELLS, arm_config, cell_config, summarize

from .conftest import small_config

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_the_historical_arms_are_the_corner_cells(tmp_path):
    cfg = small_config(tmp_path, env={"reward_scale": 1e4})
    a, b = arm_config(cfg, "original", 7), arm_config(cfg, "risk_aware", 7)
    # (a): flat 5 bps costs in training, no shaping, no early stop
    assert a.market.model == "flat" and a.market.flat_cost_bps == 5.0
    assert a.risk.profile == "off" and not a.risk.early_stop
    assert (a.risk.drawdown_penalty, a.risk.ulcer_penalty, a.risk.impact_penalty) == (0.0, 0.0, 0.0)
    assert a.risk.illiquid_penalty_multiplier == 1.0
    # (b): realistic market model, balanced profile with the liquidity-aware penalty and early stopping
    assert b.market.model == "realistic" and b.risk.profile == "balanced" and b.risk.early_stop
    assert b.risk.illiquid_penalty_multiplier == 3.0 and b.risk.illiquid_penalty_basis == "ordered"
    # same agent, seed, env (incl. reward scale) and data in both
    assert a.agent == b.agent and a.agent.seed == 7
    assert a.env == b.env and a.env.reward_scale == 1e4
    assert a.data == b.data and a.features == b.features
    with pytest.raises(ValueError, match="unknown arm"):
        arm_config(cfg, "masked", 0)


def test_each_factor_changes_only_its_own_settings(tmp_path):
    cfg = small_config(tmp_path, risk={"eval_freq": 777, "eval_episodes": 3})
    balanced = RISK_PROFILES["balanced"]
    assert len(CELLS) == 8
    for cell, lv in CELLS.items():
        c = cell_config(cfg, cell, 3)
        assert c.market.model == lv["costs"]
        shaping = tuple(getattr(c.risk, f) for f in exp.SHAPING_FIELDS)
        if lv["shaping"] == "on":
            assert shaping == tuple(balanced[f] for f in exp.SHAPING_FIELDS)
        else:
            assert shaping == (0.0, 0.0, 0.0, 1.0)
        assert c.risk.early_stop is (lv["early_stop"] == "on")
        if lv["early_stop"] == "on":
            assert (c.risk.stop_threshold, c.risk.patience) == (balanced["stop_threshold"], balanced["patience"])
        assert (c.risk.eval_freq, c.risk.eval_episodes) == (777, 3)  # the evaluation schedule is shared
        assert c.agent == cfg.agent.model_copy(update={"seed": 3}) and c.env == cfg.env and c.data == cfg.data
    with pytest.raises(ValueError, match="unknown cell"):
        cell_config(cfg, "flat/on", 0)


def test_original_arm_ignores_explicit_risk_settings():
    from intradayjules.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate({"risk": {"mask_illiquid": True, "drawdown_penalty": 2.0, "patience": 2,
                                                    "early_stop": True, "eval_freq": 777}})
    a = arm_config(cfg, "original", 3)
    assert a.risk.profile == "off" and not a.risk.mask_illiquid and a.risk.drawdown_penalty == 0.0
    assert not a.risk.early_stop and a.risk.eval_freq == 777 and a.market.model == "flat" and a.agent.seed == 3


def test_shaping_off_with_the_wrapper_on_is_the_unshaped_reward(prepared_small):
    """The 'shaping off, early stop on' cells wrap the env (profile balanced) with neutral coefficients:
    the reward must be the env's exactly, or the factor 'shaping' would leak into 'early_stop'."""
    cfg = prepared_small.cfg.model_copy(update={"env": prepared_small.cfg.env.model_copy(
        update={"reward_scale": 1e4})})
    wrapped = make_training_env(cell_config(cfg, "realistic/off/on", 0), prepared_small.env_data)
    plain = make_training_env(cell_config(cfg, "realistic/off/off", 0), prepared_small.env_data)
    shaped = make_training_env(cell_config(cfg, "realistic/on/off", 0), prepared_small.env_data)
    assert type(wrapped.env).__name__ == "RiskShapingWrapper" and type(plain.env).__name__ == "TradingEnv"
    rng = np.random.default_rng(0)
    n = wrapped.action_space.n
    actions = rng.integers(0, n, 300)
    rewards = {}
    for name, env in (("wrapped", wrapped), ("plain", plain), ("shaped", shaped)):
        env.reset(seed=5)
        out = []
        for a in actions:
            _, r, term, trunc, _ = env.step(int(a))
            out.append(r)
            if term or trunc:
                env.reset()
        rewards[name] = np.array(out)
    assert np.array_equal(rewards["wrapped"], rewards["plain"])
    assert not np.allclose(rewards["shaped"], rewards["plain"])  # shaping on does change the reward


def test_a_run_whose_stop_rule_never_fires_is_the_run_without_it(prepared_small, tmp_path):
    """The basis of the ablation's reuse of early-stop-on runs for the off cells."""
    from intradayjules.pipeline.compare import train_arm

    cfg = prepared_small.cfg.model_copy(update={"agent": prepared_small.cfg.agent.model_copy(
        update={"learning_starts": 100, "total_timesteps": 400})})
    cfg = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"eval_freq": 200})})
    runs = {cell: train_arm(prepared_small, cell_config(cfg, cell, 0), cell.replace("/", "-"), 1, tmp_path,
                            split="val", timesteps=400)[0] for cell in ("realistic/off/on", "realistic/off/off")}
    on, off = runs["realistic/off/on"], runs["realistic/off/off"]
    assert not on.stopped_early  # 2 evaluations < patience 5: the rule cannot fire
    pd.testing.assert_frame_equal(on.daily, off.daily)
    from intradayjules.agents.dqn import load_model

    a, b = (load_model(r.model_path).policy.state_dict() for r in (on, off))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def _record(cell: str, seed: int, pnl: float, notional: float, illiquid: float, trades: float = 2.0,
            days: int = 6) -> RunRecord:
    sessions = [f"2025-03-{d:02d}" for d in range(3, 3 + days)]
    rng = np.random.default_rng(seed)
    daily = pd.DataFrame({"pnl": pnl + rng.normal(0, 0.1, days), "notional": notional, "notional_illiquid": illiquid,
                          "ordered": 2 * notional, "ordered_illiquid": 2 * illiquid, "trades": trades},
                         index=sessions)[DAILY_COLUMNS]
    return RunRecord(cell, seed, daily)


def test_main_effects_by_hand():
    # planted: P&L = 1 + 4 [costs realistic] - 2 [shaping on] + 0 [early stop]; illiquid share 0.5 under
    # flat costs, 0.1 under realistic ones; fills 2 everywhere
    records = {}
    for cell, lv in CELLS.items():
        pnl = 1 + 4 * (lv["costs"] == "realistic") - 2 * (lv["shaping"] == "on")
        share = 0.1 if lv["costs"] == "realistic" else 0.5
        records[cell] = [_record(cell, s, pnl, 100.0, 100.0 * share) for s in range(3)]
    s = summarize(records, n_resamples=2000)
    me = s["main_effects"]
    assert me["costs"]["daily_pnl_bps"]["mean_diff_bps"] == pytest.approx(4.0, abs=0.1)
    assert me["shaping"]["daily_pnl_bps"]["mean_diff_bps"] == pytest.approx(-2.0, abs=0.1)
    assert me["early_stop"]["daily_pnl_bps"]["mean_diff_bps"] == pytest.approx(0.0, abs=0.1)
    assert me["costs"]["daily_pnl_bps"]["verdict"] == "better" and me["shaping"]["daily_pnl_bps"]["verdict"] == "worse"
    assert me["early_stop"]["daily_pnl_bps"]["verdict"] == "not distinguishable"
    assert me["costs"]["illiquid_trade_share"]["mean_diff_bps"] == pytest.approx(0.1 - 0.5)
    assert me["costs"]["illiquid_order_share"]["mean_diff_bps"] == pytest.approx(0.1 - 0.5)
    assert me["shaping"]["illiquid_trade_share"]["mean_diff_bps"] == pytest.approx(0.0)
    assert me["early_stop"]["trades_per_day"]["mean_diff_bps"] == pytest.approx(0.0)
    cell = s["cells"]["flat/off/off"]
    assert cell["illiquid_trade_share"]["per_seed"] == [0.5, 0.5, 0.5] and cell["n_runs"] == 3
    assert s["arms"]["illiquid_share"]["mean_diff_bps"] == pytest.approx(0.1 - 0.5)


def test_example_configs_share_budget_and_reward_scale():
    syn = load_config(CONFIGS / "illiquid_experiment.yaml")
    real = load_config(CONFIGS / "illiquid_real.yaml")
    assert syn.agent == real.agent and syn.env.reward_scale == real.env.reward_scale == 1e4
    assert real.env.symbols == real.data.symbols and {"WEBL", "JNUG"} <= set(real.env.symbols)
    # the thresholds are stated explicitly (not defaults) and put $3.5M-$73M ADV names in "illiquid"
    assert {"liquid_min_adv", "illiquid_max_adv"} <= real.data.tiers.model_fields_set
    from intradayjules.data.tiers import tier_of

    assert list(tier_of([3.5e6, 7.3e7, 3.3e9], real.data.tiers)) == ["illiquid", "illiquid", "liquid"]
    # early stopping can trigger within the budget: at least `patience` evaluations per run
    assert syn.agent.total_timesteps // syn.risk.eval_freq >= RISK_PROFILES["balanced"]["patience"]


@pytest.mark.slow
def test_one_tiny_run_trains_all_cells_and_evaluates_them_under_realistic_costs(tmp_path):
    cfg = small_config(tmp_path, env={"reward_scale": 1e4}, agent={"total_timesteps": 600, "learning_starts": 200},
                       risk={"eval_freq": 100, "eval_episodes": 1})
    seen = []
    summary = exp.run(cfg, seeds=1, out_dir=tmp_path / "exp", timesteps=600, progress=seen.append)
    assert sorted(r.arm for r in seen) == sorted(CELLS)
    for r in seen:
        d = r.daily
        assert (d["notional_illiquid"] <= d["notional"] + 1e-9).all() and r.timesteps <= 600
    # each cell trained with its own market model (the early-stop-off cells reuse runs that never stopped)
    assert "model: flat" in (tmp_path / "exp" / "flat-off-on-seed0" / "config.yaml").read_text()
    assert "model: realistic" in (tmp_path / "exp" / "realistic-on-on-seed0" / "config.yaml").read_text()
    for r in seen:
        if CELLS[r.arm]["early_stop"] == "off":
            twin = next(x for x in seen if x.arm == r.arm.rsplit("/", 1)[0] + "/on")
            assert (r.stats.get("reused_from") == twin.arm) is (not twin.stopped_early)
    # ... and was evaluated under the realistic one: costs split into spread and impact (flat has none)
    for r in seen:
        if r.stats["n_trades"]:
            assert r.stats["costs"]["spread"] > 0 and r.stats["costs"]["impact"] > 0
    written = json.loads((tmp_path / "exp" / "illiquid_ablation.json").read_text())
    assert set(written["main_effects"]) == {"costs", "shaping", "early_stop"}
    assert len(written["runs"]) == 8 and written["config"]["timesteps"] == 600
    assert summary["main_effects"]["costs"]["daily_pnl_bps"]["n_sessions"] == len(seen[0].daily)
