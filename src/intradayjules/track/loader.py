"""The one verified model loader: every command and library call that loads a policy comes here.

``load_policy(ref, trust_pickle=False)`` accepts

- ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID[/model]``: fetched (or taken from
  the sha256-addressed cache) and checked against every digest the tracking database records
  (``registry.resolve_model``: SB3 zip, ``MLmodel``, bundle manifest, weights);
- a policy bundle directory (``manifest.json`` + ``weights.safetensors``);
- a run directory (its ``model.bundle/``, else its ``model.zip``);
- a pyfunc model directory (``MLmodel`` + ``data/sb3/``);
- an SB3 ``.zip``: the bundle beside it (``model.zip`` -> ``model.bundle/``), which must record this
  zip's sha256 as its source.

and returns a :class:`~intradayjules.agents.bundle.BundlePolicy` (the SB3-like ``predict``; nothing was
unpickled). Without a bundle it refuses, unless ``trust_pickle=True`` (``--trust-pickle``): then the
SB3 zip is loaded after its checks (a recorded registry digest, a ``<zip>.hmac`` signature and a
``<zip>.sha256`` sidecar, each when it exists, must match). Loading never goes through MLflow's
``pyfunc.load_model`` (whose ``MLmodel`` names the code to import).

``resolve_bundle(ref)`` stops short of loading: the verified bundle directory (what a live loop runs,
``live/policy.py``) and, for a registry reference, the model name, version and run.

``load_model`` wraps the result in the pyfunc contract (``predict(obs_batch) -> actions``);
``load_sb3`` returns the Stable-Baselines3 object itself and therefore always needs ``trust_pickle``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agents import integrity
from ..agents.algos import load_model as load_sb3_model
from ..agents.bundle import BundlePolicy, bundle_path_for, is_bundle, load_policy as load_bundle, verify_bundle
from ..errors import IntegrityError
from .lineage import sha256_file
from .registry import ResolvedModel, parse_ref, resolve_model
from .sb3_pyfunc import SB3Policy, sb3_class

RUN_DIR_BUNDLE = "model.bundle"
RUN_DIR_ZIP = "model.zip"


def _refuse(what: str) -> IntegrityError:
    return IntegrityError(
        f"{what} has no policy bundle, only an SB3 zip: loading that unpickles it, which runs whatever code "
        "it holds. Refusing. Load the model.bundle/ that training writes next to model.zip, or pass "
        "--trust-pickle (trust_pickle=True) if you made this file yourself")


def _resolve(ref: str, tracker: Any, cfg: Any, dst: str | Path | None) -> ResolvedModel:
    if tracker is None:
        from .mlflow_tracking import make_tracker

        tracker = make_tracker(cfg, enabled=True)
    return resolve_model(tracker, ref, dst)


def _zip_with_bundle(zip_path: Path, trust_pickle: bool, device: str) -> Any:
    bundle = bundle_path_for(zip_path)
    if is_bundle(bundle):
        recorded = (verify_bundle(bundle).get("source") or {}).get("zip_sha256")
        actual = sha256_file(zip_path)
        if recorded and recorded != actual:
            raise IntegrityError(f"{zip_path} (sha256 {actual}) is not the model its bundle {bundle} was exported "
                                 f"from (sha256 {recorded}); refusing to load either")
        return load_bundle(bundle)
    if integrity.signature_state(zip_path) == "valid":  # written and signed by this project under your key
        return load_sb3_model(zip_path, device=device)  # (algorithms without a bundle: agents/bundle.py)
    if not trust_pickle:
        raise _refuse(f"model {zip_path}")
    return load_sb3_model(zip_path, device=device, trust_pickle=True)  # .sha256 checked when present


def load_policy(ref: str | Path, *, tracker: Any = None, cfg: Any = None, trust_pickle: bool = False,
                device: str = "cpu", dst: str | Path | None = None) -> BundlePolicy | Any:
    """The policy ``ref`` names, verified (see module docstring)."""
    ref = str(ref)
    kind = parse_ref(ref)[0]
    if kind != "path":
        r = _resolve(ref, tracker, cfg, dst)
        if r.bundle_path is not None:
            return load_bundle(r.bundle_path)
        if not trust_pickle:
            raise _refuse(f"model {ref}")
        return integrity.load_sb3(r.zip_path, trust_pickle=True, algo=r.algo, device=device)
    path = Path(ref)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {ref} (and it is not a models:/ or runs:/ reference)")
    if path.is_dir():
        if is_bundle(path):
            return load_bundle(path)
        if (path / RUN_DIR_ZIP).is_file():  # a run directory: its model (the bundle beside the zip)
            return _zip_with_bundle(path / RUN_DIR_ZIP, trust_pickle, device)
        if is_bundle(path / RUN_DIR_BUNDLE):
            return load_bundle(path / RUN_DIR_BUNDLE)
        r = resolve_model(None, ref)  # a pyfunc model directory, checked against its sb3.json
        if r.bundle_path is not None:
            return load_bundle(r.bundle_path)
        if not trust_pickle:
            raise _refuse(f"model directory {path}")
        return integrity.load_sb3(r.zip_path, trust_pickle=True, algo=r.algo, device=device)
    return _zip_with_bundle(path, trust_pickle, device)


@dataclass
class ResolvedBundle:
    """A verified policy bundle on local disk and where it came from (``name``/``version``/``run_id`` for a
    registry or run reference, None for a local path)."""

    ref: str
    path: Path
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def resolve_bundle(ref: str | Path, *, tracker: Any = None, cfg: Any = None,
                   dst: str | Path | None = None) -> ResolvedBundle:
    """The policy bundle ``ref`` names (any reference :func:`load_policy` takes), verified (every file's
    sha256 against its manifest; for the registry also the manifest against the recorded digest),
    without loading it. A model without a bundle is an ``IntegrityError`` (no pickle fallback)."""
    ref = str(ref)
    if parse_ref(ref)[0] != "path":
        r = _resolve(ref, tracker, cfg, dst)
        if r.bundle_path is None:
            raise _refuse(f"model {ref}")
        return ResolvedBundle(ref, Path(r.bundle_path), r.name, r.version, r.run_id, dict(r.tags))
    path = Path(ref)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {ref} (and it is not a models:/ or runs:/ reference)")
    if path.is_file():  # an SB3 zip: the bundle beside it, exported from this zip
        cand = bundle_path_for(path)
        if is_bundle(cand):
            recorded = (verify_bundle(cand).get("source") or {}).get("zip_sha256")
            if recorded and recorded != sha256_file(path):
                raise IntegrityError(f"{path} is not the model its bundle {cand} was exported from; refusing it")
            return ResolvedBundle(ref, cand)
        raise _refuse(f"model {ref}")
    for cand in (path, path / RUN_DIR_BUNDLE):
        if is_bundle(cand):
            verify_bundle(cand)
            return ResolvedBundle(ref, cand)
    if path.is_dir():
        r = resolve_model(None, ref)  # a pyfunc model directory
        if r.bundle_path is not None:
            return ResolvedBundle(ref, Path(r.bundle_path))
    raise _refuse(f"model {ref}")


def load_model(tracker: Any, ref: str, dst: str | Path | None = None, trust_pickle: bool = False) -> SB3Policy:
    """:func:`load_policy` behind the pyfunc contract (``predict(obs_batch) -> actions``)."""
    return SB3Policy(load_policy(ref, tracker=tracker, trust_pickle=trust_pickle, dst=dst))


def load_sb3(tracker: Any, ref: str, dst: str | Path | None = None, device: str = "cpu",
             trust_pickle: bool = False) -> Any:
    """The Stable-Baselines3 model object of ``ref`` (verified like :func:`load_policy`). It is an
    unpickled SB3 zip, so ``trust_pickle=True`` is required; use :func:`load_policy` otherwise."""
    if not trust_pickle:
        raise IntegrityError(f"load_sb3({ref!r}) unpickles the SB3 zip; pass trust_pickle=True if you trust its "
                             "author, or use load_policy (the bundle, no unpickling)")
    kind = parse_ref(str(ref))[0]
    if kind == "path":
        r = resolve_model(None, str(ref))
        integrity.verify(r.zip_path, "SB3 model", trust_pickle=True)
    else:
        r = _resolve(str(ref), tracker, None, dst)
    return sb3_class(r.algo).load(str(r.zip_path), device=device)
