"""The one feature standardisation: ``(x - mean) / std`` per symbol and feature, from training sessions.

Fitted once on the training sessions (never on validation or test), stored with the feature-store entry
(``FeatureStore.scaler``), applied by the environment (``env.episodes.build_panel``) and shipped with an
exported policy (``scaler.json``), so training, evaluation and a deployed policy standardise alike.

Statistics: over the rows in the training sessions with ``warm == False`` (complete rows), the mean and
population standard deviation (ddof 0) of every feature, per symbol (``by_symbol=True``, what the
environment uses: each symbol's slot of the observation is standardised on its own history) or pooled
over all symbols (``by_symbol=False``, the statistics are stored under the key ``"*"``). A feature that is
constant (or absent) on those rows gets mean 0 / std 1. ``sessions`` records the sessions seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

KEY_COLUMNS = ("timestamp", "symbol", "session")
POOLED = "*"


@dataclass
class Scaler:
    columns: list[str]
    mean: dict[str, list[float]]  # symbol (or "*" pooled) -> one mean per column
    std: dict[str, list[float]]
    sessions: list[str] = field(default_factory=list)
    rows: int = 0

    @property
    def by_symbol(self) -> bool:
        return POOLED not in self.mean

    @classmethod
    def fit(cls, features: pd.DataFrame, sessions: Iterable[Any], by_symbol: bool = False) -> "Scaler":
        """Fit on the rows of ``features`` whose session is in ``sessions`` (dates or timestamps)."""
        names = [c for c in features.columns if c not in (*KEY_COLUMNS, "warm")]
        days = pd.DatetimeIndex(pd.to_datetime(list(sessions))).tz_localize(None).normalize()
        if len(days) == 0:
            raise ValueError("Scaler.fit needs at least one training session")
        in_train = features["session"].isin(days).to_numpy()
        if "warm" in features:
            in_train = in_train & ~features["warm"].to_numpy(dtype=bool)
        if not in_train.any():
            raise ValueError(f"no non-warm feature rows in the {len(days)} training sessions "
                             f"({days.min().date()} .. {days.max().date()})")
        x = features.loc[in_train, names].to_numpy(dtype=np.float64)
        sym = (features.loc[in_train, "symbol"].astype(str).to_numpy() if by_symbol
               else np.full(int(in_train.sum()), POOLED))
        mean: dict[str, list[float]] = {}
        std: dict[str, list[float]] = {}
        for s in sorted(set(sym)):
            xs = x[sym == s]
            finite = np.isfinite(xs)
            n = finite.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mu = np.where(n > 0, np.where(finite, xs, 0.0).sum(axis=0) / np.maximum(n, 1), 0.0)
                var = np.where(finite, (xs - mu) ** 2, 0.0).sum(axis=0) / np.maximum(n, 1)
            sd = np.sqrt(var)
            mean[s] = mu.tolist()
            std[s] = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0).tolist()
        return cls(names, mean, std, sorted(d.date().isoformat() for d in days), int(in_train.sum()))

    def arrays(self, symbols: Sequence[str], columns: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) arrays of shape (len(symbols), len(columns)) in that order."""
        cols = list(columns) if columns is not None else self.columns
        missing = [c for c in cols if c not in self.columns]
        if missing:
            raise ValueError(f"the scaler was not fitted on columns {missing}")
        if not self.by_symbol:
            symbols_used = [POOLED] * len(symbols)
        else:
            symbols_used = list(symbols)
        unknown = [s for s in symbols_used if s not in self.mean]
        if unknown:
            raise ValueError(f"the scaler has no statistics for symbols {unknown} (not in the training "
                             f"sessions it was fitted on); fitted symbols: {sorted(self.mean)}")
        ix = [self.columns.index(c) for c in cols]
        mu = np.array([[self.mean[s][i] for i in ix] for s in symbols_used], dtype=np.float64)
        sd = np.array([[self.std[s][i] for i in ix] for s in symbols_used], dtype=np.float64)
        return mu.reshape(len(symbols), len(cols)), sd.reshape(len(symbols), len(cols))

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """A copy with every fitted feature column standardised (NaN stays NaN)."""
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise ValueError(f"features lack columns the scaler was fitted on: {missing}")
        out = features.copy()
        sym = out["symbol"].astype(str).to_numpy()
        uniq, inv = np.unique(sym, return_inverse=True)
        mu, sd = self.arrays(list(uniq))
        x = out[self.columns].to_numpy(dtype=np.float64)
        out[self.columns] = (x - mu[inv]) / sd[inv]
        return out

    def to_json(self) -> str:
        return json.dumps({"columns": self.columns, "mean": self.mean, "std": self.std,
                           "sessions": self.sessions, "rows": self.rows})

    @classmethod
    def from_json(cls, text: str) -> "Scaler":
        d = json.loads(text)
        if not isinstance(d.get("mean"), dict):
            raise ValueError("scaler JSON: 'mean' must map symbol -> values (a pooled scaler of an older "
                             "version; rebuild it)")
        return cls(d["columns"], d["mean"], d["std"], d.get("sessions", []), d.get("rows", 0))
