"""MLflow pyfunc flavour for a Stable-Baselines3 zip: an observation batch in, actions out.

This module is the pyfunc ``loader_module``: MLflow calls :func:`_load_pyfunc` with the model's
``data`` directory, which holds ``model.zip`` (the SB3 save file) and ``sb3.json``
(``{"algo": "DQN", "sha256": "<hex of model.zip>"}``; ``algo`` is the SB3 class: DQN, QRDQN, PPO, A2C).
It does not import mlflow. A QR-DQN's ``predict`` is its risk-aware greedy action (agents/qrdqn.py).

``predict(obs)``: ``obs`` is an array-like of shape ``(n, *observation_shape)`` (a pandas DataFrame is
taken as ``(n, n_columns)``; a single observation of ``observation_shape`` is accepted too). Returns a
``np.ndarray`` of ``n`` actions chosen greedily (``deterministic=True``): shape ``(n,)`` for a
Discrete action space, ``(n, k)`` for MultiDiscrete(k).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..agents.algos import ALGOS, algo_of_zip
from .lineage import verify_sha256

MODEL_FILE = "model.zip"
META_FILE = "sb3.json"


def sb3_class(algo: str):
    """The SB3 (or sb3-contrib) algorithm class named ``algo``: an ``agent.algo`` name or an SB3 class name,
    any case (``"DQN"``, ``"qrdqn"``, ``"PPO"``, ``"A2C"``; agents/algos.py), else any class of that name in
    ``stable_baselines3`` or ``sb3_contrib``."""
    if algo.lower() in ALGOS:
        return ALGOS[algo.lower()].cls
    import sb3_contrib
    import stable_baselines3

    cls = getattr(stable_baselines3, algo, None) or getattr(sb3_contrib, algo, None)
    if cls is None:
        raise ValueError(f"unknown Stable-Baselines3 algorithm {algo!r} (not in stable_baselines3 or sb3_contrib)")
    return cls


def zip_algo(path: str | Path) -> str:
    """The SB3 class name of the model in an SB3 zip (``"DQN"``, ``"QRDQN"``, ``"PPO"``, ``"A2C"``)."""
    return algo_of_zip(path).cls.__name__


class SB3Policy:
    """A loaded SB3 model behind the pyfunc ``predict`` contract (see module docstring)."""

    def __init__(self, model: Any):
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        obs = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.shape == tuple(self.model.observation_space.shape)
        if single:
            obs = obs[None]
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions).reshape(len(obs), *np.shape(self.model.action_space.sample()))

    def unwrap_python_model(self) -> Any:
        return self.model


def load_sb3(data_dir: str | Path, device: str = "cpu") -> Any:
    """Load ``data_dir/model.zip`` after checking it against ``data_dir/sb3.json``'s sha256."""
    data_dir = Path(data_dir)
    meta_path = data_dir / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing; not an intradayjules SB3 model directory")
    meta = json.loads(meta_path.read_text())
    zip_path = data_dir / MODEL_FILE
    verify_sha256(zip_path, meta["sha256"], what="SB3 model")
    return sb3_class(meta["algo"]).load(str(zip_path), device=device)


def _load_pyfunc(data_path: str) -> SB3Policy:
    return SB3Policy(load_sb3(data_path))
