"""Save and export a trained SB3 DQN: the signed SB3 zip, the safe policy bundle, TorchScript.

``save_model(model, path)`` is what the trainer calls for its final model: ``path`` (the SB3 zip, signed
with ``<zip>.hmac``, see ``integrity.py``) and, next to it, the policy bundle ``<stem>.bundle/``
(``bundle.py``: JSON manifest + safetensors, loadable without unpickling), whose manifest records the
zip's sha256.

``export_torchscript``: the exported module maps a float32 observation batch ``[N, obs_dim]`` to greedy
actions ``[N]`` (int64), exactly what ``DQN.predict(obs, deterministic=True)`` returns. ``q_values`` is
exported too.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .bundle import bundle_path_for, export_bundle
from .integrity import save_signed


def save_model(model, path: str | Path) -> Path:
    """Save ``model`` as a signed SB3 zip at ``path`` plus its policy bundle ``<stem>.bundle/``."""
    import hashlib

    path = save_signed(model, path)
    export_bundle(model, bundle_path_for(path), zip_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def _greedy_module(model):
    import torch

    q_net = model.q_net  # QNetwork: features_extractor (Flatten) + q_net (MLP)

    class Greedy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features_extractor = q_net.features_extractor
            self.q_net = q_net.q_net

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.argmax(self.q_values(obs), dim=1)

        @torch.jit.export
        def q_values(self, obs: torch.Tensor) -> torch.Tensor:
            return self.q_net(self.features_extractor(obs.float()))

    return Greedy().to("cpu").eval()


def export_torchscript(model, path: str | Path) -> Path:
    """Script the greedy policy of an SB3 DQN (on CPU) and save it to ``path``."""
    import copy

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu_model = copy.deepcopy(model.policy).to("cpu") if str(model.device) != "cpu" else model.policy
    module = _greedy_module(cpu_model)
    import warnings

    with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it is what we ship
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(module)
    tmp = path.with_suffix(path.suffix + ".tmp")
    scripted.save(str(tmp))
    tmp.replace(path)
    return path


def load_torchscript(path: str | Path):
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def parity(model, scripted, observations: np.ndarray) -> float:
    """Share of observations where the exported module's action equals ``model.predict``'s."""
    import torch

    expected, _ = model.predict(observations, deterministic=True)
    with torch.no_grad():
        got = scripted(torch.as_tensor(observations, dtype=torch.float32)).numpy()
    return float(np.mean(np.asarray(expected).reshape(-1) == got.reshape(-1)))


def latency_us(scripted, obs_dim: int, n: int = 5000, batch: int = 1) -> dict[str, float]:
    """Per-call latency of the exported module on one observation (microseconds): p50, p99, mean."""
    import torch

    torch.set_num_threads(1)
    x = torch.randn(batch, obs_dim)
    with torch.no_grad():
        for _ in range(200):
            scripted(x)
        out = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter_ns()
            scripted(x)
            out[i] = (time.perf_counter_ns() - t0) / 1e3
    return {"p50": float(np.percentile(out, 50)), "p99": float(np.percentile(out, 99)), "mean": float(out.mean())}
