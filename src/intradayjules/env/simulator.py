"""The trading simulator: N independent episodes of K symbols stepped together with numpy.

Both ``TradingEnv`` (N = 1) and ``SessionVecEnv`` (N = n_envs) run this one code path (the numba
``kernel.step_kernel``), and every fill goes through ``market.kernels.fill_one``, the code behind
``MarketModel``, so the single env, the vectorised env and the backtester cannot disagree. Timing of
one step (decision on bar t):

1. The agent sees bar t's close (observation row t) and picks an action.
2. Its order fills at bar t+1's **open** through the market model (cap, spread, impact, commission).
3. Equity is marked at bar t+1's close: ``step_pnl = equity(t+1) - equity(t)``, net of every cost.
4. The episode ends when bar t+1 is the session's last bar, or when the drawdown from the episode's
   peak equity reaches ``max_daily_drawdown``. Then every position is closed by a market-on-close
   order at bar t+1's **close** (the last price of the episode, never a price from later bars):
   half-spread + impact + commission, no participation cap (the closing cross fills in full). Its cost
   is part of the final step's ``step_pnl``.

Actions (targets in units of ``position_size * equity``, shares fixed when the target is set, from the
decision bar's close, rounded toward zero):
* single: ``Discrete(3)``: 0 short, 1 flat, 2 long.
* multi: ``Discrete(1 + 3K)``: 0 no-op; ``1 + 3k + j`` sets symbol k's target to j - 1 (short, flat,
  long). A change that would take gross target exposure above ``max_gross_exposure`` is refused
  (``info['limit_hit']``).
Membership (``env/membership.py``): a symbol that is not in the point-in-time universe on the session,
or whose exit (delisting) has taken effect, cannot be held: from the decision at its exit bar on, its
target is 0, an action asking for a non-flat target in it is refused (``info['refused']``, counted by
reason in ``info['refused_orders']``), and a position still held is closed in full at bar t+1's open
(never bar t's close) at ``open * (1 + exit return)``, with the market model's costs.
Repeating the current target places no new order. Unfilled shares (cap, zero volume) are dropped under
``market.unfilled = cancel``; under ``carry`` the remainder is resubmitted every bar until filled or the
target changes.
"""

from __future__ import annotations

import numpy as np

from ..config import EnvConfig
from ..data.tiers import TIER_CODE, TIERS
from ..market import MarketModel
from ..market.kernels import fill_one
from .episodes import Episode
from .kernel import (E_CARRY, E_CASH0, E_CASHB, E_DD, E_EXPOB, E_GROSS, E_MULTI, E_NACT, E_POSB, E_RSCALE,
                     E_SIZE, N_EPARAMS, N_ROWS, N_SCAL, R_CPRICE, R_FEES, R_FFEES, R_FILLED, R_FIMPACT, R_FLQ, R_FPART, R_FPRICE,
                     R_FSPREAD, R_IMPACT, R_NOTIONAL, R_ORDER, R_REFUSED, R_SPREAD, S_ADVP, S_BAR, S_BREACH, S_CASH, S_CT0,
                     S_CT1, S_CT2, S_DD, S_DONE, S_EQ0, S_EQ1, S_FEES, S_GROSS, S_IMPACT, S_LIMIT, S_NFILLS,
                     S_NOTIONAL, S_NT0, S_NT1, S_NT2, S_PART, S_REWARD, S_SECS, S_SPREAD, S_STALE_DEC,
                     S_STALE_SHARE, S_UNFILLED, S_NREF, REFUSE_REASONS, observe_kernel, step_observe_kernel)

INFO_LEVELS = ("full", "train", "minimal")
# the keys of a ``train`` info (values equal to the ``full`` info's): what learning reads
TRAIN_INFO_KEYS = ("equity", "step_pnl", "drawdown", "traded_notional", "traded_notional_by_tier", "costs",
                   "costs_by_tier", "participation", "adv_participation", "stale_decision", "secs_since_trade",
                   "n_fills", "bar", "session", "tiers", "end_reason")
assert TIERS == ("liquid", "mid", "illiquid")  # the S_NT*/S_CT* columns and the info dicts follow this order

POS_BOUND = 5.0  # |position value / equity| bound in the observation
CASH_BOUND = 10.0  # |cash / equity| bound
EXPO_BOUND = 10.0  # gross exposure bound


class Simulator:
    def __init__(self, n: int, n_symbols: int, n_feat_obs: int, max_bars: int, model: MarketModel,
                 cfg: EnvConfig, mode: str):
        self.n, self.k = n, n_symbols
        self.model, self.cfg, self.mode = model, cfg, mode
        self.multi = mode == "multi"
        self.carry = model.cfg.unfilled == "carry"
        self.n_actions = 1 + 3 * n_symbols if self.multi else 3
        self.obs_dim = n_feat_obs + n_symbols + 3
        N, K, T = n, n_symbols, max_bars
        # packed state (kernel.py); the named attributes below are views into it
        self._ist = np.zeros((3, N), np.int64)
        self.t, self.offset, self.n_bars = self._ist  # bar index, first session bar of the episode, bars
        self._fbars = np.zeros((4, N, T, K))
        self.open, self.close, self.volume, self.secs = self._fbars
        self.open[:] = 1.0
        self.close[:] = 1.0
        self.stale = np.zeros((N, T, K), bool)
        self.tod = np.zeros((N, T), np.float32)
        self.feat = np.zeros((N, T, n_feat_obs), np.float32)
        self._sp = np.zeros((5, N, K))
        self.hs, self.sigma, self.adv, self.exit_bar, self.exit_ret = self._sp
        self.adv[:] = 1.0
        self.exit_bar[:] = np.inf  # tradable all session (kernel.py: exit bar, exit return)
        self.tcode = np.zeros((N, K), np.int64)  # tier code per symbol (data.tiers.TIER_CODE)
        self._pt = np.zeros((2, N, K))
        self.pos, self.target = self._pt
        self.unit = np.zeros((N, K), np.int64)
        self._cp = np.zeros((2, N))
        self.cash, self.peak = self._cp
        self.finished = np.ones(N, bool)  # a slot must be loaded before it steps
        self.episodes: list[Episode | None] = [None] * N
        self.last_out = np.zeros((N_ROWS, N, K))
        self._eparams = np.zeros(N_EPARAMS)
        self._eparams[[E_SIZE, E_GROSS, E_DD, E_MULTI, E_CARRY, E_RSCALE, E_CASH0, E_NACT, E_POSB, E_CASHB,
                       E_EXPOB]] = [cfg.position_size, cfg.max_gross_exposure, cfg.max_daily_drawdown,
                                    1.0 if self.multi else 0.0, 1.0 if self.carry else 0.0, cfg.reward_scale,
                                    cfg.initial_cash, self.n_actions, POS_BOUND, CASH_BOUND, EXPO_BOUND]
        self._scal = np.zeros((N, N_SCAL))
        self.init_cash = float(cfg.initial_cash)

    def order_cost(self, i: int, k: int, qty: float, price: float) -> float:
        """USD cost of filling ``qty`` of symbol ``k`` in full at ``price`` in slot ``i``'s session
        (``market.kernels.fill_one`` with the slot's half-spread, daily vol and ADV; no cap)."""
        _, spread, impact, fees = fill_one(qty, price, 0.0, float(self.hs[i, k]), float(self.sigma[i, k]),
                                           float(self.adv[i, k]), True, self.model.params)
        return spread + impact + fees

    # ------------------------------------------------------------------------------------------ slots
    def load(self, i: int, ep: Episode, start: int = 0, max_steps: int | None = None,
             exits: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Put episode ``ep`` in slot i: bars ``start`` .. ``start + max_steps`` of the session (all
        remaining bars when ``max_steps`` is None). ``exits``: the session's (exit bar, exit return) per
        symbol (``Membership.exits``; exit bars count from the session's first bar); None: all tradable."""
        end = ep.n_bars if max_steps is None else min(ep.n_bars, start + max_steps + 1)
        T = end - start
        if T < 2:
            raise ValueError(f"session {ep.session}: {T} bar(s) from bar {start}, an episode needs at least 2")
        sl = slice(start, end)
        self.open[i, :T] = ep.open[sl]
        self.close[i, :T] = ep.close[sl]
        self.volume[i, :T] = ep.volume[sl]
        self.stale[i, :T] = ep.stale[sl]
        self.secs[i, :T] = ep.secs[sl]
        self.tod[i, :T] = ep.tod[sl]
        self.feat[i, :T] = ep.obs_feat[sl]
        self.offset[i] = start
        self.hs[i], self.sigma[i], self.adv[i] = ep.half_spread_bps, ep.sigma_daily, ep.adv_usd
        if exits is None:
            self.exit_bar[i], self.exit_ret[i] = np.inf, 0.0
        else:
            self.exit_bar[i] = np.maximum(np.asarray(exits[0], dtype=np.float64) - start, 0.0)
            self.exit_ret[i] = exits[1]
        self.n_bars[i] = T
        self.t[i] = 0
        self.pos[i] = 0.0
        self.target[i] = 0.0
        self.unit[i] = 0
        self.cash[i] = self.init_cash
        self.peak[i] = self.init_cash
        self.finished[i] = False
        self.episodes[i] = ep
        self.tcode[i] = [TIER_CODE[t] for t in ep.tiers]

    def observe(self) -> np.ndarray:
        """Observations (N, obs_dim) float32: feature window, position values / equity (K), gross
        exposure, cash / equity, fraction of the session elapsed (bounds: ``bounds``)."""
        out = np.empty((self.n, self.obs_dim), np.float32)
        observe_kernel(self.t, self.feat, self.tod, self.close, self.pos, self.cash, POS_BOUND, CASH_BOUND,
                       EXPO_BOUND, out)
        return out

    def bounds(self, clip: float) -> tuple[np.ndarray, np.ndarray]:
        nf = self.feat.shape[2]
        K = self.k
        low = np.concatenate([np.full(nf, -clip), np.full(K, -POS_BOUND), [0.0, -CASH_BOUND, 0.0]])
        high = np.concatenate([np.full(nf, clip), np.full(K, POS_BOUND), [EXPO_BOUND, CASH_BOUND, 1.0]])
        return low.astype(np.float32), high.astype(np.float32)

    # ------------------------------------------------------------------------------------------- step
    def advance(self, actions: np.ndarray) -> np.ndarray:
        """Advance every slot one bar and return the observations after it (N, obs_dim) float32, in one
        numba call. This step's rewards are ``self.rewards()``, its terminations ``self.finished``, and
        its per-symbol detail stays in ``self.last_out`` until the next step (read it with ``infos``)."""
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if actions.shape[0] != self.n:
            raise ValueError(f"expected {self.n} action(s), got {actions.shape[0]}")
        return self._advance(actions)

    def _advance(self, actions: np.ndarray) -> np.ndarray:
        """``advance`` for a C-contiguous int64 array of shape (N,) (the caller guarantees it)."""
        out = np.empty((N_ROWS, self.n, self.k))  # fresh each step: infos hand out views of it
        obs = np.empty((self.n, self.obs_dim), np.float32)
        status = step_observe_kernel(actions, self._ist, self._fbars, self.stale, self._sp, self.tcode, self._pt,
                                     self.unit, self._cp, self.finished, self._eparams, self.model.params, out,
                                     self._scal, self.feat, self.tod, obs)
        if status == 1:
            raise ValueError(f"actions must be in [0, {self.n_actions}), got {actions.tolist()}")
        if status == 2:
            raise RuntimeError("step() after the episode ended: call reset()")
        self.last_out = out
        return obs

    def rewards(self) -> np.ndarray:
        """The last step's rewards (N,) float64 (a copy)."""
        return self._scal[:, S_REWARD].copy()

    def step(self, actions: np.ndarray, info: str = "full"):
        """Advance every slot one bar. Returns ``(reward (N,), terminated (N,), infos list)``; the
        observations after the step are ``observe()``. ``info``: ``full`` or ``train`` (``infos``)."""
        self.advance(actions)
        return self.rewards(), self.finished.copy(), self.infos(info)

    def infos(self, level: str = "full") -> list[dict]:
        """The last step's info dicts, one per slot: ``full`` (the contract in docs/dev/contracts.md),
        ``train`` (``TRAIN_INFO_KEYS``, the same values: what reward shaping, the risk tracker and SB3
        read while learning; built in about a third of the time) or ``minimal`` (an empty dict, and the
        ``train`` info on the step that ends an episode; any step's detail stays available through
        ``infos("train")``/``infos("full")`` until the next step)."""
        if level == "train":
            return self._train_infos(self.last_out)
        if level == "minimal":
            return self._train_infos(self.last_out, only_done=True)
        if level == "full":
            return self._infos(self.last_out)
        raise ValueError(f"info level must be one of {INFO_LEVELS}, got {level!r}")

    def _train_infos(self, out: np.ndarray, only_done: bool = False) -> list[dict]:
        if only_done and not self.finished.any():
            return [{} for _ in range(self.n)]
        scal = self._scal.tolist()
        infos = []
        for i in range(self.n):
            if only_done and not self.finished[i]:
                infos.append({})
                continue
            ep = self.episodes[i]
            s = scal[i]
            e = s[S_EQ1]
            infos.append({
                "equity": e,
                "step_pnl": e - s[S_EQ0],
                "drawdown": s[S_DD],
                "traded_notional": s[S_NOTIONAL],
                "traded_notional_by_tier": {"liquid": s[S_NT0], "mid": s[S_NT1], "illiquid": s[S_NT2]},
                "costs": {"spread": s[S_SPREAD], "impact": s[S_IMPACT], "commission": s[S_FEES]},
                "costs_by_tier": {"liquid": s[S_CT0], "mid": s[S_CT1], "illiquid": s[S_CT2]},
                "participation": s[S_PART],
                "adv_participation": s[S_ADVP],
                "stale_decision": s[S_STALE_DEC] > 0.5,
                "secs_since_trade": s[S_SECS],
                "n_fills": int(s[S_NFILLS]),
                "bar": int(s[S_BAR]),
                "session": ep.session,
                "tiers": ep.tiers,
                "end_reason": _end_reason(s[S_BREACH] > 0.5, int(s[S_BAR]), ep.n_bars) if s[S_DONE] > 0.5 else None,
            })
        return infos

    def _infos(self, out: np.ndarray) -> list[dict]:
        scal = self._scal.tolist()
        notional = out[R_NOTIONAL].tolist()
        infos = []
        for i in range(self.n):
            ep = self.episodes[i]
            s = scal[i]
            nrow = notional[i]
            e = s[S_EQ1]
            done = s[S_DONE] > 0.5
            bar = int(s[S_BAR])
            infos.append({
                "equity": e,
                "cash": s[S_CASH],
                "positions": self.pos[i].copy(),
                "exposure": s[S_GROSS] / e if e > 0 else float("inf"),
                "drawdown": s[S_DD],
                "step_pnl": e - s[S_EQ0],
                "traded_notional": s[S_NOTIONAL],
                "traded_notional_by_symbol": dict(zip(ep.symbols, nrow)),
                "traded_notional_by_tier": {"liquid": s[S_NT0], "mid": s[S_NT1], "illiquid": s[S_NT2]},
                "costs": {"spread": s[S_SPREAD], "impact": s[S_IMPACT], "commission": s[S_FEES]},
                "costs_by_tier": {"liquid": s[S_CT0], "mid": s[S_CT1], "illiquid": s[S_CT2]},
                "participation": s[S_PART],
                "adv_participation": s[S_ADVP],
                "unfilled_notional": s[S_UNFILLED],
                "stale_decision": s[S_STALE_DEC] > 0.5,
                "stale_share": s[S_STALE_SHARE],
                "secs_since_trade": s[S_SECS],
                "n_fills": int(s[S_NFILLS]),
                "session": ep.session,
                "tiers": ep.tiers,
                "fill_qty": out[R_FILLED, i],
                "fill_price": out[R_FPRICE, i],
                "flatten_qty": out[R_FLQ, i],
                "flatten_price": out[R_CPRICE, i],
                "fill_participation": out[R_FPART, i],
                "symbol_costs": {
                    "fill": {"spread": out[R_SPREAD, i], "impact": out[R_IMPACT, i], "commission": out[R_FEES, i]},
                    "flatten": {"spread": out[R_FSPREAD, i], "impact": out[R_FIMPACT, i],
                                "commission": out[R_FFEES, i]},
                },
                "order_qty": out[R_ORDER, i],
                "limit_hit": s[S_LIMIT] > 0.5,
                "refused": _refused(out[R_REFUSED, i], ep.symbols) if s[S_NREF] > 0 else {},
                "refused_orders": _refused_counts(out[R_REFUSED, i]) if s[S_NREF] > 0 else {},
                "bar": bar,
                "end_reason": _end_reason(s[S_BREACH] > 0.5, bar, ep.n_bars) if done else None,
            })
        return infos


def _refused(codes: np.ndarray, symbols) -> dict:
    """Symbol -> reason for the orders the membership rule refused this step."""
    return {symbols[k]: REFUSE_REASONS[int(c)] for k, c in enumerate(codes) if c > 0}


def _refused_counts(codes: np.ndarray) -> dict:
    """Reason -> number of refused orders this step."""
    out: dict[str, int] = {}
    for c in codes:
        if c > 0:
            r = REFUSE_REASONS[int(c)]
            out[r] = out.get(r, 0) + 1
    return out


def _end_reason(breach: bool, bar: int, n_bars: int) -> str:
    if breach:
        return "drawdown"
    return "session_close" if bar >= n_bars - 1 else "episode_end"
