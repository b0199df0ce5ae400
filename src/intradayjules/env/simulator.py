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
Repeating the current target places no new order. Unfilled shares (cap, zero volume) are dropped under
``market.unfilled = cancel``; under ``carry`` the remainder is resubmitted every bar until filled or the
target changes.
"""

from __future__ import annotations

import numpy as np

from ..config import EnvConfig
from ..data.tiers import TIERS
from ..market import MarketModel
from ..market.kernels import fill_one
from .episodes import Episode
from .kernel import (N_ROWS, N_SCAL, R_COST, R_CPRICE, R_FEES, R_FFEES, R_FILLED, R_FIMPACT, R_FLQ, R_FPART,
                     R_FPRICE, R_FSPREAD, R_IMPACT, R_NOTIONAL, R_ORDER, R_SPREAD, S_ADVP, S_BAR, S_BREACH,
                     S_CASH, S_DD, S_DONE, S_EQ0, S_EQ1, S_FEES, S_GROSS, S_IMPACT, S_LIMIT, S_NFILLS,
                     S_NOTIONAL, S_PART, S_REWARD, S_SECS, S_SPREAD, S_STALE_DEC, S_STALE_SHARE, S_UNFILLED,
                     observe_kernel, step_kernel)

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
        self.open = np.ones((N, T, K))
        self.close = np.ones((N, T, K))
        self.volume = np.zeros((N, T, K))
        self.stale = np.zeros((N, T, K), bool)
        self.secs = np.zeros((N, T, K))
        self.tod = np.zeros((N, T), np.float32)
        self.feat = np.zeros((N, T, n_feat_obs), np.float32)
        self.hs = np.zeros((N, K))
        self.sigma = np.zeros((N, K))
        self.adv = np.ones((N, K))
        self.n_bars = np.zeros(N, np.int64)
        self.offset = np.zeros(N, np.int64)  # first session bar of the episode
        self.t = np.zeros(N, np.int64)
        self.pos = np.zeros((N, K))
        self.target = np.zeros((N, K))
        self.unit = np.zeros((N, K), np.int64)
        self.cash = np.zeros(N)
        self.peak = np.zeros(N)
        self.finished = np.ones(N, bool)  # a slot must be loaded before it steps
        self.episodes: list[Episode | None] = [None] * N
        self._tier_ix: list[list] = [[] for _ in range(N)]
        self._eparams = np.array([cfg.position_size, cfg.max_gross_exposure, cfg.max_daily_drawdown,
                                  1.0 if self.multi else 0.0, 1.0 if self.carry else 0.0, cfg.reward_scale,
                                  cfg.initial_cash, self.n_actions])
        self._scal = np.zeros((N, N_SCAL))
        self._ar = np.arange(N)
        self._sym_ix = np.arange(K)
        self.init_cash = float(cfg.initial_cash)

    def order_cost(self, i: int, k: int, qty: float, price: float) -> float:
        """USD cost of filling ``qty`` of symbol ``k`` in full at ``price`` in slot ``i``'s session
        (``market.kernels.fill_one`` with the slot's half-spread, daily vol and ADV; no cap)."""
        _, spread, impact, fees = fill_one(qty, price, 0.0, float(self.hs[i, k]), float(self.sigma[i, k]),
                                           float(self.adv[i, k]), True, self.model.params)
        return spread + impact + fees

    # ------------------------------------------------------------------------------------------ slots
    def load(self, i: int, ep: Episode, start: int = 0, max_steps: int | None = None) -> None:
        """Put episode ``ep`` in slot i: bars ``start`` .. ``start + max_steps`` of the session (all
        remaining bars when ``max_steps`` is None)."""
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
        self.n_bars[i] = T
        self.t[i] = 0
        self.pos[i] = 0.0
        self.target[i] = 0.0
        self.unit[i] = 0
        self.cash[i] = self.init_cash
        self.peak[i] = self.init_cash
        self.finished[i] = False
        self.episodes[i] = ep
        self._tier_ix[i] = [(name, [k for k, t in enumerate(ep.tiers) if t == name]) for name in TIERS]

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
    def step(self, actions: np.ndarray):
        """Advance every slot one bar. Returns ``(reward (N,), terminated (N,), infos list)``."""
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if actions.shape[0] != self.n:
            raise ValueError(f"expected {self.n} action(s), got {actions.shape[0]}")
        out = np.empty((N_ROWS, self.n, self.k))  # fresh each step: infos hand out views of it
        scal = self._scal
        status = step_kernel(actions, self.t, self.offset, self.n_bars, self.open, self.close, self.volume,
                             self.stale, self.secs, self.hs, self.sigma, self.adv, self.pos, self.target,
                             self.unit, self.cash, self.peak, self.finished, self._eparams, self.model.params,
                             out, scal)
        if status == 1:
            raise ValueError(f"actions must be in [0, {self.n_actions}), got {actions.tolist()}")
        if status == 2:
            raise RuntimeError("step() after the episode ended: call reset()")
        return scal[:, S_REWARD].copy(), self.finished.copy(), self._infos(out)

    def _infos(self, out: np.ndarray) -> list[dict]:
        scal = self._scal.tolist()
        notional = out[R_NOTIONAL].tolist()
        cost = out[R_COST].tolist()
        infos = []
        for i in range(self.n):
            ep = self.episodes[i]
            s = scal[i]
            nrow, crow = notional[i], cost[i]
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
                "traded_notional_by_tier": {name: sum([nrow[k] for k in ix]) for name, ix in self._tier_ix[i]},
                "costs": {"spread": s[S_SPREAD], "impact": s[S_IMPACT], "commission": s[S_FEES]},
                "costs_by_tier": {name: sum([crow[k] for k in ix]) for name, ix in self._tier_ix[i]},
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
                "bar": bar,
                "end_reason": _end_reason(s[S_BREACH] > 0.5, bar, ep.n_bars) if done else None,
            })
        return infos


def _end_reason(breach: bool, bar: int, n_bars: int) -> str:
    if breach:
        return "drawdown"
    return "session_close" if bar >= n_bars - 1 else "episode_end"
