"""Load a trained model from what a user names: a ``.zip`` file, a run directory or ``models:/NAME@ALIAS``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..agents.sb3 import load_model
from ..config import ExperimentConfig
from ..track import resolve_model_uri


def load_policy_model(ref: str | Path, device: str = "cpu", cfg: ExperimentConfig | None = None) -> Any:
    """An SB3 DQN from a ``.zip`` path, a run directory (its ``model.zip``) or ``models:/NAME@ALIAS``
    (downloaded and sha256-verified by the registry)."""
    ref = str(ref)
    if ref.startswith("models:/"):
        return load_model(resolve_model_uri(ref, cfg=cfg), device=device)
    p = Path(ref)
    if p.is_dir():
        p = p / "model.zip"
    if not p.exists():
        raise FileNotFoundError(f"model not found: {ref}")
    return load_model(p, device=device)
