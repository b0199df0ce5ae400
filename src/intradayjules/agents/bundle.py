"""The policy bundle: a trained policy as JSON + tensors, loadable without unpickling anything.

A Stable-Baselines3 ``.zip`` holds cloudpickled objects (spaces, schedules, policy kwargs), so loading
one runs whatever code its author put there. The bundle is the project's own format, a directory::

    model.bundle/
      manifest.json          format, algorithm, spaces, network, file digests (plain JSON)
      weights.safetensors    the Q-network's tensors (safetensors: a header + raw bytes, no code)

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

Infinite space bounds are written as the strings ``"inf"`` / ``"-inf"`` (strict JSON).

``load_policy(path)`` reads the manifest (at most 1 MiB), checks every file's sha256, rebuilds the SB3
``DQNPolicy`` from the manifest (activation from an allow-list, never an import path) and loads the
tensors (names and shapes must match exactly). The result, :class:`BundlePolicy`, answers
``predict(obs, deterministic=True) -> (actions, None)`` like the SB3 model (always greedy) and
``q_values(obs)``; its greedy actions and Q-values equal the SB3 model's (tests/agents/test_bundle.py).
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
SUPPORTED = ("DQN",)


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
    """Write ``model`` (an SB3 DQN) as a bundle directory at ``path`` (replaced atomically)."""
    import torch
    from safetensors.torch import save_file

    algo = type(model).__name__
    if algo not in SUPPORTED:
        raise BundleError(f"cannot bundle a {algo}: supported algorithms are {', '.join(SUPPORTED)}")
    policy = model.policy
    q_net = policy.q_net
    activation = policy.activation_fn.__name__
    if activation not in ACTIVATIONS:
        raise BundleError(f"activation {activation} is not in the bundle's allow-list {ACTIVATIONS}")
    extractor = type(q_net.features_extractor).__name__
    if extractor != "FlattenExtractor":
        raise BundleError(f"features extractor {extractor}: only FlattenExtractor can be bundled")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in q_net.state_dict().items()}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "algorithm": algo,
            "policy": {"class": type(policy).__name__, "net_arch": [int(x) for x in policy.net_arch],
                       "activation_fn": activation, "features_extractor": extractor,
                       "normalize_images": bool(policy.normalize_images)},
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


def _build_dqn(m: dict[str, Any], obs_space: Any, act_space: Any):
    import torch
    from stable_baselines3.dqn.policies import DQNPolicy

    p = m.get("policy") or {}
    act = p.get("activation_fn")
    if act not in ACTIVATIONS:
        raise BundleError(f"policy.activation_fn {act!r} is not one of {ACTIVATIONS}")
    if p.get("features_extractor", "FlattenExtractor") != "FlattenExtractor":
        raise BundleError(f"policy.features_extractor {p.get('features_extractor')!r}: only FlattenExtractor")
    net_arch = p.get("net_arch")
    if not isinstance(net_arch, list) or not all(isinstance(x, int) and 0 < x <= 1 << 16 for x in net_arch):
        raise BundleError(f"policy.net_arch {net_arch!r}: expected a list of layer widths")
    return DQNPolicy(obs_space, act_space, lr_schedule=lambda _: 0.0, net_arch=net_arch,
                     activation_fn=getattr(torch.nn, act), normalize_images=bool(p.get("normalize_images", True)))


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
    def q_net(self):
        return self.policy.q_net

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Greedy actions (``deterministic`` is accepted for SB3 compatibility; a bundle is always greedy)."""
        return self.policy.predict(observation, state, episode_start, deterministic=True)

    def q_values(self, observation: Any) -> np.ndarray:
        import torch

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
    policy = _build_dqn(m, obs_space, act_space)
    state = load_file(str(path / WEIGHTS), device="cpu")
    want = {k: tuple(v.shape) for k, v in policy.q_net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        raise BundleError(f"{path / WEIGHTS}: tensors {got} do not match the network the manifest describes {want}")
    policy.q_net.load_state_dict(state, strict=True)
    policy.q_net_target.load_state_dict(state, strict=True)
    policy.set_training_mode(False)
    return BundlePolicy(policy, m, path)
