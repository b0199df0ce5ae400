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


# ------------------------------------------------------------------ liquidity-aware (ordered) basis
def _hand_cost(notional, hs_bps, sigma, adv, commission_bps):
    """Spread + square-root impact + commission in USD, written out from docs/environment.md."""
    return notional * (hs_bps * 1e-4 + sigma * np.sqrt(notional / adv) + commission_bps * 1e-4)


@pytest.fixture(scope="module")
def real_multi(synthetic_market):
    import warnings

    from intradayjules.env import make_env, prepare

    cfg = config_from_dict({"env": {"mode": "multi", "initial_cash": CASH, "reward_scale": 1e4}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prepare(cfg, synthetic_market.bars, synthetic_market.universe)
    return cfg, data, lambda c: make_env(c, None, split="train", data=data)


def _walk(env, seed=3, n=60):
    """Alternate long/flat on every symbol in turn: many capped illiquid orders and full liquid fills."""
    env.reset(seed=seed)
    K = len(env.unwrapped.symbols)
    out = []
    for i in range(n):
        k, j = (i // 2) % K, 2 if i % 2 == 0 else 1
        _, r, term, trunc, info = env.step(1 + 3 * k + j)
        out.append((r, info, dict(getattr(env, "last_penalty", {}))))
        if term or trunc:
            break
    return out


def test_ordered_basis_charges_the_unfilled_part_of_illiquid_orders(real_multi):
    cfg, data, make = real_multi
    m = 3.0
    risk = RiskConfig(profile="balanced")
    assert risk.illiquid_penalty_basis == "ordered" and risk.illiquid_penalty_multiplier == m
    w = RiskShapingWrapper(make(cfg), risk, initial_cash=CASH, reward_scale=1e4)
    steps = _walk(w)
    ep = w.unwrapped.sim.episodes[0]
    mk = cfg.market
    n_unfilled = 0
    for _, info, pen in steps:
        expected = 0.0
        for k, tier in enumerate(ep.tiers):
            q, f, px = info["order_qty"][k], info["fill_qty"][k], info["fill_price"][k]
            if q == 0 or q == f:
                continue
            if tier != "illiquid":
                continue
            n_unfilled += 1
            full = _hand_cost(abs(q) * px, ep.half_spread_bps[k], ep.sigma_daily[k], ep.adv_usd[k], mk.commission_bps)
            part = _hand_cost(abs(f) * px, ep.half_spread_bps[k], ep.sigma_daily[k], ep.adv_usd[k], mk.commission_bps)
            expected += m * (full - part)
        assert pen["illiquid_unfilled"] == pytest.approx(1e4 * expected / CASH, rel=1e-9, abs=1e-12)
    assert n_unfilled >= 3  # capped / zero-volume illiquid orders happened and were charged
    # liquid and mid orders in this walk filled in full, and the term is only about illiquid names
    assert any(i["order_qty"][k] != 0 and ep.tiers[k] != "illiquid" for _, i, _ in steps for k in range(len(ep.tiers)))


def test_filled_basis_and_multiplier_one_add_no_unfilled_term(real_multi):
    cfg, data, make = real_multi
    ordered = _walk(RiskShapingWrapper(make(cfg), RiskConfig(profile="balanced"), initial_cash=CASH, reward_scale=1e4))
    filled = _walk(RiskShapingWrapper(make(cfg), RiskConfig(profile="balanced", illiquid_penalty_basis="filled"),
                                      initial_cash=CASH, reward_scale=1e4))
    plain = _walk(make(cfg))
    # same actions, same accounting; rewards differ exactly by the unfilled term
    for (ro, io, po), (rf, i_f, pf), (rp, ip, _) in zip(ordered, filled, plain):
        assert io["equity"] == i_f["equity"] == ip["equity"]
        assert pf["illiquid_unfilled"] == 0.0
        assert rf - ro == pytest.approx(po["illiquid_unfilled"], rel=1e-9, abs=1e-12)
    assert sum(p["illiquid_unfilled"] for _, _, p in ordered) > 0
    off = _walk(RiskShapingWrapper(make(cfg), RiskConfig(profile="off"), initial_cash=CASH, reward_scale=1e4))
    assert [r for r, _, _ in off] == [r for r, _, _ in plain]
