"""Step-info levels: a ``train`` info carries the same values as the ``full`` info for its keys, on the
same trajectory (single env and vectorised env), and the full detail stays reachable on demand."""

from __future__ import annotations

import numpy as np
import pytest

from intradayjules.env import make_env, make_vec_env, prepare
from intradayjules.env.simulator import TRAIN_INFO_KEYS

from .helpers import CONTRACT_KEYS, config, features, market, run_episode


@pytest.fixture(scope="module")
def setup():
    mk = market(days=30)
    cfg = config("multi", max_daily_drawdown=0.004)  # some episodes end on the drawdown stop
    data = prepare(cfg, mk.bars.frame, mk.universe, features(mk.bars.frame))
    return mk, cfg, data


def _same(a, b, key):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=key)
    else:
        assert a == b and type(a) is type(b), (key, a, b)


def test_train_info_equals_full_info_on_its_keys(setup):
    mk, cfg, data = setup
    acts = np.random.default_rng(3).integers(1 + 3 * 6, size=300)
    seen_reasons = set()
    for session in [str(np.datetime_as_string(s, unit="D")) for s in data.splits["val"][:4]]:
        full = make_env(cfg, mk.bars, mk.universe, "val", data=data)
        lean = make_env(cfg, mk.bars, mk.universe, "val", data=data, info="train")
        o_f, r_f, i_f, _ = run_episode(full, list(acts), session=session)
        o_l, r_l, i_l, _ = run_episode(lean, list(acts), session=session)
        np.testing.assert_array_equal(np.array(o_f), np.array(o_l))
        assert r_f == r_l
        for a, b in zip(i_f, i_l):
            assert set(b) == set(TRAIN_INFO_KEYS)
            for key in TRAIN_INFO_KEYS:
                _same(a[key], b[key], key)
        assert sum(i["traded_notional_by_tier"]["illiquid"] for i in i_l) > 0  # the tier sums are exercised
        seen_reasons.add(i_l[-1]["end_reason"])
        # the full detail of the last step, built on demand from the lean env
        last = lean.full_info()
        for key in CONTRACT_KEYS:
            _same(i_f[-1][key], last[key], key)
    assert seen_reasons == {"drawdown", "session_close"}


def test_tier_sums_match_the_per_symbol_detail(setup):
    mk, cfg, data = setup
    env = make_env(cfg, mk.bars, mk.universe, "val", data=data)
    _, _, infos, _ = run_episode(env, list(np.random.default_rng(4).integers(19, size=200)), seed=0)
    tiers = env.sim.episodes[0].tiers
    for info in infos:
        by_sym = info["traded_notional_by_symbol"]
        for tier in ("liquid", "mid", "illiquid"):
            ks = [k for k, t in enumerate(tiers) if t == tier]
            assert info["traded_notional_by_tier"][tier] == pytest.approx(
                sum(by_sym[env.symbols[k]] for k in ks), rel=1e-12, abs=1e-9)
            cost = sum(float(info["symbol_costs"][kind][c][k]) for k in ks for kind in ("fill", "flatten")
                       for c in ("spread", "impact", "commission"))
            assert info["costs_by_tier"][tier] == pytest.approx(cost, rel=1e-12, abs=1e-9)


def test_vec_env_train_infos_and_auto_reset_infos(setup):
    mk, cfg, data = setup
    outs = {}
    for level in ("full", "train", "minimal"):
        venv = make_vec_env(cfg, mk.bars, mk.universe, "train", n_envs=3, data=data, seed=2, info=level)
        venv.reset()
        acts = np.random.default_rng(1).integers(venv.action_space.n, size=(200, 3))
        steps = []
        for a in acts:
            obs, r, d, infos = venv.step(a)
            for i in np.flatnonzero(d):
                assert "terminal_observation" in infos[i]
                ri = venv.reset_infos[i]  # the new episode's reset info, as DummyVecEnv gives it
                assert ri["session"] == venv.sim.episodes[i].session and ri["equity"] == cfg.env.initial_cash
            steps.append((obs, r, d, infos))
        outs[level] = steps
    for (o1, r1, d1, i1), (o2, r2, d2, i2) in zip(outs["full"], outs["train"]):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for a, b in zip(i1, i2):
            for key in TRAIN_INFO_KEYS:
                _same(a[key], b[key], key)
    assert any(d.any() for _, _, d, _ in outs["train"])
    for (o1, r1, d1, i1), (o3, r3, d3, i3) in zip(outs["train"], outs["minimal"]):
        np.testing.assert_array_equal(o1, o3)
        np.testing.assert_array_equal(r1, r3)
        for done, a, b in zip(d1, i1, i3):
            if done:  # the episode's last step carries the train info (and the terminal observation)
                assert set(b) == set(TRAIN_INFO_KEYS) | {"terminal_observation"}
                for key in TRAIN_INFO_KEYS:
                    _same(a[key], b[key], key)
            else:
                assert b == {}


def test_unknown_info_level_is_refused(setup):
    mk, cfg, data = setup
    with pytest.raises(ValueError, match="info must be one of"):
        make_env(cfg, mk.bars, mk.universe, "val", data=data, info="lean")
