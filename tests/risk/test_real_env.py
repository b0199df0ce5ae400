"""The risk layer on the project's real TradingEnv over the synthetic market (liquidity tiers)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from intradayjules.config import config_from_dict
from intradayjules.risk.metrics import RiskTracker
from intradayjules.risk.shaping import wrap_from_config

env_mod = pytest.importorskip("intradayjules.env")


@pytest.fixture(scope="module")
def multi_data(synthetic_market):
    cfg = config_from_dict({"env": {"mode": "multi"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cfg, env_mod.prepare(cfg, synthetic_market.bars, synthetic_market.universe)


def episode(env, seed, n_actions, rng_seed):
    rng = np.random.default_rng(rng_seed)
    env.reset(seed=seed)
    infos, rewards = [], []
    done = False
    while not done:
        _, r, term, trunc, info = env.step(int(rng.integers(n_actions)))
        infos.append(info)
        rewards.append(r)
        done = term or trunc
    return infos, rewards


def test_tracker_drawdown_agrees_with_the_env(multi_data):
    cfg, data = multi_data
    env = env_mod.make_env(cfg, None, split="train", data=data)
    tracker = RiskTracker()
    for seed in range(3):
        _, info0 = env.reset(seed=seed)
        tracker.start_episode(info0["equity"])
        rng = np.random.default_rng(seed)
        done = False
        while not done:
            _, _, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            tracker.update(info)
            assert tracker.drawdown == pytest.approx(info["drawdown"], abs=1e-12)
            done = term or trunc
    assert tracker.snapshot()["episodes"] == 3 and tracker.notional > 0


def test_masking_stops_illiquid_trades_in_the_multi_env(multi_data):
    cfg, data = multi_data
    tiers = data.panel.episode(int(data.session_indices("train")[0]), cfg.features.lookback).tiers
    assert "illiquid" in tiers and "liquid" in tiers
    plain = env_mod.make_env(cfg, None, split="train", data=data)
    n = plain.action_space.n
    free, _ = episode(wrap_from_config(plain, cfg), 0, n, 1)
    assert sum(i["traded_notional_by_tier"]["illiquid"] for i in free) > 0  # random play trades them
    masked_cfg = config_from_dict({"env": {"mode": "multi"}, "risk": {"mask_illiquid": True}})
    w = wrap_from_config(env_mod.make_env(masked_cfg, None, split="train", data=data), masked_cfg)
    infos, _ = episode(w, 0, n, 1)
    assert sum(i["traded_notional_by_tier"]["illiquid"] for i in infos) == 0.0
    assert sum(i["traded_notional_by_tier"]["liquid"] for i in infos) > 0  # liquid names still trade
    assert w.masked_actions > 0
    m = w.action_masks()
    assert m[0] and len(m) == n
    assert [m[1 + 3 * k] for k in range(len(w.tiers))] == [t != "illiquid" for t in w.tiers]


def test_off_profile_is_the_bare_env_and_info_untouched(multi_data):
    cfg, data = multi_data
    off = config_from_dict({"env": {"mode": "multi"}, "risk": {"profile": "off"}})
    n = env_mod.make_env(off, None, split="train", data=data).action_space.n
    wrapped_infos, wrapped_r = episode(wrap_from_config(env_mod.make_env(off, None, split="train", data=data),
                                                        off), 5, n, 2)
    bare_infos, bare_r = episode(env_mod.make_env(off, None, split="train", data=data), 5, n, 2)
    assert wrapped_r == bare_r
    assert [i["equity"] for i in wrapped_infos] == [i["equity"] for i in bare_infos]
    # balanced shaping: lower rewards, identical accounting
    bal_infos, bal_r = episode(wrap_from_config(env_mod.make_env(cfg, None, split="train", data=data), cfg),
                               5, n, 2)
    assert [i["equity"] for i in bal_infos] == [i["equity"] for i in bare_infos]
    assert sum(bal_r) < sum(bare_r)


def test_masking_in_the_single_asset_env(synthetic_market):
    cfg = config_from_dict({"env": {"mode": "single", "symbols": ["IL01"]}, "risk": {"mask_illiquid": True}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = env_mod.prepare(cfg, synthetic_market.bars, synthetic_market.universe)
    w = wrap_from_config(env_mod.make_env(cfg, None, split="train", data=data), cfg)
    infos, _ = episode(w, 0, 3, 4)
    assert w.tiers == ("illiquid",)
    assert sum(i["traded_notional"] for i in infos) == 0.0 and w.masked_actions > 0
    assert w.action_masks() == [False, True, False]
    unmasked = wrap_from_config(env_mod.make_env(cfg, None, split="train", data=data),
                                cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"mask_illiquid": False})}))
    infos, _ = episode(unmasked, 0, 3, 4)
    assert sum(i["traded_notional"] for i in infos) > 0.0
