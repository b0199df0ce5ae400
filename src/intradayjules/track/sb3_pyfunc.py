"""MLflow pyfunc flavour for an intradayjules policy: an observation batch in, actions out.

This module is the pyfunc ``loader_module``: MLflow calls :func:`_load_pyfunc` with the model's
``data`` directory, which holds

- ``bundle/`` : the policy bundle (``agents/bundle.py``: ``manifest.json`` + ``weights.safetensors``),
  what is loaded: nothing in it can run code;
- ``model.zip``: the SB3 save file (kept for SB3 users; it is loaded only with ``trust_pickle``);
- ``sb3.json``: ``{"algo": "DQN", "sha256": "<hex of model.zip>", "bundle_sha256": "<hex of
  bundle/manifest.json>"}`` (the manifest in turn records the weights' sha256).

``algo`` is the SB3 class (DQN, QRDQN, PPO, A2C); the bundle exists for DQN (agents/bundle.py), the
other algorithms' zips are checked against ``sha256`` and loaded with ``trust_pickle``. A QR-DQN's
``predict`` is its risk-aware greedy action (agents/qrdqn.py). It does not import mlflow.

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

from ..agents.bundle import MANIFEST, load_policy
from ..agents.integrity import verify as verify_pickle
from ..errors import IntegrityError
from ..agents.algos import ALGOS, algo_of_zip
from .lineage import verify_sha256

MODEL_FILE = "model.zip"
META_FILE = "sb3.json"
BUNDLE_DIR = "bundle"


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
    """A loaded policy (bundle or SB3 model) behind the pyfunc ``predict`` contract (module docstring)."""

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


def read_meta(data_dir: str | Path) -> dict[str, Any]:
    meta_path = Path(data_dir) / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing; not an intradayjules model directory")
    return json.loads(meta_path.read_text())


def bundle_in(data_dir: str | Path, meta: dict[str, Any] | None = None) -> Path | None:
    """The data directory's bundle after checking its manifest against ``sb3.json`` (None: it has none)."""
    data_dir = Path(data_dir)
    meta = read_meta(data_dir) if meta is None else meta
    bundle = data_dir / BUNDLE_DIR
    if not (bundle / MANIFEST).is_file():
        return None
    expected = meta.get("bundle_sha256")
    if not expected:
        raise IntegrityError(f"{data_dir / META_FILE} records no bundle_sha256 for {bundle}; refusing to load it")
    verify_sha256(bundle / MANIFEST, expected, what="policy bundle manifest")
    return bundle


def load_sb3(data_dir: str | Path, device: str = "cpu", trust_pickle: bool = False) -> Any:
    """The SB3 model of ``data_dir/model.zip``, checked against ``sb3.json``'s sha256. Unpickles it, so
    only with ``trust_pickle=True``."""
    data_dir = Path(data_dir)
    meta = read_meta(data_dir)
    zip_path = data_dir / MODEL_FILE
    verify_sha256(zip_path, meta["sha256"], what="SB3 model")
    verify_pickle(zip_path, "SB3 model", trust_pickle=trust_pickle)
    return sb3_class(meta["algo"]).load(str(zip_path), device=device)


def load_data_dir(data_dir: str | Path, trust_pickle: bool = False) -> Any:
    """The policy of a pyfunc data directory: its bundle; the SB3 zip only with ``trust_pickle``."""
    bundle = bundle_in(data_dir)
    if bundle is not None:
        return load_policy(bundle)
    if not trust_pickle:
        raise IntegrityError(f"{data_dir} holds no policy bundle, only an SB3 zip (a pickle); refusing to load "
                             "it. Re-register the model from a run that wrote model.bundle/, or pass "
                             "--trust-pickle if you made it")
    return load_sb3(data_dir, trust_pickle=True)


def _load_pyfunc(data_path: str) -> SB3Policy:
    return SB3Policy(load_data_dir(data_path))
