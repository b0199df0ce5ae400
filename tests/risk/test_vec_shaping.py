"""VecRiskShaping inside SessionVecEnv gives, slot by slot, the rewards (and masked actions) of the scalar
RiskShapingWrapper around TradingEnv replaying the same sessions and actions (the reference)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from intradayjules.config import config_from_dict
from intradayjules.env import SessionVecEnv, make_env, prepare
from intradayjules.risk.shaping import wrap_from_config
from intradayjules.risk.vec_shaping import vec_shaping_from_config


@pytest.fixture(scope="module")
def multi(synthetic_market):
    cfg = config_from_dict({"env": {"mode": "multi", "reward_scale": 10000}, "risk": {"profile": "balanced"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cfg, prepare(cfg, synthetic_market.bars, synthetic_market.universe)


def vec_episodes(cfg, data, n_envs, n_steps, seed):
    """Run the shaped vectorised env with random actions; the finished episodes of every slot as
    (session, start_bar, actions, rewards) and the shaping hook."""
    venv = SessionVecEnv(data.panel, data.session_indices("train"), n_envs, cfg.env, cfg.market,
                         lookback=cfg.features.lookback, sampling="random", seed=seed, info="minimal")
    venv.shaping = vec_shaping_from_config(cfg, n_envs, int(venv.action_space.n), len(data.panel.symbols))
    venv.reset()
    rng = np.random.default_rng(seed)
    current = [(venv.reset_infos[i]["session"], venv.reset_infos[i]["start_bar"], [], []) for i in range(n_envs)]
    done_eps = []
    for _ in range(n_steps):
        acts = rng.integers(venv.action_space.n, size=n_envs)
        _, rew, done, _ = venv.step(acts)
        for i in range(n_envs):
            current[i][2].append(int(acts[i]))
            current[i][3].append(float(rew[i]))
            if done[i]:
                done_eps.append(current[i])
                current[i] = (venv.reset_infos[i]["session"], venv.reset_infos[i]["start_bar"], [], [])
    return done_eps, venv.shaping


def replay(cfg, data, episodes):
    """The reference: each episode through RiskShapingWrapper(TradingEnv); rewards as float32 (what SB3
    stores), the unfilled-illiquid penalty total and the masked-action count."""
    env = wrap_from_config(make_env(cfg, None, split="train", data=data), cfg)
    out, unfilled = [], 0.0
    for session, start, acts, _ in episodes:
        env.reset(options={"session": session, "start_bar": start})
        rews = []
        for a in acts:
            _, r, term, trunc, _ = env.step(a)
            rews.append(float(np.float32(r)))
            unfilled += env.last_penalty["illiquid_unfilled"]
        assert term or trunc  # the replay ends where the slot's episode ended
        out.append(rews)
    return out, unfilled, env.masked_actions


def test_batched_shaping_equals_the_wrapper_slot_by_slot(multi):
    cfg, data = multi
    episodes, _ = vec_episodes(cfg, data, n_envs=3, n_steps=400, seed=4)
    assert len(episodes) >= 6
    expected, unfilled, _ = replay(cfg, data, episodes)
    assert unfilled > 0  # the ordered-basis term was exercised
    for (session, _, _, got), want in zip(episodes, expected):
        assert got == want, session


def test_batched_masking_equals_the_wrapper(multi):
    cfg, data = multi
    masked = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"mask_illiquid": True})})
    episodes, hook = vec_episodes(masked, data, n_envs=2, n_steps=300, seed=7)
    expected, _, wrapper_masked = replay(masked, data, episodes)
    for (_, _, _, got), want in zip(episodes, expected):
        assert got == want
    # the vec hook also counts the unfinished episodes' steps: at least the wrapper's count, and some
    assert hook.masked_actions >= wrapper_masked > 0


def test_off_profile_shapes_nothing(multi):
    cfg, data = multi
    off = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={
        "drawdown_penalty": 0.0, "ulcer_penalty": 0.0, "impact_penalty": 0.0, "illiquid_penalty_multiplier": 1.0})})
    shaped, _ = vec_episodes(off, data, n_envs=2, n_steps=200, seed=1)
    plain_env = make_env(off, None, split="train", data=data)
    for session, start, acts, rews in shaped:
        plain_env.reset(options={"session": session, "start_bar": start})
        assert rews == [float(np.float32(plain_env.step(a)[1])) for a in acts]
