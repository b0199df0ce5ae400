"""The policy bundle: a trained policy as JSON + tensors, loadable without unpickling anything.

A Stable-Baselines3 ``.zip`` holds cloudpickled objects (spaces, schedules, policy kwargs), so loading
one runs whatever code its author put there. The bundle is the project's own format, a directory::

    model.bundle/
      manifest.json          format, algorithm, spaces, network, file digests (plain JSON)
      weights.safetensors    the acting network's tensors (safetensors: a header + raw bytes, no code)

``manifest.json`` (``format_version`` 1)::

    {"format": "intradayjules.policy-bundle", "format_version": 1, "algorithm": "DQN",
     "policy": {"class": "DQNPolicy", "net_arch": [64, 64], "activation_fn": "ReLU",
                "features_extractor": "FlattenExtractor", "normalize_images": true},
     "observation_space": {"type": "Box", "shape": [N], "dtype": "float32", "low": [...], "high": [...]},
     "action_space": {"type": "Discrete", "n": 3, "start": 0},
     "tensors": {"q_net.0.weight": {"shape": [64, N], "dtype": "float32"}, ...},
     "files": {"weights.safetensors": {"sha256": "<hex>", "bytes": 12345}},
     "obs_layout": {...} | null,        # hints for a live loop: lookback, symbols, features, order
     "source": {"num_timesteps": 20000, "sb3_version": "2.9.2", "torch_version": "...",
                "zip_sha256": "<hex of the SB3 zip saved alongside>" | null}}

Every algorithm of the table (agents/algos.py) has a bundle; ``algorithm`` and ``policy`` differ:

* ``DQN``: ``DQNPolicy`` as above; tensors: the Q-network (``q_net.*``).
* ``QRDQN``: ``{"class": "RiskAwareQRDQNPolicy", "net_arch": [...], "activation_fn": ..., "n_quantiles": 50,
  "risk": {"measure": "mean" | "cvar" | "mean_std", "cvar_alpha": a, "risk_lambda": l}, ...}``; tensors:
  the quantile network (``quantile_net.*``); the greedy action maximises the risk measure of the
  quantiles (agents/risk_measures.py).
* ``PPO`` / ``A2C``: ``{"class": "ActorCriticPolicy", "net_arch": {"pi": [...], "vf": [...]},
  "activation_fn": ..., "share_features_extractor": true, ...}``; tensors: the whole actor-critic (the
  value network too, so the bundle can score states); the greedy action is the categorical's mode.

Infinite space bounds are written as the strings ``"inf"`` / ``"-inf"`` (strict JSON).

``load_policy(path)`` reads the manifest (at most 1 MiB), checks every file's sha256, rebuilds the SB3
policy class of the algorithm from the manifest (class from a fixed table, activation from an
allow-list, never an import path) and loads the tensors (names and shapes must match exactly). The
result, :class:`BundlePolicy`, answers ``predict(obs, deterministic=True) -> (actions, None)`` like the
SB3 model (always greedy) and, for DQN, ``q_values(obs)``; its greedy actions equal the SB3 model's
(tests/agents/test_bundle.py, 1,000 observations per algorithm).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IntegrityError, IntradayJulesError

FORMAT = "intradayjules.policy-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
BUNDLE_SUFFIX = ".bundle"
MAX_MANIFEST_BYTES = 1 << 20
ACTIVATIONS = ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Identity")
SUPPORTED = ("DQN", "QRDQN", "PPO", "A2C")
MEASURES = ("mean", "cvar", "mean_std")  # agents/risk_measures.py


class BundleError(IntradayJulesError):
    """A policy bundle is missing, malformed, or does not match its manifest."""


def bundle_path_for(model_zip: str | Path) -> Path:
    """Where the bundle of an SB3 zip lives: ``model.zip`` -> ``model.bundle/`` (same folder)."""
    p = Path(model_zip)
    return p.with_name(p.stem + BUNDLE_SUFFIX)


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ spaces
def _bound(x: float) -> float | str:
    return float(x) if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _unbound(x: float | str) -> float:
    if isinstance(x, str):
        if x not in ("inf", "-inf"):
            raise ValueError(f"bound {x!r} is not a number, 'inf' or '-inf'")
        return math.inf if x == "inf" else -math.inf
    return float(x)


def space_to_json(space: Any) -> dict[str, Any]:
    import gymnasium as gym

    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": [_bound(v) for v in np.asarray(space.low, dtype=np.float64).reshape(-1)],
                "high": [_bound(v) for v in np.asarray(space.high, dtype=np.float64).reshape(-1)]}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise BundleError(f"space {space!r}: only Box observations and Discrete actions can be bundled")


def space_from_json(d: dict[str, Any], what: str) -> Any:
    import gymnasium as gym

    kind = d.get("type")
    try:
        if kind == "Box":
            shape = tuple(int(s) for s in d["shape"])
            dtype = np.dtype(d["dtype"])
            if dtype.kind != "f":
                raise ValueError(f"dtype {dtype} is not a float type")
            low = np.array([_unbound(v) for v in d["low"]], dtype=dtype).reshape(shape)
            high = np.array([_unbound(v) for v in d["high"]], dtype=dtype).reshape(shape)
            return gym.spaces.Box(low, high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            return gym.spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{what}: {type(e).__name__}: {e}") from None
    raise BundleError(f"{what}: type {kind!r} is not supported (Box, Discrete)")


# ------------------------------------------------------------------------------------------ export
def _obs_layout(model: Any) -> dict[str, Any] | None:
    """Best-effort hints from the training env (TradingEnv): lookback, symbols, feature names, order."""
    try:
        venv = model.get_env()  # SessionVecEnv (agents.sb3) or a DummyVecEnv of TradingEnvs
        env = venv.envs[0].unwrapped if hasattr(venv, "envs") else venv.unwrapped
        return {"lookback": int(env.lookback), "symbols": [str(s) for s in env.symbols],
                "features": [str(f) for f in env.panel.feature_names], "mode": str(env.cfg.mode),
                "order": ["lookback x symbols x features window (z-scored, clipped)", "position value / equity "
                          "per symbol", "gross exposure", "cash / equity", "fraction of the session elapsed"]}
    except Exception:  # noqa: BLE001 - hints only: another env (CartPole in tests) has none
        return None


def export_bundle(model: Any, path: str | Path, *, zip_sha256: str | None = None,
                  obs_layout: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (an SB3 DQN, QR-DQN, PPO or A2C) as a bundle directory at ``path`` (replaced
    atomically)."""
    import torch
    from safetensors.torch import save_file

    algo = type(model).__name__
    if algo not in SUPPORTED:
        raise BundleError(f"cannot bundle a {algo}: supported algorithms are {', '.join(SUPPORTED)}")
    policy = model.policy
    net, policy_json = _acting_network(algo, policy)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "algorithm": algo,
            "policy": policy_json,
            "observation_space": space_to_json(policy.observation_space),
            "action_space": space_to_json(policy.action_space),
            "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                        for k, v in tensors.items()},
            "files": {WEIGHTS: {"sha256": _sha256(tmp / WEIGHTS), "bytes": (tmp / WEIGHTS).stat().st_size}},
            "obs_layout": obs_layout if obs_layout is not None else _obs_layout(model),
            "source": {"num_timesteps": int(getattr(model, "num_timesteps", 0)),
                       "sb3_version": _version("stable-baselines3"), "torch_version": torch.__version__,
                       "zip_sha256": zip_sha256, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, allow_nan=False))
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            _rmtree(old)
        else:
            tmp.rename(path)
    except BaseException:
        _rmtree(tmp)
        raise
    return path


def _acting_network(algo: str, policy: Any) -> tuple[Any, dict[str, Any]]:
    """The module whose tensors the bundle stores and the manifest's ``policy`` section."""
    net = {"DQN": "q_net", "QRDQN": "quantile_net"}.get(algo)
    activation = policy.activation_fn.__name__
    if activation not in ACTIVATIONS:
        raise BundleError(f"activation {activation} is not in the bundle's allow-list {ACTIVATIONS}")
    extractor = type((getattr(policy, net) if net else policy).features_extractor).__name__
    if extractor != "FlattenExtractor":
        raise BundleError(f"features extractor {extractor}: only FlattenExtractor can be bundled")
    out: dict[str, Any] = {"class": type(policy).__name__, "activation_fn": activation,
                           "features_extractor": extractor, "normalize_images": bool(policy.normalize_images)}
    if algo == "DQN":
        out["net_arch"] = [int(x) for x in policy.net_arch]
        return policy.q_net, out
    if algo == "QRDQN":
        risk = getattr(policy, "risk", None)
        out.update(net_arch=[int(x) for x in policy.net_arch], n_quantiles=int(policy.n_quantiles),
                   risk={"measure": risk.name if risk else "mean", "cvar_alpha": float(risk.alpha) if risk else 1.0,
                         "risk_lambda": float(risk.lam) if risk else 0.0})
        return policy.quantile_net, out
    arch = policy.net_arch
    if isinstance(arch, dict):
        arch = {"pi": [int(x) for x in arch.get("pi", [])], "vf": [int(x) for x in arch.get("vf", [])]}
    else:
        arch = [int(x) for x in arch]
    if getattr(policy, "use_sde", False):
        raise BundleError("gSDE actor-critic policies cannot be bundled")
    out.update(net_arch=arch, share_features_extractor=bool(policy.share_features_extractor))
    return policy, out


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p, ignore_errors=True)


def _version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


# -------------------------------------------------------------------------------------------- load
def read_manifest(path: str | Path) -> dict[str, Any]:
    """The bundle's manifest, checked for format and size (no file digests: see :func:`verify_bundle`)."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path}: not a policy bundle (no {MANIFEST})")
    size = mpath.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{mpath}: {size:,} bytes, more than a manifest may have ({MAX_MANIFEST_BYTES:,})")
    try:
        m = json.loads(mpath.read_text())
    except ValueError as e:
        raise BundleError(f"{mpath}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BundleError(f"{mpath}: format is {m.get('format') if isinstance(m, dict) else None!r}, "
                          f"expected {FORMAT!r}")
    if m.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{mpath}: format_version {m.get('format_version')!r}; this version reads "
                          f"{FORMAT_VERSION}")
    return m


def verify_bundle(path: str | Path) -> dict[str, Any]:
    """The manifest, after checking every listed file's sha256 (and that the weights are listed)."""
    path = Path(path)
    m = read_manifest(path)
    files = m.get("files") or {}
    if WEIGHTS not in files:
        raise BundleError(f"{path / MANIFEST}: files lists no {WEIGHTS}")
    for name, info in files.items():
        if "/" in name or "\\" in name or name in (".", "..", MANIFEST):
            raise BundleError(f"{path / MANIFEST}: file name {name!r} is not a plain file of the bundle")
        f = path / name
        if not f.is_file():
            raise BundleError(f"{f}: listed in the manifest but missing")
        actual = _sha256(f)
        if actual != str(info.get("sha256", "")).lower():
            raise IntegrityError(f"policy bundle file {f} failed its integrity check: sha256 is {actual}, the "
                                 f"manifest records {info.get('sha256')}; refusing to load it")
    return m


def _layers(x: Any, what: str) -> list[int]:
    if not isinstance(x, list) or not all(isinstance(v, int) and 0 < v <= 1 << 16 for v in x):
        raise BundleError(f"{what} {x!r}: expected a list of layer widths")
    return list(x)


def _common(p: dict[str, Any], where: str) -> dict[str, Any]:
    """Constructor arguments every policy shares, validated: activation (allow-list), extractor."""
    import torch

    act = p.get("activation_fn")
    if act not in ACTIVATIONS:
        raise BundleError(f"{where}: policy.activation_fn {act!r} is not one of {ACTIVATIONS}")
    if p.get("features_extractor", "FlattenExtractor") != "FlattenExtractor":
        raise BundleError(f"{where}: policy.features_extractor {p.get('features_extractor')!r}: only FlattenExtractor")
    return {"activation_fn": getattr(torch.nn, act), "normalize_images": bool(p.get("normalize_images", True))}


def _build(algo: str, m: dict[str, Any], obs_space: Any, act_space: Any, where: str) -> tuple[Any, Any]:
    """``(policy, module the tensors load into)`` rebuilt from the manifest (module docstring)."""
    p = m.get("policy") or {}
    kw = _common(p, where)
    if algo == "DQN":
        from stable_baselines3.dqn.policies import DQNPolicy

        pol = DQNPolicy(obs_space, act_space, lr_schedule=lambda _: 0.0,
                        net_arch=_layers(p.get("net_arch"), f"{where}: policy.net_arch"), **kw)
        return pol, pol.q_net
    if algo == "QRDQN":
        from .qrdqn import RiskAwareQRDQNPolicy

        r = p.get("risk") or {}
        nq = p.get("n_quantiles")
        if not isinstance(nq, int) or not 0 < nq <= 10_000:
            raise BundleError(f"{where}: policy.n_quantiles {nq!r}: expected a positive integer")
        if r.get("measure") not in MEASURES:
            raise BundleError(f"{where}: policy.risk.measure {r.get('measure')!r} is not one of {MEASURES}")
        try:
            pol = RiskAwareQRDQNPolicy(obs_space, act_space, lr_schedule=lambda _: 0.0, n_quantiles=nq,
                                       net_arch=_layers(p.get("net_arch"), f"{where}: policy.net_arch"),
                                       risk_measure=r["measure"], cvar_alpha=float(r.get("cvar_alpha", 1.0)),
                                       risk_lambda=float(r.get("risk_lambda", 0.0)), **kw)
        except (TypeError, ValueError) as e:
            raise BundleError(f"{where}: policy.risk: {e}") from None
        return pol, pol.quantile_net
    from stable_baselines3.common.policies import ActorCriticPolicy

    arch = p.get("net_arch")
    if isinstance(arch, dict):
        if set(arch) - {"pi", "vf"}:
            raise BundleError(f"{where}: policy.net_arch keys {sorted(arch)}: only pi, vf")
        arch = {k: _layers(arch.get(k, []), f"{where}: policy.net_arch.{k}") for k in ("pi", "vf")}
    else:
        arch = _layers(arch, f"{where}: policy.net_arch")
    pol = ActorCriticPolicy(obs_space, act_space, lr_schedule=lambda _: 0.0, net_arch=arch,
                            share_features_extractor=bool(p.get("share_features_extractor", True)), **kw)
    return pol, pol


class BundlePolicy:
    """A policy rebuilt from a bundle, with the inference part of the SB3 model interface."""

    def __init__(self, policy: Any, manifest: dict[str, Any], path: Path):
        self.policy = policy
        self.manifest = manifest
        self.path = path
        self.observation_space = policy.observation_space
        self.action_space = policy.action_space
        self.num_timesteps = int((manifest.get("source") or {}).get("num_timesteps") or 0)
        self.device = "cpu"

    @property
    def algorithm(self) -> str:
        return str(self.manifest.get("algorithm"))

    @property
    def q_net(self):
        return self.policy.q_net

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Greedy actions (``deterministic`` is accepted for SB3 compatibility; a bundle is always greedy)."""
        return self.policy.predict(observation, state, episode_start, deterministic=True)

    def q_values(self, observation: Any) -> np.ndarray:
        """Q-values ``[N, n_actions]`` (DQN bundles only)."""
        import torch

        if self.algorithm != "DQN":
            raise BundleError(f"{self.path}: q_values is for DQN bundles; this one holds a {self.algorithm}")

        obs, _ = self.policy.obs_to_tensor(np.asarray(observation, dtype=np.float32))
        with torch.no_grad():
            return self.policy.q_net(obs).cpu().numpy()


def load_policy(path: str | Path) -> BundlePolicy:
    """Load a bundle directory (or the bundle next to an SB3 zip) without unpickling; see module docstring."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix == ".zip":
        path = bundle_path_for(path)
    m = verify_bundle(path)
    algo = m.get("algorithm")
    if algo not in SUPPORTED:
        raise BundleError(f"{path / MANIFEST}: algorithm {algo!r}; this version loads {', '.join(SUPPORTED)}")
    obs_space = space_from_json(m.get("observation_space") or {}, f"{path / MANIFEST}: observation_space")
    act_space = space_from_json(m.get("action_space") or {}, f"{path / MANIFEST}: action_space")
    policy, net = _build(str(algo), m, obs_space, act_space, str(path / MANIFEST))
    try:
        state = load_file(str(path / WEIGHTS), device="cpu")
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error type for a malformed file
        raise BundleError(f"{path / WEIGHTS}: not a safetensors file ({type(e).__name__}: {e})") from None
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        raise BundleError(f"{path / WEIGHTS}: tensors {got} do not match the network the manifest describes {want}")
    net.load_state_dict(state, strict=True)
    for target in ("q_net_target", "quantile_net_target"):  # value-based: the target network = the online one
        if hasattr(policy, target):
            getattr(policy, target).load_state_dict(state, strict=True)
    policy.set_training_mode(False)
    return BundlePolicy(policy, m, path)
