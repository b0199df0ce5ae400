"""The pre-trade limits inside the env (``env.pretrade_limits``): invisible when nothing binds, every
traded order within every limit when they do (limits re-stated here, not taken from the checker), the
kill switch closes out at the next bar's close, and evaluation applies it from the config flag."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import ExperimentConfig, SyntheticConfig
from intradayjules.data.synthetic import generate
from intradayjules.env import make_env, prepare
from intradayjules.env.fallback_features import fallback_features as features
from intradayjules.risk.pretrade import PreTradeLimits
from intradayjules.risk.pretrade_env import PreTradeEnv, panel_bar_seconds, pretrade_limits_for, with_pretrade_limits


def market(days: int):
    return generate(SyntheticConfig(n_symbols=6, days=days, seed=0))


def config(mode: str, **env) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.data.tiers.adv_window_days = 5
    cfg.env.mode = mode
    for k, v in env.items():
        setattr(cfg.env, k, v)
    return cfg

OFF = dict(max_position=1e9, max_gross_exposure=1e9, max_order_notional=math.inf, max_adv_participation=1e9,
           max_bar_participation=1e9, allow_illiquid=True, hourly_turnover=1e9, daily_turnover=1e9,
           daily_drawdown=0.999, stale_bars=10**6)


@pytest.fixture(scope="module")
def setup():
    mk = market(days=24)
    frame = mk.bars.frame
    cfg = config("multi", max_daily_drawdown=0.9, position_size=0.3)
    data = prepare(cfg, frame, mk.universe, features(frame))
    return mk, cfg, data


def sessions(data, split="train", n=4):
    return [str(pd.Timestamp(s).date()) for s in data.splits[split][:n]]


def play(env, session, actions):
    obs, info = env.reset(options={"session": session})
    out = [(obs, info)]
    for a in actions:
        obs, r, done, _, info = env.step(int(a))
        out.append((obs, info))
        if done:
            break
    return out


def test_invisible_when_nothing_binds(setup):
    mk, cfg, data = setup
    rng = np.random.default_rng(0)
    liquid = [0] + [1 + 3 * k + j for k in (0, 3) for j in range(3)]  # names that trade on every bar
    for s in sessions(data):
        acts = rng.choice(liquid, size=200)
        plain = play(make_env(cfg, None, split="train", data=data), s, acts)
        wrapped = play(PreTradeEnv(make_env(cfg, None, split="train", data=data), PreTradeLimits(**OFF)), s, acts)
        assert len(plain) == len(wrapped)
        for (o1, i1), (o2, i2) in zip(plain, wrapped):
            np.testing.assert_array_equal(o1, o2)
            if "fill_qty" in i1:
                np.testing.assert_array_equal(i1["fill_qty"], i2["fill_qty"])
                assert i1["equity"] == i2["equity"] and i2["pretrade"] == [] and not i2["killed"]


def test_every_traded_order_is_within_the_limits(setup):
    mk, cfg, data = setup
    lim = PreTradeLimits(max_position=0.2, max_gross_exposure=0.5, max_order_notional=150_000.0,
                         max_adv_participation=0.004, max_bar_participation=0.3, allow_illiquid=False,
                         hourly_turnover=0.8, daily_turnover=2.0, daily_drawdown=0.9, stale_bars=3,
                         bar_seconds=panel_bar_seconds(data.panel))
    env = PreTradeEnv(make_env(cfg, None, split="train", data=data), lim)
    sim = env.sim
    rng = np.random.default_rng(1)
    rules_seen: set[str] = set()
    n_orders = 0
    for s in sessions(data, n=6):
        obs, info = env.reset(options={"session": s})
        symbols, tiers = info["symbols"], info["tiers"]
        ep = sim.episodes[0]
        e0 = float(sim.cash[0])
        day = 0.0
        by_sym = dict.fromkeys(symbols, 0.0)
        hour: list[tuple[int, float]] = []
        done = False
        while not done:
            t = int(sim.t[0])
            close, vol, pos = sim.close[0, t].copy(), sim.volume[0, t].copy(), sim.pos[0].copy()
            eq = float(sim.cash[0]) + float(np.dot(pos, close))
            obs, _, done, _, info = env.step(int(rng.integers(env.action_space.n)))
            q = info["order_qty"]
            for sym, requested, accepted, rules in info["pretrade"]:
                rules_seen.update(rules)
                assert q[symbols.index(sym)] == accepted and abs(accepted) < abs(requested)
            for k in np.flatnonzero(q):
                n_orders += 1
                p = close[k]
                after = pos[k] + q[k]
                grows = abs(after) > abs(pos[k])
                notional = abs(q[k]) * p
                if grows:
                    assert abs(after) * p <= 0.2 * eq * (1 + 1e-6)
                    assert tiers[k] != "illiquid"
                    gross = sum(abs(pos[j] + (q[j] if j == k else 0)) * close[j] for j in range(len(pos)))
                    assert gross <= 0.5 * eq * (1 + 1e-6)
                assert notional <= 150_000.0 * (1 + 1e-9)
                assert abs(q[k]) <= 0.3 * vol[k] * (1 + 1e-9)
                by_sym[symbols[k]] += notional
                assert by_sym[symbols[k]] <= 0.004 * ep.adv_usd[k] * (1 + 1e-6)
                day += notional
                assert day <= 2.0 * e0 * (1 + 1e-6)
                hour.append((t, notional))
                in_hour = sum(n for tt, n in hour if tt > t - 12)  # 12 bars of 5 minutes
                assert in_hour <= 0.8 * e0 * (1 + 1e-6)
    assert n_orders > 30
    # the limits did bind: each of these cut orders during the test
    assert {"max_position", "max_adv_participation", "illiquid_tier"} <= rules_seen, rules_seen


def test_kill_switch_closes_at_the_next_bar_close(setup):
    mk, cfg, data = setup
    lim = PreTradeLimits(**{**OFF, "daily_drawdown": 0.0005, "bar_seconds": panel_bar_seconds(data.panel)})
    env = PreTradeEnv(make_env(cfg, None, split="train", data=data), lim)
    sim = env.sim
    stopped = 0
    for s in sessions(data, n=8):
        env.reset(options={"session": s})
        peak = float(sim.cash[0])
        done = False
        while not done:
            t = int(sim.t[0])
            eq = float(sim.cash[0]) + float(np.dot(sim.pos[0], sim.close[0, t]))
            peak = max(peak, eq)
            pos = sim.pos[0].copy()
            # long the two liquid names, then hold
            a = 3 if t == 0 else (6 if t == 1 else 0)
            _, _, done, _, info = env.step(a)
            if 1 - eq / peak >= 0.0005:  # the limit is reached at this decision: no order, close out
                assert info["killed"] and done and info["end_reason"] == "drawdown"
                assert not np.any(info["order_qty"])
                held = np.flatnonzero(pos)
                assert len(held) and np.array_equal(info["flatten_qty"][held], -pos[held])
                np.testing.assert_array_equal(info["flatten_price"][held], sim.close[0, t + 1][held])
                stopped += 1
            else:
                assert not info["killed"]
    assert stopped >= 1


def test_config_flag_wraps_for_evaluation(setup):
    mk, cfg, data = setup
    env = make_env(cfg, None, split="test", data=data)
    assert with_pretrade_limits(env, cfg) is env
    on = cfg.model_copy(deep=True)
    on.env.pretrade_limits = True
    wrapped = with_pretrade_limits(env, on)
    assert isinstance(wrapped, PreTradeEnv)
    assert wrapped.limits == pretrade_limits_for(on, 300.0)
    assert wrapped.limits.daily_drawdown == min(on.risk.daily_drawdown_limit, on.env.max_daily_drawdown)
