"""Save and export a trained policy: the signed SB3 zip, the safe policy bundle, TorchScript.

``save_model(model, path)`` is what the trainer calls for its final model: ``path`` (the SB3 zip, signed
with ``<zip>.hmac``, see ``integrity.py``) and, next to it, the policy bundle ``<stem>.bundle/``
(``bundle.py``: JSON manifest + safetensors, loadable without unpickling; every algorithm of the
table), whose manifest records the zip's sha256. ``ensure_bundle(model, path)`` writes that bundle for a
zip that has none (or one exported from another zip).

``export_torchscript``: the exported module maps a float32 observation batch ``[N, obs_dim]`` to greedy
actions ``[N]`` (int64), exactly what ``model.predict(obs, deterministic=True)`` returns, for each
algorithm of the table (agents/algos.py). One builder per algorithm family, each a small module:

* DQN (``_dqn_module``): ``argmax_a Q(obs, a)``; also exports ``q_values(obs)``.
* QR-DQN (``_qrdqn_module``): ``argmax_a rho(quantiles(obs)[:, :, a])`` with the model's risk measure
  ``rho`` (agents/risk_measures.py, the same function the Python policy calls, compiled in); also exports
  ``quantiles(obs)`` ``[N, n_quantiles, n_actions]`` and ``risk_values(obs)`` ``[N, n_actions]``, and the
  measure as attributes ``risk_measure``, ``cvar_alpha``, ``risk_lambda``.
* PPO / A2C (``_actor_module``): the mode of the categorical policy, ``argmax softmax(logits)`` as SB3
  computes it; also exports ``action_logits(obs)``. The value network is not exported (acting needs none).

``policy_description(model)`` is what a loader needs to rebuild the network without SB3 or pickle
(algorithm, observation and action sizes, layer sizes, activation, quantiles and risk measure).
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .algos import algo_of
from .risk_measures import risk_action, risk_values

from .bundle import SUPPORTED as BUNDLE_SUPPORTED, bundle_path_for, export_bundle, is_bundle, read_manifest
from .integrity import save_signed


def save_model(model, path: str | Path) -> Path:
    """Save ``model`` as a signed SB3 zip at ``path`` plus its policy bundle ``<stem>.bundle/``."""
    path = save_signed(model, path)
    ensure_bundle(model, path, replace=True)
    return path


def ensure_bundle(model, zip_path: str | Path, replace: bool = False) -> Path:
    """The policy bundle beside ``zip_path`` (``model`` is that zip's model): written when missing, when
    it records another zip's sha256, or with ``replace``. Returns its path."""
    import hashlib

    zip_path = Path(zip_path)
    bundle = bundle_path_for(zip_path)
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    if algo_of(model).cls.__name__ not in BUNDLE_SUPPORTED:
        raise ValueError(f"{type(model).__name__}: no policy bundle format")
    if replace or not is_bundle(bundle) or (read_manifest(bundle).get("source") or {}).get("zip_sha256") != digest:
        export_bundle(model, bundle, zip_sha256=digest)
    return bundle


# ------------------------------------------------------------------------------------------- DQN
class _Greedy(torch.nn.Module):
    def __init__(self, q_net: Any):  # SB3 QNetwork: features_extractor (Flatten) + q_net (MLP)
        super().__init__()
        self.features_extractor = q_net.features_extractor
        self.q_net = q_net.q_net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.argmax(self.q_values(obs), dim=1)

    @torch.jit.export
    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q_net(self.features_extractor(obs.float()))


def _dqn_module(policy: Any) -> torch.nn.Module:
    return _Greedy(policy.q_net)


# ---------------------------------------------------------------------------------------- QR-DQN
class _RiskAwareQuantiles(torch.nn.Module):
    def __init__(self, quantile_net: Any, measure: str, alpha: float, lam: float):
        super().__init__()
        self.features_extractor = quantile_net.features_extractor
        self.quantile_net = quantile_net.quantile_net
        self.n_quantiles: int = int(quantile_net.n_quantiles)
        self.n_actions: int = int(quantile_net.action_space.n)
        self.risk_measure: str = measure
        self.cvar_alpha: float = float(alpha)
        self.risk_lambda: float = float(lam)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return risk_action(self.quantiles(obs), self.risk_measure, self.cvar_alpha, self.risk_lambda)

    @torch.jit.export
    def quantiles(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.quantile_net(self.features_extractor(obs.float()))
        return out.view(-1, self.n_quantiles, self.n_actions)

    @torch.jit.export
    def risk_values(self, obs: torch.Tensor) -> torch.Tensor:
        return risk_values(self.quantiles(obs), self.risk_measure, self.cvar_alpha, self.risk_lambda)


def _qrdqn_module(policy: Any) -> torch.nn.Module:
    risk = policy.risk
    return _RiskAwareQuantiles(policy.quantile_net, risk.name, risk.alpha, risk.lam)


# ------------------------------------------------------------------------------------- PPO / A2C
class _Actor(torch.nn.Module):
    def __init__(self, policy: Any):  # SB3 ActorCriticPolicy (shared or separate features extractor)
        super().__init__()
        self.features_extractor = policy.pi_features_extractor
        self.policy_net = policy.mlp_extractor.policy_net
        self.action_net = policy.action_net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        logits = self.action_logits(obs)
        # as torch's Categorical(logits=...).probs, whose argmax SB3 returns: normalise, then softmax
        probs = torch.softmax(logits - logits.logsumexp(dim=-1, keepdim=True), dim=-1)
        return torch.argmax(probs, dim=1)

    @torch.jit.export
    def action_logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_net(self.policy_net(self.features_extractor(obs.float())))


def _actor_module(policy: Any) -> torch.nn.Module:
    return _Actor(policy)


_BUILDERS = {"dqn": _dqn_module, "qrdqn": _qrdqn_module, "ppo": _actor_module, "a2c": _actor_module}


def export_torchscript(model: Any, path: str | Path) -> Path:
    """Script the greedy policy of a trained model (on CPU) and save it to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    policy = copy.deepcopy(model.policy).to("cpu") if str(model.device) != "cpu" else model.policy
    module = _BUILDERS[algo_of(model).name](policy).to("cpu").eval()
    with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it is what we ship
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(module)
    tmp = path.with_suffix(path.suffix + ".tmp")
    scripted.save(str(tmp))
    tmp.replace(path)
    return path


def load_torchscript(path: str | Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def random_walk_observations(env, n: int = 1000, seed: int = 0) -> np.ndarray:
    """``n`` observations of ``env`` visited under uniformly random actions (one generator seeded with
    ``seed``; a finished episode is reset), float32: the inputs of parity and latency checks."""
    rng = np.random.default_rng(seed)
    o, _ = env.reset(seed=seed)
    obs = []
    while len(obs) < n:
        obs.append(o)
        o, _, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
        if term or trunc:
            o, _ = env.reset()
    return np.asarray(obs, dtype=np.float32)


def parity(model, scripted, observations: np.ndarray) -> float:
    """Share of observations where the exported module's action equals ``model.predict``'s."""
    expected, _ = model.predict(observations, deterministic=True)
    with torch.no_grad():
        got = scripted(torch.as_tensor(observations, dtype=torch.float32)).numpy()
    return float(np.mean(np.asarray(expected).reshape(-1) == got.reshape(-1)))


def latency_us(scripted, obs_dim: int, n: int = 5000, batch: int = 1) -> dict[str, float]:
    """Per-call latency of the exported module on one observation (microseconds): p50, p99, mean."""
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


# ------------------------------------------------------------------------ for a pickle-free loader
def _linear_sizes(seq: Any) -> list[int]:
    return [int(m.out_features) for m in seq if isinstance(m, torch.nn.Linear)][:-1]


def policy_description(model: Any) -> dict[str, Any]:
    """What rebuilding the acting network needs, as JSON-ready values (module docstring).

    ``hidden`` are the hidden layer sizes (the output layer follows: ``n_actions`` outputs, or
    ``n_quantiles * n_actions`` viewed as ``[n_quantiles, n_actions]`` for QR-DQN); ``activation`` the
    nonlinearity between layers; ``greedy`` how the action is read from the output."""
    algo = algo_of(model)
    p = model.policy
    desc: dict[str, Any] = {"algo": algo.name, "sb3_class": type(model).__name__,
                            "obs_dim": int(np.prod(model.observation_space.shape)),
                            "n_actions": int(model.action_space.n)}
    if algo.name == "dqn":
        desc.update(hidden=_linear_sizes(p.q_net.q_net), activation=p.q_net.activation_fn.__name__,
                    greedy="argmax q_values")
    elif algo.name == "qrdqn":
        r = p.risk
        desc.update(hidden=_linear_sizes(p.quantile_net.quantile_net), activation=p.quantile_net.activation_fn.__name__,
                    n_quantiles=int(p.quantile_net.n_quantiles), risk_measure=r.name, cvar_alpha=r.alpha,
                    risk_lambda=r.lam, greedy="argmax risk_values(quantiles) (agents/risk_measures.py)")
    else:
        desc.update(hidden=_linear_sizes([*p.mlp_extractor.policy_net, p.action_net]),
                    activation=p.activation_fn.__name__, greedy="argmax softmax(action_logits)")
    return desc
