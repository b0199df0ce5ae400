"""The one rollout: run a policy over sessions of a ``TradingEnv`` and record what happened.

Everything that runs a policy over sessions goes through :func:`run_sessions`: evaluation and reports
(``evaluate/``), the risk callback's validation (``risk/callback.py``), the ``env rollout`` command and
tuning objectives. One episode per session; each starts from ``env.initial_cash`` and ends flat at the
close, so a day's net P&L is ``equity_close - initial_cash``.

A policy is any callable ``policy(obs, info) -> action`` (``Policy``): ``obs`` is the observation the
agent sees, ``info`` the info of the previous step (the reset info at the first bar). The records:

* ``steps``: one row per step (session, bar, equity, step P&L, traded/unfilled notional, costs by kind,
  traded notional by tier, drawdown, exposure, participation, stale decision, action);
* ``trades``: one row per fill (order fills and the end-of-session flatten), with the time of the price:
  an order fills at its bar's open (``timestamp`` = the bar's start), the closing flatten at its bar's
  close (the bar's start + the bar length); ``reason`` is ``order``, ``session_close`` or ``stop`` (the
  drawdown stop's flatten);
* ``orders``: one row per order sent (what the agent asked for, filled or not);
* ``episodes``: one row per episode: session, first bar, the bars the session has in the data
  (``session_bars``) and in the exchange calendar (``expected_bars``, 0 when unknown), ``partial``
  (fewer bars than the calendar: statistics exclude these sessions by default, ``evaluate.records``),
  end reason;
* ``risk``: the ``RiskTracker`` snapshot (a tracker is passed in; none is created here).

``episode_table(result)`` summarises each episode (the ``env rollout`` table); ``rollout(env, "random")``
runs the built-in test policies (``random``, ``flat``, ``long``) on sampled sessions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard

import numpy as np
import pandas as pd

from ..data.tiers import TIERS


LOCKSTEP_SLOTS = 32  # sessions stepped together at most (a slot holds its session's feature windows)


class Policy(Protocol):
    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int: ...


class StepTracker(Protocol):
    """What the rollout needs of a risk tracker (``risk.metrics.RiskTracker``)."""

    def start_episode(self, equity: float) -> None: ...

    def update(self, info: dict[str, Any]) -> Any: ...

    def snapshot(self) -> dict[str, float]: ...


STEP_COLUMNS = ["session", "bar", "equity", "step_pnl", "traded_notional", "unfilled_notional", "spread_cost",
                "impact_cost", "commission", *[f"notional_{t}" for t in TIERS], "drawdown", "exposure",
                "participation", "stale_decision", "action"]
TRADE_COLUMNS = ["step", "session", "timestamp", "symbol", "qty", "price", "spread_cost", "impact_cost",
                 "commission", "tier", "participation", "reason"]
ORDER_COLUMNS = ["step", "session", "symbol", "qty", "price", "tier"]
EPISODE_COLUMNS = ["session", "start_bar", "session_bars", "expected_bars", "partial", "end_reason"]


@dataclass
class RolloutResult:
    initial_equity: float
    steps: pd.DataFrame
    trades: pd.DataFrame
    orders: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ORDER_COLUMNS))
    risk: dict[str, float] = field(default_factory=dict)
    end_reasons: dict[str, str] = field(default_factory=dict)
    episodes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EPISODE_COLUMNS))

    def partial_sessions(self) -> pd.Series:
        """``partial`` flag per session (bool Series indexed by session; all False when unknown)."""
        if len(self.episodes):
            return self.episodes.set_index("session")["partial"].astype(bool)
        return pd.Series(False, index=pd.Index(self.sessions, name="session"), dtype=bool)

    @property
    def sessions(self) -> list[str]:
        return list(dict.fromkeys(self.steps["session"])) if len(self.steps) else []

    def equity_curve(self) -> pd.Series:
        return pd.Series(self.steps["equity"].to_numpy(), index=self.steps["session"].to_numpy())

    def closing_equity(self) -> pd.Series:
        """Equity at each session's close, indexed by session (date order of the rollout)."""
        return self.steps.groupby("session", sort=False)["equity"].last()

    def daily_returns(self) -> np.ndarray:
        """``equity_close / initial_equity - 1`` per session (each session starts from the initial cash)."""
        return np.asarray(self.closing_equity().to_numpy() / self.initial_equity - 1.0, dtype=float)


def run_sessions(policy: Policy, env: Any, sessions: Iterable[str] | None = None,
                 tracker: StepTracker | None = None, *, episodes: int | None = None,
                 seed: int | None = None) -> RolloutResult:
    """Run ``policy`` for one episode per session.

    ``sessions``: named sessions (``YYYY-MM-DD``), default every session of the env's split in date order;
    ``episodes``: instead, that many episodes drawn by the env's own session sampling (``reset(seed)``
    first). ``tracker`` receives every step's info (risk metrics); its snapshot is ``result.risk``.

    Named sessions of a bare ``TradingEnv`` and a policy with a ``batch`` method (``BatchPolicy``: the
    greedy policies of trained models) run in lockstep on one simulator slot per session (up to
    ``LOCKSTEP_SLOTS`` at a time), one batched policy call per bar (:func:`_lockstep`); the records (and
    the tracker's updates, in session order) are the same as one session after the other."""
    inner = env.unwrapped
    if episodes is None and sessions is None:
        sessions = inner.session_dates()
    rec = _Recorder(inner)
    if episodes is None:
        names = list(sessions)  # type: ignore[arg-type]
        if _lockstep_ok(policy, env, names):
            for c in range(0, len(names), LOCKSTEP_SLOTS):
                for ep, reset_info, steps in _lockstep(policy, inner, names[c:c + LOCKSTEP_SLOTS]):
                    rec.episode(reset_info, ep, tracker)
                    for k, (action, info) in enumerate(steps):
                        rec.step(action, info, tracker, k == len(steps) - 1)
            return rec.result(tracker)
        plan: list[dict[str, Any] | None] = [{"session": s} for s in names]
    else:
        plan = [None] * int(episodes)
    for e, options in enumerate(plan):
        obs, info = env.reset(seed=seed if (options is None and e == 0) else None, options=options)
        rec.episode(info, getattr(inner, "episode", None), tracker)
        done = False
        while not done:
            action = policy(obs, info)
            obs, _reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            rec.step(action, info, tracker, done)
    return rec.result(tracker)


class BatchPolicy(Policy, Protocol):
    """A policy that can also act on a batch of observations at once (the same function of each row)."""

    def batch(self, obs: np.ndarray) -> np.ndarray: ...


class BatchGreedy:
    """``policy(obs, info)`` and ``policy.batch(obs)`` from ``act_batch``: observations (n, d) -> actions (n,)
    (e.g. an SB3 model's greedy ``predict``). Batched and single calls run the same network; on a batch the
    matrix products may round differently in the last bit, so an exact tie could break the other way."""

    def __init__(self, act_batch: Any):
        self.act_batch = act_batch

    def __call__(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> int:
        return int(np.asarray(self.act_batch(obs[None, :])).reshape(-1)[0])

    def batch(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.act_batch(obs)).reshape(-1)


def _lockstep_ok(policy: Any, env: Any, sessions: list[str]) -> TypeGuard[BatchPolicy]:
    from .trading_env import TradingEnv

    inner = env.unwrapped
    return (len(sessions) > 1 and callable(getattr(policy, "batch", None)) and env is inner
            and type(inner) is TradingEnv  # wrappers could change observations, actions or rewards
            and (inner.cfg.episode_bars is None or inner.picker.sampling != "random"))  # starts drawn by the env


def _lockstep(policy: BatchPolicy, env: Any, sessions: list[str]
              ) -> Iterator[tuple[Any, dict[str, Any], list[tuple[int, dict[str, Any]]]]]:
    """Each session in its own slot of one ``Simulator``, loaded as ``env.reset(options={"session": s})``
    would; every bar one ``policy.batch`` call for all slots. Yields per session, in the given order,
    ``(episode, reset info, [(action, full info), ...])``. A finished slot is reloaded (its later
    steps are discarded) so the kernel never steps an ended episode."""
    from .simulator import Simulator
    from .trading_env import episode_start, reset_info, session_lookup

    n, K = len(sessions), len(env.symbols)
    sim = Simulator(n, K, env.sim.obs_dim - K - 3, env.panel.max_bars, env.model, env.cfg, env.cfg.mode)
    loads = []
    for i, s in enumerate(sessions):
        j = session_lookup(env.panel, env.picker.indices, s)
        ep = env.panel.episode(j, env.lookback)
        start = episode_start(ep, env.cfg.episode_bars, env.picker.sampling, env.np_random, {"session": s})
        exits = env.membership.exits(j) if env.membership is not None else None
        loads.append((ep, start, exits))
        sim.load(i, ep, start, env.cfg.episode_bars, exits)
    heads = [(ep, reset_info(ep, env.cfg, int(sim.n_bars[i]), start)) for i, (ep, start, _) in enumerate(loads)]
    steps: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in range(n)]
    active = np.ones(n, bool)
    obs = sim.observe()
    while active.any():
        actions = np.ascontiguousarray(policy.batch(obs), dtype=np.int64).reshape(n)
        obs = sim.advance(actions)
        infos = sim.infos("full")
        for a in np.flatnonzero(active).tolist():
            steps[a].append((int(actions[a]), infos[a]))
        ended = np.flatnonzero(sim.finished).tolist()
        active[ended] = False
        for e in ended:
            ep, start, exits = loads[e]
            sim.load(e, ep, start, env.cfg.episode_bars, exits)
        if ended:
            obs = sim.observe()
    for (ep, head), rows in zip(heads, steps):
        yield ep, head, rows


class _Recorder:
    """The rollout's records (``RolloutResult``), filled one episode and one step at a time."""

    def __init__(self, inner: Any):
        self.initial_cash = float(inner.cfg.initial_cash)
        self.symbols = list(inner.symbols)
        self.step_rows: list[tuple[Any, ...]] = []
        self.trade_rows: list[tuple[Any, ...]] = []
        self.order_rows: list[tuple[Any, ...]] = []
        self.episode_rows: list[list[Any]] = []
        self.end_reasons: dict[str, str] = {}
        self.step_no = 0

    def episode(self, info: dict[str, Any], ep: Any, tracker: StepTracker | None) -> None:
        self.session = info["session"]
        self.tiers = info.get("tiers")
        self.times = getattr(ep, "timestamps", None)
        self.bar_ns = np.timedelta64(int(getattr(ep, "bar_ns", 0)), "ns")
        self.episode_rows.append([self.session, int(info.get("start_bar", 0)), int(info.get("session_bars", 0)),
                                  int(info.get("expected_bars", 0)), bool(info.get("partial", False)), None])
        if tracker is not None:
            tracker.start_episode(self.initial_cash)

    def step(self, action: Any, info: dict[str, Any], tracker: StepTracker | None, done: bool) -> None:
        if tracker is not None:
            tracker.update(info)
        self.step_no += 1
        session, tiers, symbols = self.session, self.tiers, self.symbols
        c = info["costs"]
        by_tier = info["traded_notional_by_tier"]
        self.step_rows.append((session, info["bar"], info["equity"], info["step_pnl"], info["traded_notional"],
                               info["unfilled_notional"], c["spread"], c["impact"], c["commission"],
                               *[by_tier[t] for t in TIERS], info["drawdown"], info["exposure"],
                               info["participation"], bool(info["stale_decision"]), int(action)))
        bar = int(info["bar"])
        times = self.times
        when = (times[bar], times[bar] + self.bar_ns) if times is not None else (None, None)
        _collect_fills(self.trade_rows, info, self.step_no, session, symbols, tiers, when)
        oq = info["order_qty"]
        for k in np.flatnonzero(oq):
            self.order_rows.append((self.step_no, session, symbols[k], float(oq[k]), float(info["fill_price"][k]),
                                    tiers[k] if tiers is not None else None))
        if done:
            self.end_reasons[session] = info.get("end_reason") or "truncated"
            self.episode_rows[-1][-1] = self.end_reasons[session]

    def result(self, tracker: StepTracker | None) -> RolloutResult:
        trades = pd.DataFrame(self.trade_rows, columns=TRADE_COLUMNS)
        trades["timestamp"] = pd.to_datetime(trades["timestamp"], utc=True)
        return RolloutResult(self.initial_cash, pd.DataFrame(self.step_rows, columns=STEP_COLUMNS), trades,
                             pd.DataFrame(self.order_rows, columns=ORDER_COLUMNS),
                             tracker.snapshot() if tracker is not None else {}, self.end_reasons,
                             pd.DataFrame([tuple(r) for r in self.episode_rows], columns=EPISODE_COLUMNS))


def _collect_fills(rows: list[tuple[Any, ...]], info: dict[str, Any], step: int, session: str, symbols: list[str],
                   tiers: Any, when: tuple[Any, Any] = (None, None)) -> None:
    """Fills of one step: order fills at the bar's open (``when[0]``), the flatten at its close (``when[1]``)."""
    sc = info["symbol_costs"]
    for kind, ts in (("fill", when[0]), ("flatten", when[1])):
        qty = info[f"{kind}_qty"]
        if not np.any(qty):
            continue
        price = info[f"{kind}_price"]
        part = info.get(f"{kind}_participation")
        reason = "order" if kind == "fill" else ("stop" if info.get("end_reason") == "drawdown" else "session_close")
        for k in np.flatnonzero(qty):
            rows.append((step, session, ts, symbols[k], float(qty[k]), float(price[k]),
                         float(sc[kind]["spread"][k]), float(sc[kind]["impact"][k]),
                         float(sc[kind]["commission"][k]), tiers[k] if tiers is not None else None,
                         float(part[k]) if part is not None else np.nan, reason))


def episode_table(result: RolloutResult) -> pd.DataFrame:
    """One row per episode: session, steps, end_reason, pnl, return_bps, costs by kind (USD), traded
    notional (total and by tier), unfilled notional, max participation, max drawdown."""
    s = result.steps
    if not len(s):
        return pd.DataFrame()
    g = s.groupby("session", sort=False)
    out = pd.DataFrame({
        "steps": g.size(),
        "pnl": g["equity"].last() - result.initial_equity,
        "spread": g["spread_cost"].sum(), "impact": g["impact_cost"].sum(), "commission": g["commission"].sum(),
        "traded_notional": g["traded_notional"].sum(), "unfilled_notional": g["unfilled_notional"].sum(),
        **{f"notional_{t}": g[f"notional_{t}"].sum() for t in TIERS},
        "max_participation": g["participation"].max(), "max_drawdown": g["drawdown"].max()}).reset_index()
    out.insert(2, "end_reason", out["session"].map(result.end_reasons))
    out.insert(4, "return_bps", 1e4 * out["pnl"] / result.initial_equity)
    return out


NAMED_POLICIES = ("random", "flat", "long")


def named_policy(name: str, env: Any, seed: int = 0) -> Policy:
    """``random`` (uniform actions, seeded), ``flat`` (never trades), ``long`` (single: always long;
    multi: asks every symbol for a long target in turn, so the gross limit decides how many it gets)."""
    if name not in NAMED_POLICIES:
        raise ValueError(f"policy must be one of {NAMED_POLICIES} or a callable, got {name!r}")
    inner = env.unwrapped
    multi = inner.cfg.mode == "multi"
    k = len(inner.symbols)
    rng = np.random.default_rng(seed)
    step = {"n": 0}

    def act(obs: Any, info: dict[str, Any]) -> int:
        step["n"] += 1
        if name == "random":
            return int(rng.integers(inner.action_space.n))
        if name == "flat":
            return 0 if multi else 1
        return 1 + 3 * (step["n"] % k) + 2 if multi else 2

    return act


def rollout(env: Any, policy: str | Policy = "random", episodes: int = 1, seed: int = 0) -> pd.DataFrame:
    """``episodes`` sampled episodes of a test policy (or any ``policy(obs, info)``): ``episode_table``."""
    act = policy if callable(policy) else named_policy(policy, env, seed)
    return episode_table(run_sessions(act, env, episodes=episodes, seed=seed))
