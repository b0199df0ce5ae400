"""The DQN names as they were before the algorithm table (issue 19); kept so existing imports still work.

Training, checkpoints and loading are algorithm-generic now: ``agents/sb3.py`` (``learn``, ``Checkpoint``,
``latest_checkpoint``, ``load_model``) over the table in ``agents/algos.py``; with ``agent.algo: dqn`` they
do exactly what this module did. New code imports ``agents.sb3``.
"""

from __future__ import annotations

from .algos import build_model as _build_model
from .sb3 import (Checkpoint, configure_torch, latest_checkpoint, learn, load_model, make_training_env,
                  replay_buffer_for)

__all__ = ["Checkpoint", "build_model", "configure_torch", "latest_checkpoint", "learn", "load_model",
           "make_training_env", "replay_buffer_for"]


def build_model(cfg, env, device: str):
    """``algos.build_model`` for a whole ``ExperimentConfig`` (the old signature)."""
    return _build_model(cfg.agent, env, device)
