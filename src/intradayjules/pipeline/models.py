"""Load a trained policy from what a user names: a bundle, a run directory, a ``.zip`` or
``models:/NAME@ALIAS``, verified and without unpickling (``track.loader``; SB3 zips without a bundle
only with ``trust_pickle``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ExperimentConfig
from ..track.loader import load_policy


def load_policy_model(ref: str | Path, device: str = "cpu", cfg: ExperimentConfig | None = None,
                      trust_pickle: bool = False) -> Any:
    return load_policy(ref, cfg=cfg, trust_pickle=trust_pickle, device=device)
