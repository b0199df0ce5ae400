"""RiskShapingWrapper on a real Gymnasium env: penalties, reward-only multiplier, masking."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from intradayjules.config import RiskConfig, config_from_dict
from intradayjules.risk.shaping import RiskShapingWrapper, wrap_from_config

from .toy_env import ToyTradingEnv

CASH = 100_000.0


def actions(n, seed):
    return np.random.default_rng(seed).integers(0, 3, n)


def run(env, acts, seed=7):
    env.reset(seed=seed)
    out = []
    for a in acts:
        obs, r, term, trunc, info = env.step(int(a))
        out.append((r, info))
        if term or trunc:
            break
    return out


def test_off_profile_leaves_reward_and_info_exactly():
    acts = actions(50, 1)
    plain = run(ToyTradingEnv(tier="illiquid"), acts)
    shaped = run(RiskShapingWrapper(ToyTradingEnv(tier="illiquid"), RiskConfig(profile="off"),
                                    initial_cash=CASH), acts)
    assert [r for r, _ in shaped] == [r for r, _ in plain]
    assert [i["equity"] for _, i in shaped] == [i["equity"] for _, i in plain]


def test_penalty_matches_formula_recomputed_independently():
    risk = RiskConfig(profile="balanced")  # dd 1, ulcer 1, impact 0.5, illiquid x3
    k = 2.0
    acts = actions(50, 2)
    plain = run(ToyTradingEnv(tier="illiquid", reward_scale=k), acts)
    w = RiskShapingWrapper(ToyTradingEnv(tier="illiquid", reward_scale=k), risk, initial_cash=CASH,
                           reward_scale=k)
    shaped = run(w, acts)
    # recompute the drawdown path from equity alone
    eq = np.array([i["equity"] for _, i in plain])
    peak = np.maximum.accumulate(np.concatenate([[CASH], eq]))[1:]
    dd = 1 - eq / peak
    dd_inc = np.maximum(np.diff(np.concatenate([[0.0], dd])), 0.0)
    impact = np.array([i["costs"]["impact"] for _, i in plain])
    ill_cost = np.array([sum(i["costs"].values()) for _, i in plain])  # every trade is illiquid here
    expected = k * (1.0 * dd_inc + 1.0 * dd**2 + (0.5 * impact + 2.0 * ill_cost) / CASH)
    got = np.array([rp - rs for (rp, _), (rs, _) in zip(plain, shaped)])
    assert ill_cost.sum() > 0 and dd.max() > 0  # the path exercises every term
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    assert w.last_penalty["total"] == pytest.approx(expected[-1], rel=1e-9, abs=1e-15)


def test_illiquid_multiplier_in_reward_only_never_in_accounting():
    risk = RiskConfig(profile="off", illiquid_penalty_multiplier=3.0)
    acts = actions(50, 3)
    inner_plain, inner_shaped = ToyTradingEnv(tier="illiquid"), ToyTradingEnv(tier="illiquid")
    plain = run(inner_plain, acts)
    shaped = run(RiskShapingWrapper(inner_shaped, risk, initial_cash=CASH), acts)
    for (_, a), (_, b) in zip(plain, shaped):  # accounting identical
        assert (a["equity"], a["cash"], a["step_pnl"], a["costs"]) == (b["equity"], b["cash"], b["step_pnl"],
                                                                        b["costs"])
    total_cost = sum(sum(i["costs"].values()) for _, i in plain)
    pnl = sum(i["step_pnl"] for _, i in plain)
    # the reward charges the illiquid costs 3 times: once in step_pnl, twice more as the penalty
    assert sum(r for r, _ in shaped) == pytest.approx((pnl - 2.0 * total_cost) / CASH, rel=1e-9)
    # liquid names are not multiplied
    liquid = run(RiskShapingWrapper(ToyTradingEnv(tier="liquid"), risk, initial_cash=CASH), acts)
    liquid_plain = run(ToyTradingEnv(tier="liquid"), acts)
    assert [r for r, _ in liquid] == [r for r, _ in liquid_plain]


def test_info_is_passed_through_untouched():
    class Recording(ToyTradingEnv):
        def step(self, action):
            out = super().step(action)
            self.last_info = out[4]
            self.snapshot = {k: (v.copy() if isinstance(v, (dict, np.ndarray)) else v) for k, v in out[4].items()}
            return out

    inner = Recording(tier="illiquid")
    w = RiskShapingWrapper(inner, RiskConfig(), initial_cash=CASH)
    w.reset(seed=0)
    for a in (2, 0, 1, 2):
        *_, info = w.step(a)
        assert info is inner.last_info
        assert set(info) == set(inner.snapshot)
        for key, v in inner.snapshot.items():
            np.testing.assert_equal(info[key], v)


def test_masking_blocks_illiquid_trades_and_is_off_by_default():
    acts = actions(50, 4)
    unmasked = run(RiskShapingWrapper(ToyTradingEnv(tier="illiquid"), RiskConfig(), initial_cash=CASH), acts)
    assert sum(i["traded_notional"] for _, i in unmasked) > 0
    w = RiskShapingWrapper(ToyTradingEnv(tier="illiquid"), RiskConfig(mask_illiquid=True), initial_cash=CASH)
    masked = run(w, acts)
    assert sum(i["traded_notional"] for _, i in masked) == 0.0
    assert w.masked_actions == int((acts != 1).sum())
    assert w.action_masks() == [False, True, False]
    wl = RiskShapingWrapper(ToyTradingEnv(tier="liquid"), RiskConfig(mask_illiquid=True), initial_cash=CASH)
    liquid = run(wl, acts)
    assert wl.masked_actions == 0 and wl.action_masks() == [True, True, True]
    assert sum(i["traded_notional"] for _, i in liquid) > 0


def test_masking_with_custom_layout():
    # custom: action 2 "trades the illiquid name", fallback 1
    w = RiskShapingWrapper(ToyTradingEnv(tier="liquid"), RiskConfig(mask_illiquid=True), initial_cash=CASH,
                           illiquid_action=lambda a: int(a) == 2, fallback_action=lambda a: 1)
    w.reset(seed=0)
    w.step(2)
    assert w.masked_actions == 1 and w.unwrapped.pos == 0.0
    with pytest.raises(ValueError, match="both"):
        RiskShapingWrapper(ToyTradingEnv(), RiskConfig(mask_illiquid=True), initial_cash=CASH,
                           illiquid_action=lambda a: True)


def test_tracker_sees_every_step_and_resets_per_episode():
    w = RiskShapingWrapper(ToyTradingEnv(tier="mid", n_steps=10), RiskConfig(), initial_cash=CASH)
    for ep in range(3):
        w.reset(seed=ep)
        done = False
        while not done:
            *_, term, trunc, _ = w.step(2)
            done = term or trunc
    s = w.tracker.snapshot()
    assert s["steps"] == 30 and s["episodes"] == 3


@pytest.mark.filterwarnings("ignore::UserWarning")  # checker: 'wrapped env' and infinite Box bounds
def test_passes_gymnasium_env_checker_and_from_config():
    cfg = config_from_dict({"env": {"initial_cash": CASH, "reward_scale": 1.0}})
    w = wrap_from_config(ToyTradingEnv(), cfg)
    check_env(w, skip_render_check=True)
    assert w.initial_cash == CASH
