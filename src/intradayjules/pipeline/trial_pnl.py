"""Per-session validation P&L of every tuning trial: the matrix a selection's DSR and PBO are computed on.

After training, a trial (``pipeline.trial.dqn_trial``) rolls its final policy of every fold and seed over
**all** validation sessions of that fold (realistic costs, deterministic) and writes, per trial,
``<workdir>/tune-pnl/<study>/<key>.json``::

    {"params": {...}, "objective": float, "pnl": {"YYYY-MM-DD": bps of initial cash, ...}}

where the P&L of a session is the mean over the trial's seeds, and ``key`` is a digest of ``params`` (two
trials with the same parameters share a file: they are one configuration). ``load_pnl_matrix(cfg, study)``
reads them back as a ``sessions x trials`` DataFrame (columns: keys), the input of
``evaluate.overfitting.deflated_sharpe_from_trials`` and ``pbo_cscv``. Trials that were pruned or failed
write nothing: they are not part of the matrix (they still count as trials tried; the caller knows how many).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import ExperimentConfig
from .prepare import resolve_path


def trial_key(params: dict[str, Any]) -> str:
    return hashlib.blake2b(json.dumps(params, sort_keys=True, default=str).encode(), digest_size=6).hexdigest()


def pnl_dir(cfg: ExperimentConfig, study: str) -> Path:
    return resolve_path(cfg, cfg.workdir) / "tune-pnl" / study


def write_trial_pnl(cfg: ExperimentConfig, study: str, params: dict[str, Any], objective: float,
                    pnl: pd.Series) -> Path:
    """Write one trial's per-session validation P&L (atomically)."""
    d = pnl_dir(cfg, study)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{trial_key(params)}.json"
    payload = {"params": params, "objective": float(objective),
               "pnl": {str(k): float(v) for k, v in pnl.items()}}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, default=str))
    tmp.replace(path)
    return path


def load_pnl_matrix(cfg: ExperimentConfig, study: str) -> pd.DataFrame:
    """``sessions x trials`` validation P&L of a study (rows in date order; columns are trial keys).
    Raises naming the file when a trial lacks a session another trial has."""
    files = sorted(pnl_dir(cfg, study).glob("*.json"))
    cols = {}
    for f in files:
        cols[f.stem] = pd.Series(json.loads(f.read_text())["pnl"], dtype=float)
    if not cols:
        return pd.DataFrame()
    m = pd.DataFrame(cols).sort_index()
    if m.isna().any().any():
        col = m.columns[m.isna().any()][0]
        raise ValueError(f"{pnl_dir(cfg, study) / (col + '.json')}: no P&L for session "
                         f"{m.index[m[col].isna()][0]} that other trials of the study have")
    return m
