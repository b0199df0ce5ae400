"""Greedy policies from trained models, in the rollout's ``policy(obs, info) -> action`` form.

``policy_from_model`` adapts an SB3 model (``predict``), a TorchScript module (``forward`` -> action) or
an MLflow pyfunc model (observation batch -> actions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..env.rollout import Policy


def policy_from_model(model: Any) -> Policy:
    """A deterministic policy from an SB3 model, a TorchScript module, or a pyfunc model."""
    if hasattr(model, "predict") and hasattr(model, "policy"):  # SB3
        return lambda obs, info=None: int(model.predict(obs, deterministic=True)[0])
    if hasattr(model, "predict"):  # mlflow pyfunc: batch of observations -> actions
        return lambda obs, info=None: int(np.asarray(model.predict(obs[None, :].astype(np.float32))).reshape(-1)[0])
    import torch

    def scripted(obs: np.ndarray, info: Any = None) -> int:
        with torch.no_grad():
            return int(model(torch.as_tensor(obs[None, :], dtype=torch.float32))[0])

    return scripted
