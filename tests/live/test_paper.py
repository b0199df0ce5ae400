"""The paper loop end to end on a trained bundle: the bundle alone acts (TorchScript = the SB3 network),
the live observation is the env's at every decision, the paper run reconciles with the env backtest
of the same bundle to the cent (limits binding, kill switch included), and the comparison is not blind."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from intradayjules.agents.bundle import load_policy as load_sb3_bundle
from intradayjules.agents.deploy import FILES, read_deployment
from intradayjules.errors import IntegrityError
from intradayjules.live.policy import DeployedPolicy
from intradayjules.live.paper import start_paper
from intradayjules.live.reconcile import backtest, compare, limits_of


@pytest.fixture(scope="module")
def paper(deployed, tmp_path_factory):
    """One paper run over the bundle's held-out sessions (replay, simulated broker), reconciled."""
    j = tmp_path_factory.mktemp("paper") / "journal.db"
    run = start_paper(deployed.bundle, f"replay:{deployed.bars}", journal=j, record=True)
    stats = run.run()
    rec = run.reconciliation()
    run.close()
    return run, stats, rec


def test_bundle_holds_every_part_with_its_digest(deployed, tmp_path):
    m, d = read_deployment(deployed.bundle)
    for name in (*FILES.values(), "weights.safetensors"):
        assert len(m["files"][name]["sha256"]) == 64
    # the env's round-robin across tiers (liquid, mid, illiquid), alphabetical within a tier
    assert d["symbols"] == ["LQ01", "MD01", "IL01", "LQ02", "MD02", "IL02"]
    assert json.loads((deployed.bundle / "config.json").read_text())["env"]["mode"] == d["actions"]["mode"] == "multi"
    assert d["actions"]["n"] == 1 + 3 * 6
    assert d["observation"]["dim"] == m["observation_space"]["shape"][0]
    assert d["splits"]["test"][0] > d["splits"]["train"][-1]
    bad = tmp_path / "b"
    shutil.copytree(deployed.bundle, bad)
    (bad / "scaler.json").write_text((bad / "scaler.json").read_text().replace("0", "1", 1))
    with pytest.raises(IntegrityError, match="scaler.json"):
        DeployedPolicy.load(bad)


def test_torchscript_policy_is_the_trained_network(deployed, paper):
    """The bundle's TorchScript module picks the action the SB3 network rebuilt from the safetensors
    weights picks, on every observation the paper run saw."""
    _, _, rec = paper
    pol = DeployedPolicy.load(deployed.bundle)
    sb3 = load_sb3_bundle(deployed.bundle)
    obs = np.stack([rec.observations[t] for t in sorted(rec.observations)])
    want, _ = sb3.predict(obs, deterministic=True)
    got = np.array([pol.action(o) for o in obs])
    assert len(obs) > 300 and np.array_equal(got, np.asarray(want))
    assert len(set(got.tolist())) > 2  # the policy does act (not one constant action)


def test_live_observation_equals_the_env_at_every_decision(paper):
    run, stats, rec = paper
    live = run.loop.observations
    assert len(live) == stats.decisions > 300
    assert set(live) == set(rec.observations)  # the same decision bars
    worst = max(float(np.max(np.abs(live[t] - rec.observations[t]))) for t in live)
    assert worst <= 1e-6, worst
    assert worst == 0.0  # in fact bit for bit
    # and the observations do move: windows, positions and the clock differ between bars
    stack = np.stack(list(live.values()))
    assert np.count_nonzero(np.ptp(stack, axis=0)) > 0.9 * stack.shape[1]


def test_paper_reconciles_with_the_backtest_to_the_cent(paper):
    run, stats, rec = paper
    t = rec.table
    assert rec.ok, rec.text()
    test_sessions = pd.Timestamp(run.policy.deployment["splits"]["test"][0])
    assert len(t) >= 8 and (pd.to_datetime(t["session"]) >= test_sessions).all()
    assert (t["paper_fills"] == t["backtest_fills"]).all() and t["paper_fills"].sum() > 50
    assert stats.rejections > 10  # pre-trade limits cut orders, in both
    assert t["opening_equity"].nunique() > 1  # each day starts from the account's equity
    # P&L: paper closing - opening equity, recomputed here from the journal's cash and fills
    for s, f in rec.paper.items():
        cash_flow = -(f.fills["qty"] * f.fills["price"] + f.fills["spread"] + f.fills["impact"] + f.fills["fees"]).sum()
        assert abs((f.closing - f.opening) - cash_flow) < 0.01, s


def test_the_comparison_sees_a_cent(paper):
    _, _, rec = paper
    s = next(s for s, f in rec.paper.items() if len(f.fills))
    moved = dict(rec.paper)
    f = rec.paper[s]
    fills = f.fills.copy()
    fills.loc[0, "price"] += 0.01
    moved[s] = dataclasses.replace(f, fills=fills, closing=f.closing - 0.01 * abs(fills.loc[0, "qty"]))
    t = compare(moved, rec.backtest)
    assert not bool(t.set_index("session").loc[s, "ok"]) and t["ok"].sum() == len(t) - 1


def test_without_the_env_limits_the_backtest_differs(deployed, paper):
    """The agreement depends on the env applying the same limits: with them switched off the same
    bundle trades differently on the same bars."""
    import math

    run, _, rec = paper
    pol = DeployedPolicy.load(deployed.bundle)
    off = dataclasses.replace(limits_of(pol), max_position=1e9, max_gross_exposure=1e9, max_order_notional=math.inf,
                              max_adv_participation=1e9, max_bar_participation=1e9, allow_illiquid=True,
                              hourly_turnover=1e9, daily_turnover=1e9)
    opening = {s: f.opening for s, f in rec.paper.items()}
    bt = backtest(pol, run.frame, run.universe, opening, off)
    assert not compare(rec.paper, bt)["ok"].all()


def test_kill_switch_run_reconciles(deployed, tmp_path):
    """A drawdown limit tight enough to fire: the loop stops and closes out at the next bar's close,
    the env does the same, and the run still reconciles to the cent."""
    pol = DeployedPolicy.load(deployed.bundle)
    tight = dataclasses.replace(limits_of(pol), daily_drawdown=0.001)
    run = start_paper(deployed.bundle, f"replay:{deployed.bars}", journal=tmp_path / "j.db", limits=tight)
    run.run()
    rec = run.reconciliation()
    killed = run.journal.con.execute("SELECT COUNT(DISTINCT session) FROM pnl WHERE killed = 1").fetchone()[0]
    run.close()
    assert killed >= 2
    assert rec.ok, rec.text()


def test_policy_refuses_and_closes_non_members(deployed):
    """``set_members``: the live policy applies the env's membership rule (``decide``): a long request in a
    symbol outside the session's universe is refused and a position held in it is ordered closed."""
    pol = DeployedPolicy.load(deployed.bundle)
    K = pol.K
    pol.close[:] = 100.0
    out, keep = pol.symbols[1], pol.symbols[0]
    pol.action = lambda obs: 1 + 3 * 1 + 2  # ask long symbol 1
    pos = [0.0] * K
    pos[0], pos[1] = 5.0, 7.0
    free = pol.act(None, 100_000.0, pos)
    assert free.intent.orders[1] == 253.0 - 7.0 and not any(free.intent.refused)  # floor(0.25 * 101,200 / 100)
    pol.set_members([s for s in pol.symbols if s != out])
    act = pol.act(None, 100_000.0, pos)
    assert act.intent.refused[1] and act.intent.orders[1] == -7.0 and act.targets[out] == 0.0
    assert act.intent.orders[0] == 0.0 and keep in pol.symbols
    pol.set_members(None)
    assert not any(pol.act(None, 100_000.0, pos).intent.refused)
