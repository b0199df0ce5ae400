"""``env.actions.decide`` is the kernel's action rule: on random states and actions of the real env it
gives the orders the step kernel placed (bit for bit), the same gross-limit refusals and, with a random
membership (symbols out of the universe, intraday exits), the same membership refusals."""

from __future__ import annotations

import numpy as np
import pytest

from intradayjules.env import TradingEnv, make_env, prepare
from intradayjules.env.actions import decide, noop_action
from intradayjules.env.membership import Membership

from .helpers import config, features, market


@pytest.fixture(scope="module")
def mk():
    return market(days=20)


def random_membership(panel, rng) -> Membership:
    """Per session and symbol: tradable all session (60 %), not a member (20 %) or an exit at a random
    bar with a random exit return (20 %)."""
    S, K = len(panel.sessions), len(panel.symbols)
    u = rng.random((S, K))
    xb = np.where(u < 0.6, np.inf, np.where(u < 0.8, 0.0, rng.integers(1, 60, (S, K)).astype(float)))
    return Membership(xb, np.where(u >= 0.8, rng.normal(0.0, 0.3, (S, K)), 0.0))


@pytest.mark.parametrize("mode,unfilled,gross,members", [
    ("single", "cancel", 1.0, False), ("multi", "cancel", 0.6, False), ("multi", "carry", 1.0, False),
    ("single", "cancel", 1.0, True), ("multi", "cancel", 0.6, True), ("multi", "carry", 1.0, True)])
def test_decide_equals_the_kernel(mk, mode, unfilled, gross, members):
    frame = mk.bars.frame
    cfg = config(mode, max_daily_drawdown=0.5, max_gross_exposure=gross)
    cfg.market.unfilled = unfilled
    data = prepare(cfg, frame, mk.universe, features(frame))
    rng = np.random.default_rng(5)
    if members:
        env = TradingEnv(data.panel, data.session_indices("train"), cfg.env, cfg.market,
                         lookback=cfg.features.lookback, sampling=cfg.env.train_sampling,
                         membership=random_membership(data.panel, rng))
    else:
        env = make_env(cfg, frame, mk.universe, "train", data=data)
    sim = env.sim
    n_orders = n_limits = n_steps = n_refused = n_exits = 0
    for ep in range(6):
        env.reset(seed=ep)
        done = False
        while not done:
            a = int(rng.integers(env.action_space.n))
            t = int(sim.t[0])
            tradable = (t < sim.exit_bar[0]).tolist()
            held = sim.pos[0].copy()
            want = decide(a, sim.unit[0].tolist(), sim.target[0].tolist(), sim.pos[0].tolist(),
                          sim.close[0, t].tolist(), float(sim.cash[0]), multi=mode == "multi",
                          position_size=cfg.env.position_size, max_gross_exposure=gross, carry=unfilled == "carry",
                          tradable=tradable)
            _, _, done, _, info = env.step(a)
            got = info["order_qty"]
            assert np.array_equal(np.asarray(want.orders), got), (a, want, got)
            assert want.limit_hit == info["limit_hit"]
            assert [s for s, r in zip(env.symbols, want.refused) if r] == sorted(info["refused"], key=env.symbols.index)
            n_refused += sum(want.refused)
            n_exits += sum(1 for k, ok in enumerate(tradable) if not ok and held[k] != 0)
            n_orders += int(np.count_nonzero(got))
            n_limits += int(want.limit_hit)
            n_steps += 1
    assert n_orders > 20  # the comparison covered real orders
    if mode == "multi" and gross < 1:
        assert n_limits > 0  # ... and refusals by the gross limit
    if members:
        assert n_refused > 5 and n_exits > 0  # ... membership refusals and forced exits


def test_noop_and_range():
    assert noop_action([1, -1], multi=True) == 0
    assert noop_action([-1], multi=False) == 0 and noop_action([1], multi=False) == 2
    i = decide(noop_action([1], False), [1], [10.0], [10.0], [100.0], 0.0, multi=False, position_size=0.25,
               max_gross_exposure=1.0)
    assert i.orders == (0.0,) and not any(i.changed)
    with pytest.raises(ValueError, match="not in"):
        decide(7, [0, 0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0], 1.0, multi=True, position_size=0.25,
               max_gross_exposure=1.0)
    # hand case: equity 1,000 + 2 * 50 = 1,100; 25 % at 30 USD -> floor(9.1666) = 9 shares short
    i = decide(1 + 3 * 1 + 0, [0, 0], [0.0, 0.0], [2.0, 0.0], [50.0, 30.0], 1000.0, multi=True,
               position_size=0.25, max_gross_exposure=1.0)
    assert i.eq0 == 1100.0 and i.orders == (0.0, -9.0) and i.new_target == (0.0, -9.0)
