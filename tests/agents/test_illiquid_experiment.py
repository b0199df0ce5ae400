"""The illiquid experiment's machinery: arms configured right, summary/target logic, one tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from intradayjules.pipeline import illiquid as exp
from intradayjules.pipeline.illiquid import ArmResult, arm_config, summarize
from intradayjules.config import load_config

from .conftest import small_config

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def row(arm, seed, share, sharpe, order_share=0.1, n_trades=10, ret=0.0):
    return ArmResult(arm, seed, share, order_share, sharpe, ret, n_trades, {}, {}, 100)


def test_arms_differ_only_in_market_model_and_risk_profile(tmp_path):
    cfg = small_config(tmp_path, env={"reward_scale": 1e4})
    a, b = arm_config(cfg, "original", 7), arm_config(cfg, "risk_aware", 7)
    # (a): flat 5 bps costs in training, no shaping, no early stop
    assert a.market.model == "flat" and a.market.flat_cost_bps == 5.0
    assert a.risk.profile == "off" and not a.risk.early_stop
    assert (a.risk.drawdown_penalty, a.risk.ulcer_penalty, a.risk.impact_penalty) == (0.0, 0.0, 0.0)
    assert a.risk.illiquid_penalty_multiplier == 1.0
    # (b): realistic market model, balanced profile with the liquidity-aware penalty
    assert b.market.model == "realistic" and b.risk.profile == "balanced" and b.risk.early_stop
    assert b.risk.illiquid_penalty_multiplier == 3.0 and b.risk.illiquid_penalty_basis == "ordered"
    # same agent, seed, env (incl. reward scale) and data in both
    assert a.agent == b.agent and a.agent.seed == 7
    assert a.env == b.env and a.env.reward_scale == 1e4
    assert a.data == b.data and a.features == b.features
    with pytest.raises(ValueError, match="unknown arm"):
        arm_config(cfg, "masked", 0)


def test_example_configs_share_budget_and_reward_scale():
    syn = load_config(CONFIGS / "illiquid_experiment.yaml")
    real = load_config(CONFIGS / "illiquid_real.yaml")
    assert syn.agent == real.agent and syn.env.reward_scale == real.env.reward_scale == 1e4
    assert real.env.symbols == real.data.symbols and {"WEBL", "JNUG"} <= set(real.env.symbols)
    # the thresholds are stated explicitly (not defaults) and put $3.5M-$73M ADV names in "illiquid"
    assert {"liquid_min_adv", "illiquid_max_adv"} <= real.data.tiers.model_fields_set
    from intradayjules.data.tiers import tier_of

    assert list(tier_of([3.5e6, 7.3e7, 3.3e9], real.data.tiers)) == ["illiquid", "illiquid", "liquid"]


def test_summary_means_and_target():
    rows = [row("original", 0, 0.10, -1.0), row("original", 1, 0.30, -3.0),
            row("risk_aware", 0, 0.01, 0.5), row("risk_aware", 1, 0.03, -0.5)]
    s = summarize(rows)
    assert s["means"]["original"]["illiquid_trade_share"] == pytest.approx(0.20)
    assert s["means"]["risk_aware"]["illiquid_trade_share"] == pytest.approx(0.02)
    assert s["means"]["original"]["sharpe"] == pytest.approx(-2.0)
    assert s["means"]["risk_aware"]["sharpe"] == pytest.approx(0.0)
    t = s["target"]
    assert t["illiquid_share_ratio"] == pytest.approx(0.1)
    assert t["illiquid_share_at_most_20pct_of_original"] is True and t["sharpe_no_worse"] is True and t["met"]


@pytest.mark.parametrize("b_share, b_sharpe, share_ok, sharpe_ok", [
    (0.041, -1.0, False, True),  # 20.5 % of (a): fails the share target
    (0.040, -1.0, True, True),  # exactly 20 %: passes
    (0.0, -1.01, True, False),  # no illiquid trades but a worse Sharpe
])
def test_target_boundaries(b_share, b_sharpe, share_ok, sharpe_ok):
    s = summarize([row("original", 0, 0.2, -1.0), row("risk_aware", 0, b_share, b_sharpe)])
    t = s["target"]
    assert t["illiquid_share_at_most_20pct_of_original"] is share_ok
    assert t["sharpe_no_worse"] is sharpe_ok
    assert t["met"] is (share_ok and sharpe_ok)


def test_undefined_sharpe_is_never_dropped_silently():
    # a policy that never trades has a flat equity curve: Sharpe NaN, and the mean over seeds says so
    s = summarize([row("original", 0, 0.2, -1.0), row("original", 1, 0.1, -2.0),
                   row("risk_aware", 0, 0.0, math.nan, n_trades=0), row("risk_aware", 1, 0.0, 0.4)])
    ra = s["means"]["risk_aware"]
    assert math.isnan(ra["sharpe"]) and ra["n_sharpe"] == 1
    assert "1 of 2 seeds" in ra["sharpe_note"] and "seed 0: no variance (never traded)" in ra["sharpe_note"]
    assert s["means"]["original"]["sharpe"] == pytest.approx(-1.5) and s["means"]["original"]["sharpe_note"] == ""
    assert s["target"]["sharpe_no_worse"] is None
    only_nan = summarize([row("original", 0, 0.2, -1.0), row("risk_aware", 0, 0.0, math.nan)])
    assert only_nan["target"]["sharpe_no_worse"] is None and only_nan["target"]["met"] is False
    nothing = summarize([row("original", 0, 0.0, -1.0), row("risk_aware", 0, 0.0, -1.0)])
    assert nothing["target"]["illiquid_share_at_most_20pct_of_original"] is None


@pytest.mark.slow
def test_one_tiny_run_trains_both_arms_and_evaluates_them_under_realistic_costs(tmp_path):
    cfg = small_config(tmp_path, env={"reward_scale": 1e4}, agent={"total_timesteps": 600, "learning_starts": 200},
                       risk={"eval_freq": 300, "eval_episodes": 1})
    seen = []
    summary = exp.run(cfg, seeds=1, out_dir=tmp_path / "exp", timesteps=600, progress=seen.append)
    assert [r.arm for r in seen] == ["original", "risk_aware"]
    for r in seen:
        assert 0.0 <= r.illiquid_trade_share <= 1.0 and 0.0 <= r.illiquid_order_share <= 1.0
        assert r.timesteps == 600 or r.stopped_early
    # each arm trained with its own market model ...
    a_cfg = (tmp_path / "exp" / "original-seed0" / "config.yaml").read_text()
    b_cfg = (tmp_path / "exp" / "risk_aware-seed0" / "config.yaml").read_text()
    assert "model: flat" in a_cfg and "model: realistic" in b_cfg
    # ... and was evaluated under the realistic one: costs split into spread and impact (flat has none)
    for r in seen:
        if r.n_trades:
            assert r.costs["spread"] > 0 and r.costs["impact"] > 0
    written = json.loads((tmp_path / "exp" / "illiquid_experiment.json").read_text())
    assert written["target"].keys() == summary["target"].keys()
    assert len(written["runs"]) == 2 and written["config"]["timesteps"] == 600


def test_original_arm_ignores_explicit_risk_settings(tmp_path):
    from intradayjules.pipeline.illiquid import arm_config
    from intradayjules.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate({"risk": {"mask_illiquid": True, "drawdown_penalty": 2.0, "patience": 2,
                                                    "early_stop": True, "eval_freq": 777}})
    a = arm_config(cfg, "original", 3)
    assert a.risk.profile == "off" and not a.risk.mask_illiquid and a.risk.drawdown_penalty == 0.0
    assert not a.risk.early_stop and a.risk.eval_freq == 777 and a.market.model == "flat" and a.agent.seed == 3
