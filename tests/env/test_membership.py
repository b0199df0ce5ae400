"""Membership in the env (``env/membership.py``): a symbol outside the point-in-time universe is never held
and its orders are refused with the reason; an intraday exit (delisting) closes the position at the next
bar's open with the delisting return; P&L equals a hand computation from the bars; membership of later
sessions or bars changes nothing before them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.data.pit import PitStatus
from intradayjules.env import SessionVecEnv, TradingEnv, prepare
from intradayjules.env.membership import Membership

from .helpers import bars_of, config, features, market, run_episode

RATE = 5e-4  # flat cost model: 5 bps of traded notional, filled in full
CASH = 100_000.0


@pytest.fixture(scope="module")
def setup():
    mk = market(days=20, n_symbols=2, seed=3)
    frame = mk.bars.frame
    cfg = config("multi", n_assets=2, max_daily_drawdown=0.9, max_gross_exposure=1.0, initial_cash=CASH)
    cfg.market.model = "flat"
    cfg.market.flat_cost_bps = 5.0
    data = prepare(cfg, frame, mk.universe, features(frame))
    return frame, cfg, data


def make(data, cfg, membership=None):
    return TradingEnv(data.panel, data.session_indices("train"), cfg.env, cfg.market, lookback=cfg.features.lookback,
                      sampling="sequential", membership=membership)


def day(data, j: int) -> str:
    return str(pd.Timestamp(data.panel.sessions[data.session_indices("train")[j]]).date())


def b_leaves_after_two(data) -> Membership:
    """B is a member up to and including the second training session; A always."""
    A, B = data.symbols
    spells = pd.DataFrame({"symbol": [A, B], "start": [pd.Timestamp("2000-01-01")] * 2,
                           "end": [pd.NaT, pd.Timestamp(day(data, 1))]})
    return Membership.from_spells(spells, data.panel)


def long_b_then_a(i: int) -> int:
    """Step 0 asks long B (action 1 + 3*1 + 2), step 1 long A (1 + 0 + 2), every 7th step long B again."""
    if i == 1:
        return 3
    return 6 if i % 7 == 0 else 0


def test_symbol_that_left_is_never_held_and_refused(setup):
    frame, cfg, data = setup
    A, B = data.symbols
    env = make(data, cfg, b_leaves_after_two(data))
    free = make(data, cfg)
    for j in range(5):
        _, _, infos, _ = run_episode(env, long_b_then_a, session=day(data, j))
        held_b = [float(i["positions"][1]) for i in infos]
        asks = [i for i in range(len(infos)) if long_b_then_a(i) == 6]
        if j < 2:  # a member: B is bought at the first step and held
            assert held_b[0] != 0 and all(infos[i]["refused"] == {} for i in range(len(infos)))
        else:
            assert all(h == 0.0 for h in held_b)
            assert all(float(i["fill_qty"][1]) == 0.0 for i in infos)
            for i in range(len(infos)):
                want = {B: "not_member"} if i in asks else {}
                assert infos[i]["refused"] == want, (j, i)
                assert infos[i]["refused_orders"] == ({"not_member": 1} if i in asks else {})
            # without the membership the same actions hold B in this session (the check can fail)
            _, _, free_infos, _ = run_episode(free, long_b_then_a, session=day(data, j))
            assert float(free_infos[0]["positions"][1]) != 0.0


def test_pnl_of_a_non_member_session_by_hand(setup):
    frame, cfg, data = setup
    A, B = data.symbols
    env = make(data, cfg, b_leaves_after_two(data))
    s = day(data, 3)
    _, _, infos, _ = run_episode(env, long_b_then_a, session=s)
    a = bars_of(frame, A, s)
    assert len(a) == len(infos) + 1  # every bar of A is there: bar t of the session is row t
    shares = np.floor(0.25 * CASH / a["close"][1])  # decided on bar 1's close with equity = cash
    o, c = a["open"][2], a["close"].iloc[-1]
    want = shares * (c - o) - RATE * shares * (o + c)  # bought at bar 2's open, sold at the last close
    assert infos[-1]["equity"] - CASH == pytest.approx(want, rel=1e-12, abs=1e-6)
    assert float(infos[1]["fill_qty"][0]) == shares and float(infos[1]["fill_price"][0]) == o


def test_delisting_closes_at_next_open_with_the_return(setup):
    frame, cfg, data = setup
    A, B = data.symbols
    s = day(data, 0)
    b = bars_of(frame, B, s)
    ts = pd.to_datetime(b["timestamp"], utc=True)
    # effective 1 minute into bar 10: the first decision after it is on bar 10, its fill at bar 11's open
    ev = pd.DataFrame({"symbol": [B], "time": [ts[10] + pd.Timedelta(minutes=1)], "dlret": [-0.3]})
    m = b_leaves_after_two(data).with_exits(ev, data.panel)
    si = int(data.session_indices("train")[0])
    assert m.exit_bar[si, 1] == 10.0 and m.exit_ret[si, 1] == -0.3
    assert (m.exit_bar[si + 1:, 1] == 0).all()  # never a member again

    def acts(i):
        return 6 if i in (0, 12) else 0  # long B at the open; asks again after the exit

    env = make(data, cfg, m)
    _, _, infos, _ = run_episode(env, acts, session=s)
    shares = np.floor(0.25 * CASH / b["close"][0])
    buy = b["open"][1]
    out = b["open"][11] * (1 - 0.3)  # next fill after the decision on bar 10: bar 11's open, times 1 + DLRET
    assert float(infos[0]["fill_qty"][1]) == shares
    assert float(infos[10]["fill_qty"][1]) == -shares
    assert float(infos[10]["fill_price"][1]) == pytest.approx(out, rel=1e-15)
    assert float(infos[10]["fill_price"][1]) != pytest.approx(b["close"][10] * 0.7)  # not the current close
    assert all(float(i["positions"][1]) == 0.0 for i in infos[10:])
    assert float(infos[9]["positions"][1]) == shares  # held until the exit
    assert infos[12]["refused"] == {B: "delisted"} and infos[12]["refused_orders"] == {"delisted": 1}
    want = shares * (out - buy) - RATE * shares * (buy + out)
    assert infos[-1]["equity"] - CASH == pytest.approx(want, rel=1e-12, abs=1e-6)
    # the next session: not a member
    _, _, nxt, _ = run_episode(env, acts, session=day(data, 1))
    assert nxt[0]["refused"] == {B: "not_member"} and all(float(i["positions"][1]) == 0.0 for i in nxt)


def test_membership_never_looks_ahead(setup):
    frame, cfg, data = setup
    A, B = data.symbols
    base = b_leaves_after_two(data)
    # later sessions' membership changed (B back in from session 3, A out): sessions 0-2 are identical
    later = Membership(base.exit_bar.copy(), base.exit_ret.copy())
    idx = data.session_indices("train")
    later.exit_bar[idx[3]:, 1] = np.inf
    later.exit_bar[idx[3]:, 0] = 0.0
    for j in range(3):
        _, r0, i0, _ = run_episode(make(data, cfg, base), long_b_then_a, session=day(data, j))
        _, r1, i1, _ = run_episode(make(data, cfg, later), long_b_then_a, session=day(data, j))
        assert r0 == r1 and [i["refused"] for i in i0] == [i["refused"] for i in i1]
    _, r0, _, _ = run_episode(make(data, cfg, base), long_b_then_a, session=day(data, 3))
    _, r1, _, _ = run_episode(make(data, cfg, later), long_b_then_a, session=day(data, 3))
    assert r0 != r1  # ... while the session where it changed did change
    # an intraday exit at bar 10: every step before the decision on bar 10 is identical
    s = day(data, 0)
    ts = pd.to_datetime(bars_of(frame, B, s)["timestamp"], utc=True)
    ev = pd.DataFrame({"symbol": [B], "time": [ts[10] + pd.Timedelta(minutes=1)], "dlret": [-0.3]})
    _, r0, _, _ = run_episode(make(data, cfg, base), long_b_then_a, session=s)
    _, r1, _, _ = run_episode(make(data, cfg, base.with_exits(ev, data.panel)), long_b_then_a, session=s)
    assert r0[:10] == r1[:10] and r0[10] != r1[10]


def test_from_pit_and_vector_env_agree(setup):
    frame, cfg, data = setup
    A, B = data.symbols
    sessions = pd.DatetimeIndex(data.panel.sessions)
    member = np.ones((len(sessions), 2), bool)
    j2 = int(data.session_indices("train")[2])
    member[j2:, 1] = False
    st = PitStatus(sessions, [B, A], member[:, ::-1].copy(), np.zeros_like(member), np.zeros(member.shape))
    m = Membership.from_pit(st, data.panel)
    assert np.array_equal(m.members(j2), [True, False]) and np.array_equal(m.members(j2 - 1), [True, True])
    single = make(data, cfg, m)
    vec = SessionVecEnv(data.panel, data.session_indices("train"), 1, cfg.env, cfg.market,
                        lookback=cfg.features.lookback, sampling="sequential", membership=m)
    s = day(data, 2)
    _, rs, infos, _ = run_episode(single, long_b_then_a, session=s)
    vec.set_options({"session": s})
    vec.reset()
    for i, r in enumerate(rs):
        _, rv, _, vi = vec.step(np.array([long_b_then_a(i)]))
        assert float(rv[0]) == pytest.approx(r, rel=1e-6, abs=1e-9)
        assert vi[0]["refused"] == infos[i]["refused"]


def test_bad_shapes_and_columns(setup):
    frame, cfg, data = setup
    with pytest.raises(ValueError, match="membership arrays"):
        make(data, cfg, Membership.from_member(np.ones((2, 2), bool)))
    with pytest.raises(ValueError, match=r"missing columns \['end'\]"):
        Membership.from_spells(pd.DataFrame({"symbol": ["X"], "start": ["2020-01-01"]}), data.panel)


def with_members(cfg, frame, path, text: str):
    """``cfg`` with ``data.members`` = ``path`` holding ``text``, and the env data prepared under it."""
    path.write_text(text)
    mcfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"members": path})})
    return mcfg, prepare(mcfg, frame, None, features(frame))


def test_data_members_reaches_the_env_through_make_env(setup, tmp_path):
    """``data.members`` (a spells file as users have them: ticker, start_date, end_date) is what ``make_env``
    and ``make_vec_env`` trade under: B is refused after its spell ends, and not without the file."""
    from intradayjules.env import make_env, make_vec_env

    frame, cfg, data0 = setup
    A, B = data0.symbols
    mcfg, data = with_members(cfg, frame, tmp_path / "members.csv",
                              f"ticker,start_date,end_date\n{A},2000-01-01,\n{B},2000-01-01,{day(data0, 1)}\n")
    assert data.membership is not None
    env = make_env(mcfg, None, split="train", data=data)
    _, _, infos, _ = run_episode(env, long_b_then_a, session=day(data, 3))
    assert all(float(i["positions"][1]) == 0.0 for i in infos) and infos[0]["refused"] == {B: "not_member"}
    _, _, infos, _ = run_episode(env, long_b_then_a, session=day(data, 0))
    assert float(infos[0]["positions"][1]) != 0.0  # a member that session
    assert make_vec_env(mcfg, None, split="train", data=data, n_envs=2).membership is not None
    assert make_env(cfg, None, split="train", data=data0).membership is None
    with pytest.raises(ValueError, match="PERMNOs only"):
        with_members(cfg, frame, tmp_path / "ids.csv", "permno,start,end\n10107,2000-01-01,\n")


def test_training_env_trades_under_data_members(setup, tmp_path):
    """The env SB3 trains on (``agents.sb3.make_training_vec_env``) carries the run's membership."""
    from intradayjules.agents.sb3 import make_training_vec_env

    frame, cfg, data0 = setup
    mcfg, data = with_members(cfg, frame, tmp_path / "members.csv", f"symbol,start,end\n{data0.symbols[0]},2000-01-01,\n")
    venv = make_training_vec_env(mcfg, data, n_envs=2).venv
    assert venv.membership is not None and np.all(venv.membership.exit_bar[:, 1] == 0)  # B never a member
    assert make_training_vec_env(cfg, data0, n_envs=2).venv.membership is None
