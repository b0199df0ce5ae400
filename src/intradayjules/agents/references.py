"""Reference policies: what a trained model must beat, run on the same sessions, symbols and market model.

Every reference is a ``policy(obs, info) -> action`` (``env.rollout.Policy``), built for one env by
:func:`reference_policy` and run by the one rollout (``env.rollout.run_sessions``), exactly like a trained
model, so it meets the same fills, costs, participation cap, gross-exposure limit, drawdown stop and
closing flatten.

* ``flat``: never trades (multi: no-op; single: target flat). Its daily P&L is 0 on every session.
* ``buy_hold``: long every symbol from the first bar, flat at the close (the env flattens every session).
* ``buy_hold_liquid``: the same for the symbols in the ``liquid`` tier of the session (tiers are known
  before the session: ``data.tiers``, from previous sessions' ADV); flat in the others.
* ``random``: a uniform action of the action space at every step, from one generator seeded with ``seed``
  (one stream over the whole evaluation, so the same sessions give the same trades).
* ``momentum``: target ``sign(r)`` in each symbol, ``r`` the log return over the last 12 bars up to the
  decision bar's close (parameters ``feature = "logret_12"``, any return feature of the env, and
  ``threshold = 0``: flat when ``abs(r) <= threshold``). Decided on bar t's close, filled at bar t+1's
  open: no look-ahead.
* ``reversal``: target ``-sign(r)``: the opposite of ``momentum``, same parameters.

**Where the 12-bar return comes from.** From the observation, exactly what the model sees: the last row of
the feature window holds the standardised feature ``z = (r - mean) / std`` (``features.scaler.Scaler``, per
symbol, fitted on the training sessions), which is decoded as ``r = z * std + mean`` with the env's own
scaler (``env.panel.scaler``; raw features when ``env.standardize`` is off). Two edge cases of the
observation: a feature that is NaN (warm-up) is stored as ``z = 0``, read here as *no signal* (flat); a
clipped ``z = +-obs_clip`` still has the sign of ``r`` (the clip is many standard deviations from the mean).
``tests/agents/test_references.py`` checks that the signal equals the sign of the raw 12-bar log return of
the feature table.

**Multi-asset execution.** One action sets one symbol's target (``env/simulator.py``), so a reference that
wants targets in K symbols needs up to K steps to get there: it changes one symbol per step, taking the
symbols that differ from its wish in turn (round robin). ``buy_hold`` therefore enters symbol k at the open
of bar k + 1 (0-based symbol order: k bars after the first), not all at the first bar. A change the env
refuses because it would take gross target exposure above ``env.max_gross_exposure`` (``info['limit_hit']``)
is given up for the session by ``buy_hold`` and retried later by the rules, whose wish changes. With the
defaults (25 % of equity a position, a gross limit of 1x) ``buy_hold`` gets four symbols in, in the env's
symbol order, or five when an entry did not fill: under ``market.unfilled = cancel`` the limit counts held
positions, and an unfilled entry is not retried (the env places no order for a target it already holds).
In single-asset mode the action is the target itself (0 short, 1 flat, 2 long).

A policy notices a new session from the reset info (it carries ``start_bar``; step infos do not) and
starts from flat targets there, as the env does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..env.rollout import Policy

REFERENCE_NAMES = ("flat", "buy_hold", "buy_hold_liquid", "random", "momentum", "reversal")
DEFAULT_FEATURE = "logret_12"
DESCRIPTIONS = {
    "flat": "never trades",
    "buy_hold": "long every symbol from the first bar (one symbol a step), flat at the close",
    "buy_hold_liquid": "long the liquid-tier symbols from the first bar, flat at the close",
    "random": "uniform random action every step (seeded)",
    "momentum": "target sign of the 12-bar log return in each symbol",
    "reversal": "target minus the sign of the 12-bar log return in each symbol",
}


def parse_names(text: str | Iterable[str] | None) -> list[str]:
    """``"flat,buy_hold"`` (or a list; ``None``/``"all"``: every reference) -> validated names in order."""
    if text is None:
        return list(REFERENCE_NAMES)
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if items == ["all"]:
        return list(REFERENCE_NAMES)
    unknown = [s for s in items if s not in REFERENCE_NAMES]
    if unknown:
        raise ValueError(f"unknown reference policy {unknown[0]!r}: choose from {', '.join(REFERENCE_NAMES)} "
                         "(or 'all')")
    return list(dict.fromkeys(items))


def _is_reset(info: dict[str, Any]) -> bool:
    return "start_bar" in info


class _Targets:
    """Multi-asset execution of per-symbol target wishes, one symbol per step (module docstring)."""

    def __init__(self, k: int, give_up_refused: bool):
        self.k = k
        self.give_up = give_up_refused
        self.req = np.zeros(k, np.int64)  # targets the env holds for us (its ``unit``)
        self.blocked = np.zeros(k, bool)
        self.next = 0
        self.last: int | None = None

    def start(self) -> None:
        self.req[:] = 0
        self.blocked[:] = False
        self.next = 0
        self.last = None

    def action(self, want: np.ndarray, info: dict[str, Any]) -> int:
        if self.last is not None and info.get("limit_hit"):
            k, self.last = self.last, None
            self.req[k] = self._before
            if self.give_up:
                self.blocked[k] = True
        self.last = None
        for j in range(self.k):
            k = (self.next + j) % self.k
            if want[k] != self.req[k] and not self.blocked[k]:
                self.next = (k + 1) % self.k
                self._before = int(self.req[k])
                self.req[k] = int(want[k])
                self.last = k
                return 1 + 3 * k + int(want[k]) + 1
        return 0


class _Rule:
    """Base of the references: ``wish(obs, info) -> targets in {-1, 0, 1} per symbol``."""

    give_up_refused = False

    def __init__(self, env):
        inner = env.unwrapped
        self.multi = inner.cfg.mode == "multi"
        self.k = len(inner.symbols)
        self.exec = _Targets(self.k, self.give_up_refused)

    def start(self, info: dict[str, Any]) -> None:
        self.exec.start()

    def wish(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        if _is_reset(info):
            self.start(info)
        want = self.wish(obs, info)
        if not self.multi:
            return int(want[0]) + 1
        return self.exec.action(want, info)


class Flat(_Rule):
    def wish(self, obs, info):
        return np.zeros(self.k, np.int64)


class BuyHold(_Rule):
    give_up_refused = True

    def __init__(self, env, liquid_only: bool = False):
        super().__init__(env)
        self.liquid_only = liquid_only
        self.want = np.ones(self.k, np.int64)

    def start(self, info):
        super().start(info)
        if self.liquid_only:
            tiers = info.get("tiers")
            if tiers is None:
                raise ValueError("buy_hold_liquid needs the session's tiers in the reset info")
            self.want = np.array([1 if t == "liquid" else 0 for t in tiers], np.int64)

    def wish(self, obs, info):
        return self.want


class RandomPolicy:
    def __init__(self, env, seed: int = 0):
        self.n = int(env.unwrapped.action_space.n)
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs, info):
        return int(self.rng.integers(self.n))


class ReturnSign(_Rule):
    """``momentum`` (sign +1) and ``reversal`` (sign -1) on a return feature decoded from the observation."""

    def __init__(self, env, direction: int = 1, feature: str = DEFAULT_FEATURE, threshold: float = 0.0):
        super().__init__(env)
        inner = env.unwrapped
        panel = inner.panel
        names = list(panel.feature_names)
        if feature not in names:
            raise ValueError(f"momentum/reversal read the feature {feature!r}, which the env does not have "
                             f"(features: {', '.join(names)}); add its horizon to features.return_horizons")
        f = names.index(feature)
        nf = len(names)
        lookback = int(inner.lookback)
        # the last bar of the (lookback, K, F) window, feature f of every symbol
        self.ix = (lookback - 1) * self.k * nf + np.arange(self.k) * nf + f
        if panel.scaler is not None:
            mu, sd = panel.scaler.arrays(list(panel.symbols), [feature])
            self.mu, self.sd = mu[:, 0], sd[:, 0]
        else:
            self.mu, self.sd = np.zeros(self.k), np.ones(self.k)
        self.direction = int(direction)
        self.threshold = float(threshold)

    def signal(self, obs: np.ndarray) -> np.ndarray:
        """The decoded return per symbol (NaN where the observation holds no value: ``z == 0``)."""
        z = np.asarray(obs, dtype=np.float64)[self.ix]
        r = z * self.sd + self.mu
        return np.where(z == 0.0, np.nan, r)

    def wish(self, obs, info):
        r = self.signal(obs)
        s = np.where(np.isnan(r) | (np.abs(r) <= self.threshold), 0, np.sign(r)).astype(np.int64)
        return self.direction * s


def reference_policy(name: str, env, *, seed: int = 0, feature: str = DEFAULT_FEATURE,
                     threshold: float = 0.0) -> Policy:
    """The reference ``name`` (module docstring) for ``env`` (a ``TradingEnv``)."""
    if name == "flat":
        return Flat(env)
    if name == "buy_hold":
        return BuyHold(env)
    if name == "buy_hold_liquid":
        return BuyHold(env, liquid_only=True)
    if name == "random":
        return RandomPolicy(env, seed)
    if name in ("momentum", "reversal"):
        return ReturnSign(env, 1 if name == "momentum" else -1, feature, threshold)
    raise ValueError(f"unknown reference policy {name!r}: choose from {', '.join(REFERENCE_NAMES)}")


def reference_policies(names: Iterable[str], env, *, seed: int = 0, feature: str = DEFAULT_FEATURE) -> dict[str, Policy]:
    return {n: reference_policy(n, env, seed=seed, feature=feature) for n in names}
