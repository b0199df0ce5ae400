"""TradingEnv: Gymnasium API, determinism, accounting, fill timing, thin and zero-volume bars,
flatten, drawdown stop, position limits, look-ahead."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from intradayjules.env import make_env, prepare

from .helpers import CONTRACT_KEYS, bars_of, config, features, market, run_episode, with_bars


@pytest.fixture(scope="module")
def mk():
    return market(days=30)


@pytest.fixture(scope="module")
def frame(mk):
    return mk.bars.frame


def build(frame, universe, cfg, split="train", feats=None):
    data = prepare(cfg, frame, universe, features(frame) if feats is None else feats)
    return make_env(cfg, frame, universe, split, data=data), data


def first_session(data, split):
    return str(pd.Timestamp(data.splits[split][0]).date())


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_env_checker(frame, mk, mode):
    env, _ = build(frame, mk.universe, config(mode))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
    assert env.observation_space.dtype == np.float32
    assert env.action_space.n == (3 if mode == "single" else 1 + 3 * 6)


def test_same_seed_same_episode(frame, mk):
    runs = []
    for _ in range(2):
        env, _ = build(frame, mk.universe, config("multi"))
        rng = np.random.default_rng(7)
        acts = rng.integers(env.action_space.n, size=400)
        obs, rew, infos, info0 = run_episode(env, list(acts), seed=123)
        runs.append((info0["session"], np.array(obs), np.array(rew), [i["equity"] for i in infos]))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][3] == runs[1][3]
    env, _ = build(frame, mk.universe, config("multi"))
    sessions = {env.reset(seed=s)[1]["session"] for s in range(20)}
    assert len(sessions) > 3  # the seed does choose among training days


def test_info_has_contract_keys(frame, mk):
    env, _ = build(frame, mk.universe, config("multi"))
    _, _, infos, _ = run_episode(env, [1, 4, 7, 0], seed=0)
    for info in infos:
        for key, typ in CONTRACT_KEYS.items():
            assert isinstance(info[key], typ), (key, type(info[key]))
        assert set(info["costs"]) == {"spread", "impact", "commission"}
        assert set(info["traded_notional_by_tier"]) == {"liquid", "mid", "illiquid"}
        assert info["positions"].shape == (6,)
        assert info["drawdown"] >= 0
    assert infos[-1]["tiers"] == ("liquid", "mid", "illiquid", "liquid", "mid", "illiquid")


def independent_costs(qty, price, hs_bps, sigma, adv, cfg):
    n = abs(qty) * price
    return n * hs_bps * 1e-4, cfg.market.impact_coef * sigma * math.sqrt(n / adv) * n, n * cfg.market.commission_bps * 1e-4


def prior_adv_sigma(frame, symbol, session, window):
    """ADV (mean close*volume per session) and daily-vol (std of close-to-close log returns) from the
    sessions before ``session``: computed here independently of the env."""
    f = frame[frame["symbol"] == symbol]
    dv = (f["close"] * f["volume"]).groupby(f["session"]).sum()
    last = f.groupby("session")["close"].last()
    before = dv.index < pd.Timestamp(session)
    adv = dv[before].iloc[-window:].mean()
    rets = np.diff(np.log(last[before].to_numpy()))[-20:]
    sigma = np.std(rets, ddof=1) if len(rets) >= 5 else 0.02
    return adv, sigma


@pytest.mark.parametrize("mode,unfilled", [("single", "cancel"), ("multi", "cancel"), ("multi", "carry")])
def test_accounting_identity_to_the_cent(frame, mk, mode, unfilled):
    cfg = config(mode, max_daily_drawdown=0.5)
    cfg.market.unfilled = unfilled
    env, data = build(frame, mk.universe, cfg, split="val")
    session = first_session(data, "val")
    syms = list(data.symbols)
    raw = {s: bars_of(frame, s, session) for s in syms}
    hs = mk.universe.set_index("symbol")["half_spread_bps"]
    rng = np.random.default_rng(3)
    acts = list(rng.integers(env.action_space.n, size=200))
    obs, rewards, infos, info0 = run_episode(env, acts, session=session)
    assert len(infos) == info0["n_bars"] - 1  # one decision per bar but the last
    pos = np.zeros(len(syms))
    equity = cfg.env.initial_cash
    for i, info in enumerate(infos):
        b = info["bar"]
        assert b == i + 1
        pnl, costs = 0.0, {"spread": 0.0, "impact": 0.0, "commission": 0.0}
        for k, s in enumerate(syms):
            o1, c0, c1 = raw[s]["open"][b], raw[s]["close"][b - 1], raw[s]["close"][b]
            assert info["fill_price"][k] == o1  # fills at bar t+1's open, from the raw bars
            q, fq = info["fill_qty"][k], info["flatten_qty"][k]
            assert abs(q) <= math.floor(cfg.market.participation_cap * raw[s]["volume"][b])
            pnl += pos[k] * (o1 - c0) + (pos[k] + q) * (c1 - o1)
            adv, sigma = prior_adv_sigma(frame, s, session, cfg.data.tiers.adv_window_days)
            for kind, qty, px in (("fill", q, o1), ("flatten", fq, c1)):
                sp, im, fe = independent_costs(qty, px, hs[s], sigma, adv, cfg) if qty else (0.0, 0.0, 0.0)
                got = info["symbol_costs"][kind]
                assert (got["spread"][k], got["impact"][k], got["commission"][k]) == pytest.approx(
                    (sp, im, fe), rel=1e-6, abs=1e-9)
                costs["spread"] += sp
                costs["impact"] += im
                costs["commission"] += fe
            pos[k] += q + fq
        for key in costs:
            assert info["costs"][key] == pytest.approx(costs[key], rel=1e-6, abs=1e-6)
        expected = pnl - sum(costs.values())
        assert info["step_pnl"] == pytest.approx(expected, abs=0.005)
        assert info["equity"] - equity == pytest.approx(expected, abs=0.005)
        assert rewards[i] == pytest.approx(cfg.env.reward_scale * info["step_pnl"] / cfg.env.initial_cash)
        np.testing.assert_array_equal(info["positions"], pos)
        equity = info["equity"]
    last = infos[-1]
    assert last["end_reason"] == "session_close"
    assert not last["positions"].any()
    assert last["equity"] == pytest.approx(last["cash"], abs=1e-9)
    assert sum(i["n_fills"] for i in infos) > 5


def test_partial_fill_on_thin_bar_cancel_and_carry(frame, mk):
    base = config("single", symbols=["LQ01"])
    data0 = prepare(base, frame, mk.universe, features(frame))
    session = first_session(data0, "val")
    thin = with_bars(frame, "LQ01", session, 1, volume=123.0)  # the bar the first decision fills on
    results = {}
    for mode in ("cancel", "carry"):
        cfg = config("single", symbols=["LQ01"])
        cfg.market.unfilled = mode
        env, _ = build(thin, mk.universe, cfg, split="val")
        _, _, infos, _ = run_episode(env, [2] * 3, session=session)
        results[mode] = infos
    for infos in results.values():
        first = infos[0]
        assert first["fill_qty"][0] == 12  # floor(10 % of 123 shares)
        assert first["participation"] == pytest.approx(12 / 123)
        assert first["order_qty"][0] > 1000
        assert first["unfilled_notional"] == pytest.approx((first["order_qty"][0] - 12) * first["fill_price"][0])
    assert results["cancel"][1]["fill_qty"][0] == 0  # the rest was cancelled: long stays partial
    assert results["cancel"][1]["positions"][0] == 12
    carried = results["carry"][1]
    assert carried["fill_qty"][0] == results["carry"][0]["order_qty"][0] - 12  # the remainder fills next bar
    assert carried["positions"][0] == results["carry"][0]["order_qty"][0]


def test_zero_volume_bar_fills_nothing_and_stale_decision_flagged(frame, mk):
    base = config("single", symbols=["MD01"])
    data0 = prepare(base, frame, mk.universe, features(frame))
    session = first_session(data0, "val")
    f = with_bars(frame, "MD01", session, 1, volume=0.0)
    f = with_bars(f, "MD01", session, 2, volume=0.0)
    env, _ = build(f, mk.universe, base, split="val")
    _, _, infos, _ = run_episode(env, [2, 2, 1], session=session)
    assert infos[0]["fill_qty"][0] == 0 and infos[0]["n_fills"] == 0
    assert infos[0]["costs"] == {"spread": 0.0, "impact": 0.0, "commission": 0.0}
    assert infos[0]["unfilled_notional"] > 0
    assert infos[0]["stale_decision"] is False  # decision bar 0 traded
    # bar 1 is stale; repeating the same target there is no decision on it
    assert infos[1]["stale_share"] == 1.0 and infos[1]["secs_since_trade"] > 0
    assert infos[1]["stale_decision"] is False
    assert infos[2]["stale_decision"] is True  # target changed to flat while bar 2 is stale
    assert infos[2]["fill_qty"][0] == 0  # position was never filled: nothing to sell


def test_drawdown_stop_flattens_at_that_bar_close(frame, mk):
    cfg = config("single", symbols=["LQ01"])
    data0 = prepare(cfg, frame, mk.universe, features(frame))
    session = first_session(data0, "val")
    b = bars_of(frame, "LQ01", session)
    crash = with_bars(frame, "LQ01", session, 5, close=b["close"][5] * 0.85, low=b["close"][5] * 0.85)
    env, _ = build(crash, mk.universe, cfg, split="val")
    _, _, infos, _ = run_episode(env, [2] * 100, session=session)
    last = infos[-1]
    assert len(infos) == 5 and last["bar"] == 5
    assert last["end_reason"] == "drawdown"
    assert not last["positions"].any()
    assert last["flatten_price"][0] == pytest.approx(b["close"][5] * 0.85)
    assert last["drawdown"] >= cfg.env.max_daily_drawdown


def test_multi_asset_gross_limit(frame, mk):
    cfg = config("multi")
    cfg.market.unfilled = "carry"  # targets stay whole, so 4 x 25 % = 100 % gross is the limit
    env, data = build(frame, mk.universe, cfg, split="val")
    session = first_session(data, "val")
    acts = [1 + 3 * k + 2 for k in range(6)]  # long symbol 0, 1, 2, ...
    _, _, infos, _ = run_episode(env, acts + [0] * 200, session=session)
    assert [i["limit_hit"] for i in infos[:6]] == [False] * 4 + [True, True]
    assert infos[3]["order_qty"][3] > 0  # the 4th long goes through
    assert all(i["order_qty"][4] == 0 and i["positions"][4] == 0 for i in infos[4:-1])  # the 5th is refused
    gross = [abs(i["positions"]) @ i["flatten_price"] / i["equity"] for i in infos[:-1]]
    assert max(gross) <= cfg.env.max_gross_exposure + 0.01


def test_single_mode_targets_quarter_of_equity(frame, mk):
    cfg = config("single", symbols=["LQ02"])
    env, data = build(frame, mk.universe, cfg, split="val")
    session = first_session(data, "val")
    b = bars_of(frame, "LQ02", session)
    _, _, infos, _ = run_episode(env, [0, 0, 1, 2], session=session)
    assert infos[0]["order_qty"][0] == -math.floor(0.25 * 1e6 / b["close"][0])
    assert infos[1]["order_qty"][0] == 0  # repeating the target places no order
    assert infos[2]["positions"][0] == 0


@pytest.mark.parametrize("pipeline", [False, True], ids=["test-features", "features-pipeline"])
def test_no_lookahead(frame, mk, pipeline):
    if pipeline:
        pytest.importorskip("intradayjules.features.pipeline")
    cfg = config("multi", max_daily_drawdown=0.9)
    _, data = build(frame, mk.universe, cfg, split="test")
    session = str(pd.Timestamp(data.splits["test"][-1]).date())
    t = 30
    f2 = frame.copy()
    pos_in_session = f2.groupby(["symbol", "session"]).cumcount().to_numpy()
    later = (f2["session"] == pd.Timestamp(session)).to_numpy() & (pos_in_session > t)
    for c in ("open", "high", "low", "close"):
        f2.loc[later, c] = f2.loc[later, c] * 1.3
    f2.loc[later, "volume"] = f2.loc[later, "volume"] * 5
    acts = list(np.random.default_rng(11).integers(1 + 3 * 6, size=200))
    runs = []
    for fr in (frame, f2):
        if pipeline:  # make_env's own feature computation
            env = make_env(cfg, fr, mk.universe, "test")
        else:
            env, _ = build(fr, mk.universe, cfg, split="test")
        runs.append(run_episode(env, acts, session=session))
    (o1, r1, _, _), (o2, r2, _, _) = runs
    for j in range(t + 1):  # observations of bars 0..t
        np.testing.assert_array_equal(o1[j], o2[j])
    np.testing.assert_array_equal(r1[:t], r2[:t])  # steps whose fill and mark bars are <= t
    assert not np.array_equal(r1[t], r2[t])  # bar t+1 changed: the perturbation is visible after t
    assert not np.array_equal(o1[t + 1], o2[t + 1])


def test_flat_cost_model_in_env(frame, mk):
    cfg = config("single", symbols=["IL01"])
    cfg.market.model = "flat"
    data0 = prepare(cfg, frame, mk.universe, features(frame))
    session = first_session(data0, "val")
    f = with_bars(frame, "IL01", session, 1, volume=0.0)
    env, _ = build(f, mk.universe, cfg, split="val")
    _, _, infos, _ = run_episode(env, [2, 2, 0], session=session)
    first = infos[0]
    assert first["fill_qty"][0] == first["order_qty"][0] != 0  # in full, even on a zero-volume bar
    assert first["costs"]["commission"] == pytest.approx(5e-4 * first["traded_notional"])
    assert first["costs"]["spread"] == first["costs"]["impact"] == 0


def test_realistic_costs_more_for_illiquid_than_liquid(frame, mk):
    """Same $ target in a liquid and an illiquid name: illiquid pays far more per $ traded."""
    per_dollar = {}
    for sym in ("LQ01", "IL01"):
        cfg = config("single", symbols=[sym], max_daily_drawdown=0.5)
        cfg.market.unfilled = "carry"
        env, data = build(frame, mk.universe, cfg, split="val")
        _, _, infos, _ = run_episode(env, [2] * 10 + [1] * 300, session=first_session(data, "val"))
        cost = sum(sum(i["costs"].values()) for i in infos)
        per_dollar[sym] = cost / sum(i["traded_notional"] for i in infos)
    assert per_dollar["IL01"] > 20 * per_dollar["LQ01"]


def test_episode_bars_window(frame, mk):
    cfg = config("single", symbols=["LQ01"], episode_bars=10)
    env, data = build(frame, mk.universe, cfg)
    starts = set()
    for seed in range(8):
        _, _, infos, info0 = run_episode(env, [2, 0, 1], seed=seed)
        assert len(infos) == 10 and info0["n_bars"] == 11
        assert infos[0]["bar"] == info0["start_bar"] + 1
        assert infos[-1]["end_reason"] == "episode_end" and not infos[-1]["positions"].any()
        starts.add(info0["start_bar"])
    assert len(starts) > 3 and max(starts) <= 78 - 1 - 10
    ev = make_env(cfg, frame, mk.universe, "val", data=data)
    _, info0 = ev.reset(options={"session": first_session(data, "val")})
    assert info0["start_bar"] == 0  # evaluation windows start at the open


def test_env_fills_are_the_market_models(frame, mk):
    """The env's fills equal ``MarketModel.fill`` on the same order, bar and state."""
    from intradayjules.market import BarQuote, MarketModel, MarketState, Order

    cfg = config("multi")
    env, data = build(frame, mk.universe, cfg, split="val")
    session = first_session(data, "val")
    _, _, infos, _ = run_episode(env, [3, 6, 9, 12, 15, 18] + [0] * 100, session=session)
    ep = env.sim.episodes[0]
    model = MarketModel(cfg.market)
    checked = 0
    for info in infos[:6]:
        for k, s in enumerate(ep.symbols):
            if info["order_qty"][k] == 0:
                continue
            b = info["bar"]
            f = model.fill(Order(s, info["order_qty"][k]), BarQuote(ep.open[b, k], ep.volume[b, k]),
                           MarketState(ep.half_spread_bps[k], ep.sigma_daily[k], ep.adv_usd[k]))
            assert f.qty == info["fill_qty"][k]
            c = info["symbol_costs"]["fill"]
            assert (f.spread_cost, f.impact_cost, f.fees) == pytest.approx(
                (c["spread"][k], c["impact"][k], c["commission"][k]), rel=1e-12)
            checked += 1
    assert checked >= 6
