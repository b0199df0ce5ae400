"""Reconciliation: a paper run against the backtest of the same bundle on the same bars.

``backtest(policy, frame, universe, opening)`` runs the environment (``TradingEnv`` with the pre-trade
limits, ``risk/pretrade_env.py``) over the given sessions with the bundle's own network, features
computed in batch (``compute_features``) and standardised with the bundle's scaler; each session
starts flat from the paper account's opening equity that day (``opening``: session -> USD), as the
paper account does. ``reconcile(journal, policy, frame, universe)`` reads the paper run's fills,
positions and P&L from its journal, runs that backtest, and compares session by session:

* fills, keyed by (bar, symbol, open/close): the same set, quantities and prices equal, each cost
  (spread, impact, commission) within half a cent;
* positions after every bar: equal;
* daily P&L (closing equity - opening equity): within half a cent.

``Reconciliation.table`` has one row per session; ``ok`` is True when every session agrees.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..env.episodes import build_panel
from ..env.rollout import run_sessions
from ..env.trading_env import TradingEnv
from ..features.pipeline import compute_features
from ..risk.pretrade import PreTradeLimits
from ..risk.pretrade_env import PreTradeEnv
from .policy import DeployedPolicy

CENT = 0.005  # "to the cent": USD amounts agree to half a cent


@dataclass
class SessionFills:
    fills: pd.DataFrame  # time (int64 ns bar start), symbol, leg (open|close), qty, price, spread, impact, fees
    positions: dict[int, dict[str, float]]  # bar time -> {symbol: shares} after that bar's fills
    opening: float
    closing: float


@dataclass
class Reconciliation:
    table: pd.DataFrame
    paper: dict[str, SessionFills]
    backtest: dict[str, SessionFills]
    observations: dict[int, np.ndarray]

    @property
    def ok(self) -> bool:
        return bool(len(self.table)) and bool(self.table["ok"].all())

    def text(self) -> str:
        t = self.table.copy()
        cols = ["session", "opening_equity", "paper_pnl", "backtest_pnl", "pnl_diff", "paper_fills",
                "backtest_fills", "max_price_diff", "max_cost_diff", "positions_equal", "ok"]
        lines = [t[cols].to_string(index=False, float_format=lambda x: f"{x:,.4f}")]
        total_p, total_b = t["paper_pnl"].sum(), t["backtest_pnl"].sum()
        lines.append(f"total P&L: paper {total_p:,.2f} USD, backtest {total_b:,.2f} USD, "
                     f"difference {total_p - total_b:+.4f}; {int(t['ok'].sum())}/{len(t)} sessions agree to the cent")
        return "\n".join(lines)


def limits_of(policy: DeployedPolicy) -> PreTradeLimits:
    """The pre-trade limits recorded in the bundle."""
    raw = dict(policy.deployment["limits"])
    for k, v in raw.items():
        if isinstance(v, str):
            raw[k] = float(v)
    return PreTradeLimits(**raw)


def _day(session) -> str:
    return str(pd.Timestamp(session).date())


def backtest(policy: DeployedPolicy, frame: pd.DataFrame, universe: pd.DataFrame | None,
             opening: dict[str, float], limits: PreTradeLimits | None = None,
             record: dict | None = None) -> dict[str, SessionFills]:
    """The env's run of the bundle on ``opening``'s sessions (module docstring). ``record``: filled with
    {bar time: observation} of every decision."""
    cfg = policy.cfg
    limits = limits or limits_of(policy)
    sub = frame[frame["symbol"].isin(policy.symbols)].reset_index(drop=True)
    feats = compute_features(sub, cfg.features, calendar=cfg.data.calendar)
    scaler = None
    if policy.standardize:
        from ..features.scaler import Scaler

        scaler = Scaler.from_json((policy.path / "scaler.json").read_text())
    panel = build_panel(sub, feats, policy.symbols, universe=universe, market=cfg.market, tiers=cfg.data.tiers,
                        standardize=policy.standardize, clip=cfg.env.obs_clip, calendar=cfg.data.calendar,
                        scaler=scaler)
    net = policy.env_policy()
    out: dict[str, SessionFills] = {}
    for session, eq0 in opening.items():
        idx = panel.session_index([session])
        if not len(idx):
            raise ValueError(f"session {session} is not a usable session of the bars (env panel)")
        env_cfg = cfg.env.model_copy(update={"initial_cash": float(eq0), "episode_bars": None})
        env = PreTradeEnv(TradingEnv(panel, idx, env_cfg, cfg.market, lookback=policy.lookback,
                                     sampling="sequential"), limits)
        i = int(idx[0])
        times = panel.times[int(panel.starts[i]):int(panel.starts[i + 1])]

        def act(obs, info, _times=times):
            if record is not None:
                record[int(_times[int(env.sim.t[0])])] = obs.copy()
            return net(obs, info)

        res = run_sessions(act, env, [session])
        bar_of_step = res.steps["bar"].to_numpy()
        rows = []
        for r in res.trades.itertuples(index=False):
            rows.append((int(times[int(bar_of_step[r.step - 1])]), r.symbol, "open" if r.reason == "order" else "close",
                         r.qty, r.price, r.spread_cost, r.impact_cost, r.commission))
        fills = pd.DataFrame(rows, columns=["time", "symbol", "leg", "qty", "price", "spread", "impact", "fees"])
        positions: dict[int, dict[str, float]] = {}
        held: dict[str, float] = {}
        by_time = fills.groupby("time")
        for b in bar_of_step:
            t = int(times[int(b)])
            if t in by_time.groups:
                for f in by_time.get_group(t).itertuples(index=False):
                    held[f.symbol] = held.get(f.symbol, 0.0) + f.qty
            positions[t] = {s: q for s, q in held.items() if q != 0}
        closing = float(res.closing_equity().iloc[-1])
        out[session] = SessionFills(fills, positions, float(eq0), closing)
    return out


def paper_fills(journal: str | Path) -> dict[str, SessionFills]:
    """Fills, positions after every bar and opening/closing equity of each traded session of a journal."""
    con = sqlite3.connect(str(journal))
    try:
        pnl = pd.read_sql_query("SELECT ts, session, cash, equity, day_start_equity FROM pnl ORDER BY ts", con)
        fills = pd.read_sql_query(
            "SELECT f.ts AS time, f.symbol, o.kind, f.qty, f.price, f.spread_cost AS spread, f.impact_cost AS impact, "
            "f.fees FROM fills f JOIN orders o ON o.client_id = f.client_id WHERE f.qty != 0 ORDER BY f.ts, f.symbol",
            con)
        pos = pd.read_sql_query("SELECT ts, symbol, qty FROM positions ORDER BY ts, symbol", con)
        traded = {r[0] for r in con.execute("SELECT DISTINCT p.session FROM pnl p JOIN policy q ON q.ts = p.ts "
                                            "WHERE q.action IS NOT NULL")}
        kills = con.execute("SELECT p.session FROM pnl p WHERE p.killed = 1").fetchall()
    finally:
        con.close()
    traded |= {r[0] for r in kills}
    fills["leg"] = np.where(fills["kind"] == "close", "close", "open")
    fills = fills.drop(columns="kind")
    out: dict[str, SessionFills] = {}
    for session, g in pnl.groupby("session", sort=True):
        if int(session) not in traded:
            continue
        ts = set(g["ts"].tolist())
        f = fills[fills["time"].isin(ts)].reset_index(drop=True)
        held = {t: {} for t in g["ts"]}
        for r in pos[pos["ts"].isin(ts)].itertuples(index=False):
            if r.qty != 0:
                held[int(r.ts)][r.symbol] = float(r.qty)
        out[_day(int(session))] = SessionFills(f[["time", "symbol", "leg", "qty", "price", "spread", "impact", "fees"]],
                                               {int(t): v for t, v in held.items()},
                                               float(g["day_start_equity"].iloc[0]), float(g["equity"].iloc[-1]))
    return out


def compare(paper: dict[str, SessionFills], bt: dict[str, SessionFills]) -> pd.DataFrame:
    rows = []
    for s in sorted(paper):
        p, b = paper[s], bt.get(s)
        if b is None:
            rows.append({"session": s, "ok": False})
            continue
        key = ["time", "symbol", "leg"]
        m = p.fills.merge(b.fills, on=key, how="outer", suffixes=("_p", "_b"), indicator=True)
        both = m[m["_merge"] == "both"]
        same_set = len(both) == len(m)
        qty_ok = bool((both["qty_p"] == both["qty_b"]).all())
        dprice = float((both["price_p"] - both["price_b"]).abs().max()) if len(both) else 0.0
        dcost = float(max(((both[f"{c}_p"] - both[f"{c}_b"]).abs().max() for c in ("spread", "impact", "fees")),
                          default=0.0)) if len(both) else 0.0
        pos_ok = all(p.positions.get(t, {}) == b.positions.get(t, {}) for t in set(p.positions) | set(b.positions)
                     if t in b.positions)
        pp, bp = p.closing - p.opening, b.closing - b.opening
        ok = same_set and qty_ok and dprice == 0.0 and dcost <= CENT and pos_ok and abs(pp - bp) <= CENT
        rows.append({"session": s, "opening_equity": p.opening, "paper_pnl": pp, "backtest_pnl": bp,
                     "pnl_diff": pp - bp, "paper_fills": len(p.fills), "backtest_fills": len(b.fills),
                     "unmatched_fills": int(len(m) - len(both)), "quantities_equal": qty_ok,
                     "max_price_diff": dprice, "max_cost_diff": dcost, "positions_equal": pos_ok, "ok": ok})
    return pd.DataFrame(rows)


def reconcile(journal: str | Path, policy: DeployedPolicy, frame: pd.DataFrame,
              universe: pd.DataFrame | None = None, limits: PreTradeLimits | None = None) -> Reconciliation:
    """The paper run in ``journal`` against the backtest of ``policy`` on ``frame`` (module docstring).
    ``policy`` must be a freshly loaded copy of the bundle (its network is all the backtest uses)."""
    paper = paper_fills(journal)
    obs: dict[int, np.ndarray] = {}
    bt = backtest(policy, frame, universe, {s: f.opening for s, f in paper.items()}, limits, record=obs)
    return Reconciliation(compare(paper, bt), paper, bt, obs)


def to_json(rec: Reconciliation) -> str:
    return json.dumps({"ok": rec.ok, "sessions": rec.table.to_dict(orient="records")}, default=float, indent=1)
