"""Reference policies: what each one does in the env, and that the momentum signal is the raw 12-bar return."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.agents.references import REFERENCE_NAMES, parse_names, reference_policy
from intradayjules.env import make_env
from intradayjules.env.rollout import run_sessions
from intradayjules.features.pipeline import compute_features


def _env(prepared, split="test", **env_over):
    cfg = prepared.cfg.model_copy(deep=True)
    for k, v in env_over.items():
        setattr(cfg.env, k, v)
    return make_env(cfg, None, split=split, data=prepared.env_data)


class Recorder:
    """Wraps a policy; records (session, decision bar, timestamp, obs, action) of every decision."""

    def __init__(self, env, policy):
        self.env, self.policy, self.rows = env, policy, []

    def __call__(self, obs, info):
        bar = info["start_bar"] if "start_bar" in info else info["bar"]
        a = self.policy(obs, info)
        ep = self.env.unwrapped.episode
        self.rows.append((ep.session, bar, pd.Timestamp(ep.timestamps[bar], tz="UTC"), obs.copy(), a))
        return a


def _raw_feature(prepared, name: str) -> pd.DataFrame:
    cfg = prepared.cfg
    f = compute_features(prepared.bars.frame, cfg.features, calendar=cfg.data.calendar)
    return f.set_index(["timestamp", "symbol"])[name]


def test_momentum_signal_is_the_sign_of_the_raw_12_bar_return(prepared_small):
    env = _env(prepared_small)
    mom = reference_policy("momentum", env)
    rec = Recorder(env, mom)
    sessions = env.unwrapped.session_dates()[:4]
    run_sessions(rec, env, sessions)
    raw = _raw_feature(prepared_small, "logret_12")
    symbols = list(env.unwrapped.symbols)
    decoded, truth, z_sign = [], [], []
    for _s, _bar, ts, obs, _a in rec.rows:
        sig = mom.signal(obs)
        z = obs[mom.ix]
        for k, sym in enumerate(symbols):
            decoded.append(sig[k])
            truth.append(raw.loc[(ts, sym)])
            z_sign.append(np.sign(z[k]))
    decoded, truth, z_sign = map(np.asarray, (decoded, truth, z_sign))
    assert len(truth) == len(rec.rows) * len(symbols) > 1000
    # a NaN feature (warm-up) is no signal; every other value has the sign of the raw return
    assert np.array_equal(np.isnan(decoded), np.isnan(truth))
    ok = np.isfinite(truth) & (np.abs(truth) > 1e-7)  # float32 observation: no sign for |r| ~ 0
    assert ok.sum() > 1000
    assert np.array_equal(np.sign(decoded[ok]), np.sign(truth[ok]))
    assert np.allclose(decoded[ok], truth[ok], rtol=1e-4, atol=1e-6)
    # the decoding matters: the sign of the standardised value alone (mean != 0) disagrees somewhere
    assert (z_sign[ok] != np.sign(truth[ok])).any()


def _decode(action: int) -> tuple[int, int]:
    return (action - 1) // 3, (action - 1) % 3 - 1


def test_momentum_and_reversal_orders_follow_the_signal(prepared_small):
    env = _env(prepared_small)
    for name, direction in (("momentum", 1), ("reversal", -1)):
        pol = reference_policy(name, env)
        rec = Recorder(env, pol)
        run_sessions(rec, env, env.unwrapped.session_dates()[:3])
        changes = [(obs, a) for *_x, obs, a in rec.rows if a != 0]
        assert len(changes) > 20
        for obs, a in changes:
            k, target = _decode(a)
            r = pol.signal(obs)[k]
            assert target == direction * int(np.sign(r)) if np.isfinite(r) else target == 0


def test_buy_hold_enters_one_symbol_a_step_up_to_the_gross_limit(prepared_small):
    env = _env(prepared_small)  # 25 % a position, gross limit 1x: four or five symbols (unfilled ones free room)
    session = env.unwrapped.session_dates()[0]
    res = run_sessions(reference_policy("buy_hold", env), env, [session])
    o = res.orders
    symbols = list(env.unwrapped.symbols)
    # symbol k is asked for at step k + 1; refused ones are not retried, so nothing is ordered after step K
    assert 4 <= len(o) < len(symbols) and (o["qty"] > 0).all() and o["symbol"].is_unique
    assert [symbols.index(s) + 1 for s in o["symbol"]] == list(o["step"]) and o["step"].max() <= len(symbols)
    wide = _env(prepared_small, max_gross_exposure=2.0)
    res = run_sessions(reference_policy("buy_hold", wide), wide, [session])
    assert list(res.orders["symbol"]) == symbols and list(res.orders["step"]) == list(range(1, 7))
    # flat at the close: every position leaves by the closing flatten
    closes = res.trades[res.trades["reason"] == "session_close"]
    assert set(closes["symbol"]) == set(res.trades.loc[res.trades["reason"] == "order", "symbol"])


def test_buy_hold_liquid_trades_only_liquid_names(prepared_small):
    env = _env(prepared_small)
    res = run_sessions(reference_policy("buy_hold_liquid", env), env, env.unwrapped.session_dates()[:3])
    assert len(res.orders) > 0 and set(res.orders["tier"]) == {"liquid"}
    per_session = res.orders.groupby("session")["symbol"].nunique()
    tiers = prepared_small.env_data.panel.tier
    assert (per_session == 2).all() and (tiers == "liquid").sum(axis=1).max() == 2


def test_flat_never_trades_and_random_is_seeded(prepared_small):
    env = _env(prepared_small)
    sessions = env.unwrapped.session_dates()[:2]
    flat = run_sessions(reference_policy("flat", env), env, sessions)
    assert len(flat.trades) == 0 and (flat.daily_returns() == 0).all()
    a = run_sessions(reference_policy("random", env, seed=1), env, sessions)
    b = run_sessions(reference_policy("random", env, seed=1), env, sessions)
    c = run_sessions(reference_policy("random", env, seed=2), env, sessions)
    assert len(a.trades) > 10
    pd.testing.assert_frame_equal(a.trades, b.trades)
    assert not a.trades[["symbol", "qty"]].equals(c.trades[["symbol", "qty"]])


def test_single_asset_momentum_on_another_feature_table():
    """Single mode: the action is the target (0 short, 1 flat, 2 long) = sign of the fallback ``ret_12`` + 1."""
    from intradayjules.config import ExperimentConfig, SyntheticConfig
    from intradayjules.data.synthetic import generate
    from intradayjules.env import prepare
    from intradayjules.env.fallback_features import fallback_features

    mk = generate(SyntheticConfig(n_symbols=6, days=30, seed=0))
    cfg = ExperimentConfig()
    cfg.data.tiers.adv_window_days = 5
    feats = fallback_features(mk.bars.frame)
    data = prepare(cfg, mk.bars.frame, mk.universe, feats)
    env = make_env(cfg, None, split="val", data=data)
    with pytest.raises(ValueError, match="logret_12"):
        reference_policy("momentum", env)
    pol = reference_policy("momentum", env, feature="ret_12")
    rec = Recorder(env, pol)
    run_sessions(rec, env, env.unwrapped.session_dates()[:2])
    raw = feats.set_index(["timestamp", "symbol"])["ret_12"]
    sym = env.unwrapped.symbols[0]
    n = 0
    for *_x, ts, _obs, a in rec.rows:
        r = raw.loc[(ts, sym)]
        if np.isfinite(r) and abs(r) > 1e-7:
            assert a == int(np.sign(r)) + 1
            n += 1
    assert n > 100


def test_parse_names():
    assert parse_names(None) == list(REFERENCE_NAMES) == parse_names("all")
    assert parse_names("flat, buy_hold,flat") == ["flat", "buy_hold"]
    with pytest.raises(ValueError, match="unknown reference policy 'hodl'"):
        parse_names("flat,hodl")
