"""``RiskCallback``: periodic, deterministic validation of the agent with risk metrics (an SB3 callback).

Every ``eval_freq`` environment steps it backtests the current greedy policy on validation sessions
(``env.rollout.run_sessions``: the same env and market model as training), computes the ``RiskTracker`` metrics
and the λ-weighted composite, logs them (``risk/*``, ``eval/*`` in SB3's logger and to every hook), keeps
the best model by the risk-adjusted objective, and stops training after ``patience`` consecutive
evaluations whose composite is above the (static or adaptive) threshold (``risk.composite.EarlyStopRule``).

Risk-adjusted objective (what tuning maximises and what "best model" means)::

    objective = mean daily net return in bps over the validation sessions
                - objective_risk_bps * composite

Each session starts from the initial cash, so a day's return is ``equity_close / initial_cash - 1``. With
``objective_risk_bps = 10`` a composite of 1 (every risk at its limit) costs 10 bps a day. The per-session
net P&L of the latest evaluation (bps) is ``callback.last_daily_bps``: tuning stores it per trial, the
sessions x trials matrix the deflated Sharpe ratio and PBO need (``pipeline/trial.py``).

Between evaluations ``_on_step`` does one integer comparison, so the per-step cost is negligible; the
evaluation's own cost is measured in ``benchmarks/callback_overhead.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback

from ..config import RiskConfig
from ..env.rollout import BatchGreedy, run_sessions
from .composite import EarlyStopRule, RiskComposite
from .metrics import RiskTracker

OBJECTIVE_RISK_BPS = 10.0

EvalHook = Callable[["RiskCallback", dict], None]  # (callback, metrics): .model, .num_timesteps


def pick_sessions(all_sessions: Sequence[str], n: int) -> list[str]:
    """``n`` sessions spread evenly over the list (all of them when ``n >= len``), deterministic."""
    all_sessions = list(all_sessions)
    if n >= len(all_sessions):
        return all_sessions
    idx = np.unique(np.linspace(0, len(all_sessions) - 1, n).round().astype(int))
    return [all_sessions[i] for i in idx]


def validation_rollout(policy, env, sessions: Sequence[str], risk: RiskConfig,
                       objective_risk_bps: float = OBJECTIVE_RISK_BPS,
                       objective_weights=None) -> tuple[dict[str, float], pd.Series]:
    """Roll ``policy`` over ``sessions``: (the metrics, composite and objective as one flat dict, the daily
    net P&L in bps of the initial cash per session, indexed by session)."""
    res = run_sessions(policy, env, sessions, RiskTracker(risk.ulcer_window))
    daily = res.daily_returns()
    composite = RiskComposite(risk)
    out = {f"risk/{k}": float(v) for k, v in res.risk.items()}
    for k, v in composite.report(res.risk).items():  # normalised components: risk_norm/<component>
        out[k if k == "risk/composite" else "risk_norm/" + k.split("/", 1)[1]] = float(v)
    mean_bps = float(np.mean(daily) * 1e4) if len(daily) else 0.0
    out["eval/mean_daily_return_bps"] = mean_bps
    # the one Sharpe convention (evaluate/sharpe.py): NaN, never 0 or inf, when the P&L has no variance
    varies = len(daily) > 1 and float(np.max(daily)) > float(np.min(daily))
    out["eval/sharpe"] = float(np.mean(daily) / np.std(daily, ddof=1) * math.sqrt(252)) if varies else math.nan
    out["eval/traded_notional"] = float(res.steps["traded_notional"].sum())
    out["eval/sessions"] = float(len(daily))
    objective_composite = out["risk/composite"]
    if objective_weights is not None and objective_weights != risk.weights:
        objective_composite = RiskComposite(risk.model_copy(update={"weights": objective_weights})).score(res.risk)
    out["eval/objective_composite"] = float(objective_composite)
    out["eval/objective"] = mean_bps - objective_risk_bps * objective_composite
    return out, pd.Series(1e4 * daily, index=pd.Index(res.sessions, name="session"), name="daily_bps")


def evaluate_policy_risk(policy, env, sessions: Sequence[str], risk: RiskConfig,
                         objective_risk_bps: float = OBJECTIVE_RISK_BPS, objective_weights=None) -> dict[str, float]:
    """Roll ``policy`` over ``sessions``; the metrics, composite and objective as one flat dict."""
    return validation_rollout(policy, env, sessions, risk, objective_risk_bps, objective_weights)[0]


class RiskCallback(BaseCallback):
    def __init__(self, eval_env, risk: RiskConfig, *, eval_freq: int | None = None,
                 n_sessions: int | None = None, best_model_path: str | Path | None = None,
                 hooks: Sequence[EvalHook] = (), objective_risk_bps: float = OBJECTIVE_RISK_BPS,
                 objective_weights=None, verbose: int = 0, save_model=None):
        super().__init__(verbose)
        self.eval_env = eval_env
        self.risk = risk
        self.eval_freq = int(eval_freq or risk.eval_freq)
        self.sessions = pick_sessions(eval_env.unwrapped.session_dates(), n_sessions or risk.eval_episodes)
        self.best_model_path = Path(best_model_path) if best_model_path else None
        self.save_model = save_model or (lambda model, path: model.save(path))  # (model, path); agents/export.py
        self.hooks = list(hooks)
        self.objective_risk_bps = objective_risk_bps
        self.objective_weights = objective_weights
        self.rule = EarlyStopRule.from_config(risk)
        self.history: list[dict] = []
        self.best_objective = -math.inf
        self.best_step: int | None = None
        self.stopped_early = False
        self.eval_seconds = 0.0
        self.last_daily_bps: pd.Series | None = None  # per-session net bps of the latest evaluation
        self._next_eval = self.eval_freq

    def _policy(self):
        model = self.model
        return BatchGreedy(lambda obs: model.predict(obs, deterministic=True)[0])  # sessions in lockstep

    def evaluate(self, final: bool = False) -> dict[str, float]:
        """One validation evaluation. ``final``: the judgement of the last policy after training ended,
        which neither updates the stop rule nor calls the hooks (no extra tuning report)."""
        t0 = time.perf_counter()
        m, self.last_daily_bps = validation_rollout(self._policy(), self.eval_env, self.sessions, self.risk,
                                                    self.objective_risk_bps, self.objective_weights)
        m["timesteps"] = float(self.num_timesteps)
        stop = False if final else self.rule.update(m["risk/composite"])
        m["risk/threshold"] = float(self.rule.history[-1][1]) if self.rule.history else float(self.risk.stop_threshold)
        m["risk/violations"] = float(self.rule.violations)
        if m["eval/objective"] > self.best_objective:
            self.best_objective = m["eval/objective"]
            self.best_step = self.num_timesteps
            if self.best_model_path is not None:
                self.save_model(self.model, self.best_model_path)
        m["eval/best_objective"] = self.best_objective
        self.history.append(m)
        for k, v in m.items():
            self.logger.record(k, v)
        self.eval_seconds += time.perf_counter() - t0
        for hook in ([] if final else self.hooks):  # a tuning hook may raise to prune the trial
            hook(self, m)
        if stop:
            self.stopped_early = True
            if self.verbose:
                print(f"RiskCallback: composite above threshold for {self.rule.patience} evaluations: stop")
        return m

    def _on_training_start(self) -> None:
        # a resumed model starts at its saved step count: evaluate on the same grid as a fresh run
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next_eval:
            return True
        self._next_eval += self.eval_freq
        self.evaluate()
        return not self.stopped_early
