"""A deployed policy: closed bars in, the environment's observation, an action, target positions out.

``DeployedPolicy.load(bundle)`` needs only the bundle (``agents/deploy.py``): its manifest's deployment
section, ``scaler.json``, ``config.json`` (features and calendar) and ``policy.pt`` (TorchScript; torch is
the only heavy import, no Stable-Baselines3, no training code). Per batch of closed bars:

``act(batch, cash, positions) -> Act``: ``update(batch)`` folds the bars into the features, then
``observation(cash, positions)`` builds exactly the vector ``TradingEnv`` shows the agent at that bar, the
network picks the greedy action, and ``env.actions.decide`` turns it into target positions and orders
with the env's rule (``Act.targets``, ``Act.intent.orders``), including its membership rule
(``set_members``: symbols outside the session's universe are refused and closed). The caller applies pre-trade checks, then
``commit(act, accepted)`` records which changes went out (the policy's target state, as the env keeps it).

The observation (float32, layout in the deployment section; ``env/trading_env.py``):

* the window: the last ``lookback`` bar times of the bundle's symbols, oldest first, each row
  ``K x F`` features from ``features.online.OnlineFeatures`` (bit-identical to the batch pipeline),
  standardised per symbol ``(x - mean) / std`` with the bundle's scaler (float64), NaN -> 0, clipped to
  ``+-clip``, then float32 (``env.episodes.build_panel``); rows before the first bar are zeros, and at a
  session's open the window holds the previous session's last bars; a symbol without a bar at a time
  gets a zero row and keeps its last close;
* per symbol ``position * close / equity`` clipped to +-5, then gross exposure ``sum |position * close|
  / equity`` (<= 10), ``cash / equity`` (+-10), with ``equity = cash + sum position * close`` summed in
  symbol order (equity <= 0 counts as 1e-9), as ``env.kernel.observe_kernel`` computes them;
* the fraction of the session elapsed at the bar's end, ``(start + bar - open) / (close - open)`` from
  the exchange calendar, clipped to [0, 1] (``env.episodes.session_fraction``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..agents.deploy import FILES, read_deployment
from ..config import ExperimentConfig
from ..data.sessions import schedule
from ..env.actions import Intent, decide
from ..features.online import OnlineFeatures
from ..features.scaler import Scaler
from .feed import Bar

_SCHEDULE_DAYS = 400


class SessionClock:
    """Open and close (int64 ns UTC) of exchange sessions, loaded a year at a time."""

    def __init__(self, calendar: str):
        self.calendar = calendar
        self._bounds: dict[int, tuple[int, int]] = {}

    def bounds(self, session_ns: int) -> tuple[int, int]:
        b = self._bounds.get(int(session_ns))
        if b is None:
            day = pd.Timestamp(int(session_ns))
            sched = schedule(self.calendar, day - pd.Timedelta(days=7), day + pd.Timedelta(days=_SCHEDULE_DAYS))
            keys = sched.index.to_numpy(dtype="datetime64[ns]").view("int64")
            o = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
            c = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")
            self._bounds.update({int(k): (int(a), int(b_)) for k, a, b_ in zip(keys, o, c)})
            b = self._bounds.get(int(session_ns))
            if b is None:
                raise ValueError(f"session {day.date()} is not a {self.calendar} session")
        return b


@dataclass(frozen=True)
class Act:
    """One decision: the observation, the action, what it asks for (``intent``: orders per symbol in
    bundle order) and the resulting target positions by symbol (shares)."""

    ts: int
    observation: np.ndarray
    action: int
    intent: Intent
    targets: dict[str, float]


class DeployedPolicy:
    """The policy of a deployable bundle (module docstring)."""

    def __init__(self, path: Path, manifest: dict[str, Any], deployment: dict[str, Any], cfg: ExperimentConfig,
                 scaler: Scaler | None, module: Any):
        self.path, self.manifest, self.deployment, self.cfg = path, manifest, deployment, cfg
        d = deployment
        self.symbols: list[str] = list(d["symbols"])
        self.index = {s: k for k, s in enumerate(self.symbols)}
        self.names: list[str] = list(d["features"])
        self.lookback = int(d["lookback"])
        self.K, self.F = len(self.symbols), len(self.names)
        obs = d["observation"]
        self.dim = int(obs["dim"])
        self.clip = float(obs["clip"])
        self.standardize = bool(obs["standardize"])
        bounds = {p["name"]: p.get("bound") for p in obs["parts"]}
        self.pos_bound, self.expo_bound, self.cash_bound = (float(bounds["position_value"]),
                                                            float(bounds["gross_exposure"]), float(bounds["cash"]))
        if self.dim != self.lookback * self.K * self.F + self.K + 3:
            raise ValueError(f"{path}: observation dim {self.dim} does not match lookback x symbols x features")
        a = d["actions"]
        self.multi = a["mode"] == "multi"
        self.position_size, self.max_gross = float(a["position_size"]), float(a["max_gross_exposure"])
        self.carry = a["unfilled"] == "carry"
        self.bar_ns = int(round(float(d["bar_seconds"]) * 1e9))
        self.engine = OnlineFeatures(cfg.features, d["calendar"])
        self._col = np.array([self.engine.names.index(n) for n in self.names], dtype=np.intp)
        if self.standardize:
            self.mu, self.sd = scaler.arrays(self.symbols, self.names)
        self.clock = SessionClock(d["calendar"])
        self.module = module
        self.window = np.zeros((self.lookback, self.K, self.F), np.float32)
        self.close = np.full(self.K, np.nan)
        self.tod = np.float32(0.0)
        self.ts: int | None = None
        self.unit = [0] * self.K
        self.target = [0.0] * self.K
        self.tradable = [True] * self.K  # membership of the current session (``set_members``)
        self.n_actions = int(a["n"])

    @classmethod
    def load(cls, path: str | Path) -> "DeployedPolicy":
        """Load a verified deployable bundle (every file's sha256 is checked first)."""
        import torch

        path = Path(path)
        manifest, d = read_deployment(path)
        cfg = ExperimentConfig.model_validate(json.loads((path / FILES["config"]).read_text()))
        text = (path / FILES["scaler"]).read_text()
        scaler = None if text.strip() == "null" else Scaler.from_json(text)
        import warnings

        with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it is what we ship
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path / FILES["policy"]), map_location="cpu").eval()
        return cls(path, manifest, d, cfg, scaler, module)

    # ------------------------------------------------------------------------------------- bars
    def update(self, batch: Sequence[Bar]) -> bool:
        """Fold one batch of closed bars (one time) into the features and the window. Returns False
        (nothing changes) when no bar of the bundle's symbols is in it."""
        raw = np.full((self.K, self.F), np.nan)
        seen = False
        for bar in batch:
            k = self.index.get(bar.symbol)
            if k is None:
                continue
            values, _ = self.engine.update_bar(bar)
            raw[k] = values[self._col]
            self.close[k] = bar.close
            if not seen:
                seen = True
                self.ts = int(bar.ts)
                session = int(bar.session)
        if not seen:
            return False
        feat = (raw - self.mu) / self.sd if self.standardize else raw
        feat = np.clip(np.nan_to_num(feat, nan=0.0, posinf=self.clip, neginf=-self.clip), -self.clip, self.clip)
        self.window[:-1] = self.window[1:]
        self.window[-1] = feat.astype(np.float32)
        o, c = self.clock.bounds(session)
        t = np.array([self.ts], dtype=np.int64)
        frac = (t + float(self.bar_ns) - np.array([o], np.int64)) / (np.array([c], np.int64) - np.array([o], np.int64))
        self.tod = np.clip(frac, 0.0, 1.0).astype(np.float32)[0]
        return True

    def observation(self, cash: float, positions: Sequence[float]) -> np.ndarray:
        """The env's observation for the current bar and this account (module docstring)."""
        K = self.K
        out = np.empty(self.dim, np.float32)
        nf = self.lookback * K * self.F
        out[:nf] = self.window.reshape(-1)
        eq = float(cash)
        g = 0.0
        for k in range(K):
            val = float(positions[k]) * float(self.close[k])
            eq += val
            g += abs(val)
        safe = eq if eq > 0.0 else 1e-9
        for k in range(K):
            w = float(positions[k]) * float(self.close[k]) / safe
            out[nf + k] = min(max(w, -self.pos_bound), self.pos_bound)
        out[nf + K] = min(max(g / safe, 0.0), self.expo_bound)
        out[nf + K + 1] = min(max(float(cash) / safe, -self.cash_bound), self.cash_bound)
        out[nf + K + 2] = self.tod
        return out

    def action(self, obs: np.ndarray) -> int:
        """The greedy action of the TorchScript policy for one observation."""
        import torch

        with torch.no_grad():
            return int(self.module(torch.as_tensor(obs[None, :], dtype=torch.float32))[0])

    def act(self, batch: Sequence[Bar] | None, cash: float, positions: Sequence[float]) -> Act:
        """Update with ``batch`` (None: the bars are already folded in), then decide (module docstring).
        ``positions``: shares per symbol in bundle order."""
        if batch is not None:
            self.update(batch)
        obs = self.observation(cash, positions)
        a = self.action(obs)
        target = self.target if self.carry else [float(p) for p in positions]
        intent = decide(a, self.unit, target, positions, self.close.tolist(), cash, multi=self.multi,
                        position_size=self.position_size, max_gross_exposure=self.max_gross, carry=self.carry,
                        tradable=self.tradable)
        return Act(self.ts or 0, obs, a, intent, dict(zip(self.symbols, intent.new_target)))

    # ------------------------------------------------------------------------------------- state
    def commit(self, act: Act, accepted: Sequence[float]) -> None:
        """Record what went out: a changed symbol whose order was not refused outright takes its new
        target unit (the env's rule, ``risk/pretrade_env.py``)."""
        it = act.intent
        for k in range(self.K):
            refused = it.orders[k] != 0 and accepted[k] == 0
            if it.changed[k] and not refused:
                self.unit[k] = it.req[k]
            if self.carry:
                self.target[k] = it.new_target[k] if (not it.changed[k] or not refused) else self.target[k]

    def set_members(self, members=None) -> None:
        """The symbols that may be held from now on (the point-in-time universe of the session, known at its
        open; None: all). Orders in the others are refused by ``decide`` (``Act.intent.refused``) and a
        position in them is closed at the next open, as the env does (``env/membership.py``)."""
        self.tradable = [True] * self.K if members is None else [s in set(members) for s in self.symbols]

    def end_session(self) -> None:
        """The session ended flat: targets back to flat (as the env resets at an episode's end)."""
        self.unit = [0] * self.K
        self.target = [0.0] * self.K

    def state(self) -> dict[str, Any]:
        return {"unit": list(self.unit), "target": list(self.target)}

    def restore(self, state: dict[str, Any]) -> None:
        self.unit = [int(u) for u in state["unit"]]
        self.target = [float(x) for x in state["target"]]

    def env_policy(self):
        """The same network as a rollout policy ``policy(obs, info) -> action`` (for the backtest)."""
        return lambda obs, info=None: self.action(np.asarray(obs, dtype=np.float32))
