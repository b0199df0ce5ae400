"""VecRiskShaping: every slot of the vectorised env gets exactly the rewards RiskShapingWrapper gives the
single env on the same episodes and actions (drawdown, ulcer, impact, illiquid and ordered-basis terms,
masking), across auto-resets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from intradayjules.config import RiskConfig, config_from_dict
from intradayjules.env import make_env, make_vec_env, prepare
from intradayjules.risk.shaping import RiskShapingWrapper
from intradayjules.risk.vec_shaping import VecRiskShaping

CASH = 1_000_000.0


@pytest.fixture(scope="module")
def multi(synthetic_market):
    cfg = config_from_dict({"env": {"mode": "multi", "initial_cash": CASH, "reward_scale": 1e4,
                                    "max_daily_drawdown": 0.01}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prepare(cfg, synthetic_market.bars, synthetic_market.universe)
    return cfg, data


def _actions(n_steps, n_slots, K, seed):
    """Per slot: long/flat on each symbol in turn (capped illiquid orders) mixed with random actions."""
    rng = np.random.default_rng(seed)
    walk = np.array([1 + 3 * ((i // 2) % K) + (2 if i % 2 == 0 else 1) for i in range(n_steps)])
    rand = rng.integers(1 + 3 * K, size=(n_steps, n_slots))
    use_walk = rng.random((n_steps, n_slots)) < 0.5
    return np.where(use_walk, walk[:, None], rand)


@pytest.mark.parametrize("risk", [RiskConfig(profile="balanced"), RiskConfig(profile="conservative"),
                                  RiskConfig(profile="balanced", mask_illiquid=True)],
                         ids=["balanced", "conservative", "masked"])
def test_slots_get_the_single_env_wrapper_rewards(multi, risk):
    cfg, data = multi
    n = 3
    venv = VecRiskShaping(make_vec_env(cfg, None, split="train", n_envs=n, data=data, seed=4, info="train"),
                          risk, initial_cash=CASH, reward_scale=1e4)
    venv.reset()
    K = len(data.symbols)
    acts = _actions(500, n, K, seed=1)
    episodes = [[] for _ in range(n)]  # per slot: (session, actions, rewards)
    current = [(venv.venv.sim.episodes[i].session, [], []) for i in range(n)]
    unfilled = 0.0
    for a in acts:
        _, r, d, _ = venv.step(a)
        unfilled += float(venv.last_penalty.sum())
        for i in range(n):
            current[i][1].append(int(a[i]))
            current[i][2].append(r[i])
            if d[i]:
                episodes[i].append(current[i])
                current[i] = (venv.venv.sim.episodes[i].session, [], [])
    assert all(len(e) >= 2 for e in episodes)  # auto-resets happened in every slot
    for i in range(n):
        episodes[i].append(current[i])  # the unfinished ones too (replayed without the end check)
    assert unfilled > 0
    masked = 0
    n_unfilled = 0
    for slot_eps in episodes:
        for j, (session, a_seq, r_seq) in enumerate(slot_eps):
            w = RiskShapingWrapper(make_env(cfg, None, split="train", data=data), risk, initial_cash=CASH,
                                   reward_scale=1e4)
            w.reset(options={"session": session})
            got = []
            for a in a_seq:
                _, r, term, trunc, _ = w.step(a)
                got.append(np.float32(r))
                n_unfilled += w.last_penalty["illiquid_unfilled"] > 0
            assert term == (j < len(slot_eps) - 1)  # the episode ends where the slot's did
            np.testing.assert_array_equal(np.array(got, np.float32), np.array(r_seq, np.float32))
            masked += w.masked_actions
    if risk.mask_illiquid:
        assert masked > 0 and masked == venv.masked_actions
    elif risk.illiquid_penalty_basis == "ordered":
        assert n_unfilled >= 3  # the ordered-basis term was exercised


def test_penalties_change_the_reward(multi):
    cfg, data = multi
    acts = _actions(200, 2, len(data.symbols), seed=2)
    out = {}
    for name, risk in (("off", RiskConfig(profile="off")), ("balanced", RiskConfig(profile="balanced"))):
        venv = VecRiskShaping(make_vec_env(cfg, None, split="train", n_envs=2, data=data, seed=0, info="train"),
                              risk, initial_cash=CASH, reward_scale=1e4)
        venv.reset()
        out[name] = np.array([venv.step(a)[1] for a in acts])
    bare = make_vec_env(cfg, None, split="train", n_envs=2, data=data, seed=0, info="train")
    bare.reset()
    plain = np.array([bare.step(a)[1] for a in acts])
    np.testing.assert_array_equal(out["off"], plain)  # the off profile is the env's reward exactly
    assert (out["balanced"] < plain).sum() > 20 and (out["balanced"] <= plain + 1e-6).all()


def test_needs_the_project_simulator():
    from stable_baselines3.common.vec_env import DummyVecEnv

    from .toy_env import ToyTradingEnv

    with pytest.raises(TypeError, match="SessionVecEnv"):
        VecRiskShaping(DummyVecEnv([ToyTradingEnv]), RiskConfig(), initial_cash=CASH)
