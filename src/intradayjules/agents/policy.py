"""Greedy policies from trained models, in the rollout's ``policy(obs, info) -> action`` form.

``policy_from_model`` adapts an SB3 model (``predict``), a TorchScript module (``forward`` -> action) or
an MLflow pyfunc model (observation batch -> actions), each as a ``BatchGreedy`` (env/rollout.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..env.rollout import BatchGreedy


def policy_from_model(model: Any) -> BatchGreedy:
    """A deterministic policy from an SB3 model, a TorchScript module, or a pyfunc model; it acts on one
    observation (``policy(obs, info)``) or a batch (``policy.batch(obs)``: the rollout's lockstep engine)."""
    if hasattr(model, "predict") and hasattr(model, "policy"):  # SB3
        return BatchGreedy(lambda obs: model.predict(obs, deterministic=True)[0])
    if hasattr(model, "predict"):  # mlflow pyfunc: batch of observations -> actions
        return BatchGreedy(lambda obs: model.predict(obs.astype(np.float32)))
    import torch

    def scripted(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    return BatchGreedy(scripted)
