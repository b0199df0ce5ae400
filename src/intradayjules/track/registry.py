"""Model registry: SB3 models as MLflow pyfunc versions with lineage, aliases, verified loading.

Does not import mlflow: it works through a :class:`~.mlflow_tracking.Tracker` (its ``client`` and
helper methods). Model references accepted everywhere a model is taken:

- ``models:/NAME@ALIAS`` and ``models:/NAME/VERSION`` (registry),
- ``runs:/RUN_ID`` or ``runs:/RUN_ID/model`` (a run's logged model),
- a local SB3 ``.zip`` (verified against ``<zip>.sha256`` when that sidecar exists) or a local pyfunc
  model directory (verified against its ``data/sb3/sb3.json``).

A logged model is a pyfunc directory ``model/`` whose data folder ``data/sb3/`` holds the policy bundle
(``bundle/``: JSON manifest + safetensors, loaded without unpickling), the SB3 zip and ``sb3.json``.
A version's tags hold the lineage (data fingerprint, feature store key / version, git commit and dirty
flag, package version, config sha256) and the digests of what was logged: ``intradayjules.model_sha256``
(the SB3 zip), ``intradayjules.bundle_sha256`` (the bundle's manifest, which records the weights'
sha256) and ``intradayjules.mlmodel_sha256`` (the ``MLmodel`` file). :func:`resolve_model` recomputes
every recorded digest on every call (cached or not) and raises :class:`~.lineage.IntegrityError` on
any difference; a cached copy that fails is fetched again once before giving up. Loading
(``track/loader.py``) uses the bundle; the SB3 zip only with ``trust_pickle``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..agents import integrity
from ..agents.bundle import load_policy as load_bundle_policy
from ..agents.bundle import (MANIFEST, SUPPORTED as BUNDLE_SUPPORTED, WEIGHTS, bundle_path_for, export_bundle, is_bundle,
                             verify_bundle)
from ..errors import IntradayJulesError
from .lineage import (TAG_BUNDLE_SHA256, TAG_CONFIG_SHA256, TAG_MLMODEL_SHA256, TAG_MODEL_SHA256, TAG_PREFIX,
                      IntegrityError, Lineage, package_version, sha256_file, verify_sha256)
from .mlflow_tracking import TAG_SHA256_PREFIX, Run, Tracker, make_tracker
from .sb3_pyfunc import BUNDLE_DIR, META_FILE, MODEL_FILE, SB3Policy, bundle_in, zip_algo

log = logging.getLogger(__name__)

DEFAULT_ALIAS = "champion"
MODEL_ARTIFACT = "model"          # artifact folder of the pyfunc model inside a run
SB3_DATA_DIR = "sb3"              # pyfunc data folder name: model/data/sb3/{model.zip, sb3.json}
CONFIG_ARTIFACT = "lineage/config.json"
RUN_DIR_MODEL = "model.zip"       # a run directory uploaded whole keeps its SB3 model here
RUN_DIR_BUNDLE = "model.bundle"   # ... and its policy bundle here
LOADER_MODULE = "intradayjules.track.sb3_pyfunc"
_LINEAGE_SKIP = (TAG_SHA256_PREFIX, TAG_PREFIX + "worker_", TAG_PREFIX + "heartbeat", TAG_PREFIX + "trial_")


class RegistryError(IntradayJulesError):
    """A model reference cannot be resolved, or a registry operation is not possible."""


@dataclass
class ResolvedModel:
    """A model fetched to local disk and verified. ``zip_path`` is the SB3 file, ``model_dir`` the pyfunc
    directory (None for a bare zip); ``verified`` is False only for a bare zip without a recorded digest.
    ``bundle_path``: the policy bundle (verified for registry and pyfunc models; next to a bare zip it
    is only located here, the loader verifies it), None when there is none."""

    ref: str
    zip_path: Path
    model_dir: Path | None
    sha256: str
    verified: bool
    algo: str = "DQN"
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    bundle_path: Path | None = None


@dataclass
class VersionInfo:
    name: str
    version: str
    run_id: str | None
    aliases: list[str]
    tags: dict[str, str]
    source: str
    status: str
    created_ms: int | None

    @classmethod
    def of(cls, mv) -> "VersionInfo":
        return cls(name=mv.name, version=str(mv.version), run_id=mv.run_id, aliases=list(mv.aliases or []),
                   tags=dict(mv.tags or {}), source=mv.source, status=str(mv.status),
                   created_ms=mv.creation_timestamp)

    def lineage(self) -> Lineage:
        return Lineage.from_tags(self.tags)


def _pip_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for pkg in ("stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy"):  # sb3-contrib: QR-DQN
        try:
            reqs.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            pass
    return reqs + [f"intradayjules=={package_version()}"]


# ------------------------------------------------------------------------------------------ logging
def _copy_bundle(zip_path: Path, digest: str, dst: Path, bundle: str | Path | None, trust_pickle: bool,
                 algo: str) -> None:
    """Put the policy bundle of ``zip_path`` at ``dst``: ``bundle`` (default: ``<stem>.bundle`` next to
    the zip) verified and checked to come from this zip; without one, exported from the zip, which
    is then unpickled, so only when it is signed (``agents/integrity.py``) or ``trust_pickle``."""
    if algo not in BUNDLE_SUPPORTED:  # QR-DQN, PPO, A2C: the zip only (agents/bundle.py), loaded as trusted
        return
    src = Path(bundle) if bundle is not None else bundle_path_for(zip_path)
    if is_bundle(src):
        m = verify_bundle(src)
        recorded = (m.get("source") or {}).get("zip_sha256")
        if recorded and recorded != digest:
            raise IntegrityError(f"policy bundle {src} was exported from a zip with sha256 {recorded}, but "
                                 f"{zip_path} has sha256 {digest}: they are not the same model")
        dst.mkdir(parents=True)
        for name in (MANIFEST, *m["files"]):
            shutil.copyfile(src / name, dst / name)
        return
    model = integrity.load_sb3(zip_path, trust_pickle=trust_pickle, algo=algo, device="cpu")
    export_bundle(model, dst, zip_sha256=digest)


def model_io_example(zip_path: str | Path, algo: str = "DQN", input_example: Any = None,
                     trust_pickle: bool = False, bundle: str | Path | None = None) -> tuple[Any, Any]:
    """An input example for the pyfunc model of ``zip_path`` and the actions it predicts for it.

    ``input_example`` defaults to one observation drawn from the model's observation space with seed 0
    (shape ``(1, *observation_shape)``, the space's dtype): the shape and dtype are what a signature
    needs; pass a real observation (a batch) to show one in the UI."""
    src = Path(bundle) if bundle is not None else bundle_path_for(zip_path)
    if is_bundle(src):  # the pickle-free policy (DQN)
        model = load_bundle_policy(src)
    else:  # signed by this project, or trust_pickle
        model = integrity.load_sb3(zip_path, trust_pickle=trust_pickle, algo=algo, device="cpu")
    space = model.observation_space
    if input_example is None:
        space.seed(0)
        input_example = np.asarray(space.sample(), dtype=space.dtype)[None]
    input_example = np.asarray(input_example, dtype=space.dtype)
    if input_example.shape == tuple(space.shape):
        input_example = input_example[None]
    return input_example, SB3Policy(model).predict(input_example)


def log_sb3_model(run: Run, zip_path: str | Path, algo: str | None = None, lineage: Lineage | None = None, *,
                  bundle: str | Path | None = None, trust_pickle: bool = False, input_example: Any = None) -> str:
    """Log an SB3 zip and its policy bundle into ``run`` as the pyfunc model ``model/`` (observation batch
    -> actions), tag the run with their digests (``intradayjules.model_sha256``, ``bundle_sha256``,
    ``mlmodel_sha256``) and, given ``lineage``, its lineage tags and ``lineage/config.json``. The bundle
    is ``bundle`` or the one next to the zip (``model.bundle/``, written by the trainer); see
    :func:`_copy_bundle` for a zip without one. ``algo``: the SB3 class name; None reads it from the zip.
    With a tensor signature and an input example (:func:`model_io_example`). Returns the zip's sha256."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"SB3 model {zip_path} does not exist")
    algo = algo or zip_algo(zip_path)
    digest = sha256_file(zip_path)
    example, actions = model_io_example(zip_path, algo, input_example, trust_pickle, bundle)
    with tempfile.TemporaryDirectory(prefix="ij-model-") as tmp:
        data = Path(tmp) / SB3_DATA_DIR
        data.mkdir()
        shutil.copyfile(zip_path, data / MODEL_FILE)
        _copy_bundle(zip_path, digest, data / BUNDLE_DIR, bundle, trust_pickle, algo)
        has_bundle = (data / BUNDLE_DIR / MANIFEST).is_file()  # DQN; other algorithms ship the zip only
        bundle_digest = sha256_file(data / BUNDLE_DIR / MANIFEST) if has_bundle else ""
        (data / META_FILE).write_text(json.dumps({"algo": algo, "sha256": digest, "bundle_sha256": bundle_digest}))
        model_dir = run.tracker.save_pyfunc(Path(tmp) / MODEL_ARTIFACT, data, LOADER_MODULE, _pip_requirements(),
                                            input_example=example, output_example=actions)
        mlmodel_digest = sha256_file(Path(model_dir) / "MLmodel")
        run.log_artifacts(model_dir, MODEL_ARTIFACT)
    tags = {TAG_MODEL_SHA256: digest, TAG_BUNDLE_SHA256: bundle_digest, TAG_MLMODEL_SHA256: mlmodel_digest,
            TAG_PREFIX + "algo": algo}
    if lineage is not None:
        tags.update(lineage.tags())
        if lineage.config is not None:
            run.log_text(lineage.config_json(), CONFIG_ARTIFACT)
    run.set_tags(tags)
    return digest


# ----------------------------------------------------------------------------------------- registry
def register_model(tracker: Tracker, run_id: str, sb3_zip: str | Path | None = None, *,
                   lineage: Lineage | None = None, name: str | None = None, alias: str | None = "",
                   algo: str | None = None, trust_pickle: bool = False) -> VersionInfo:
    """Make the model of run ``run_id`` a new version of registered model ``name`` (default
    ``tracking.registered_model``) and point ``alias`` at it (default ``tracking.alias``, i.e.
    ``champion``; None: no alias). With ``sb3_zip`` the zip (and its bundle) is logged into the run
    first; without it the run must already hold one (``log_sb3_model``) or have uploaded its run
    directory (``model.zip`` and ``model.bundle/``, each verified against the digests recorded when they
    were uploaded). ``trust_pickle``: see :func:`log_sb3_model`."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415  (only reached with tracking on)

    name = name or tracker.target.registered_model
    if alias == "":
        alias = tracker.target.alias
    client = tracker.client
    if sb3_zip is not None:
        log_sb3_model(tracker.get_run(run_id), sb3_zip, algo=algo, lineage=lineage, trust_pickle=trust_pickle)
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise RegistryError(f"run {run_id} not found at {tracker.uri}: {e.message}") from None
    run_tags = dict(run.data.tags)
    if TAG_MODEL_SHA256 not in run_tags and TAG_SHA256_PREFIX + RUN_DIR_MODEL in run_tags:
        # a run that uploaded its run directory (``run.log_artifacts(runs/<name>)``): wrap its model.zip,
        # verified against the digest recorded when it was uploaded, as the pyfunc model
        with tempfile.TemporaryDirectory(prefix="ij-register-") as tmp:
            local = tracker.download_run(run_id, RUN_DIR_MODEL, tmp)
            verify_sha256(local, run_tags[TAG_SHA256_PREFIX + RUN_DIR_MODEL], what=f"run {run_id} {RUN_DIR_MODEL}")
            bundle = _download_run_bundle(tracker, run_id, run_tags, Path(tmp))
            log_sb3_model(tracker.get_run(run_id), local, algo=algo, bundle=bundle, trust_pickle=trust_pickle)
        run = client.get_run(run_id)
        run_tags = dict(run.data.tags)
    if TAG_MODEL_SHA256 not in run_tags:
        raise RegistryError(f"run {run_id} has no intradayjules SB3 model (no {TAG_MODEL_SHA256} tag): "
                            "log one with log_sb3_model(run, zip) or pass the zip to register_model")
    tags = {k: v for k, v in run_tags.items() if k.startswith(TAG_PREFIX) and not k.startswith(_LINEAGE_SKIP)}
    tags[TAG_PREFIX + "run_id"] = run_id
    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{run.info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"
    mv = client.create_model_version(name, source, run_id=run_id, tags=tags)
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return VersionInfo.of(client.get_model_version(name, mv.version))


def _download_run_bundle(tracker: Tracker, run_id: str, run_tags: dict[str, str], dst: Path) -> Path | None:
    """The ``model.bundle/`` a run uploaded with its run directory, each file verified against the digest
    recorded at upload; None when the run uploaded no bundle."""
    wanted = [TAG_SHA256_PREFIX + f"{RUN_DIR_BUNDLE}/{n}" for n in (MANIFEST, WEIGHTS)]
    if not all(t in run_tags for t in wanted):
        return None
    local = tracker.download_run(run_id, RUN_DIR_BUNDLE, dst / "bundle-dl")
    for name, tag in zip((MANIFEST, WEIGHTS), wanted):
        verify_sha256(local / name, run_tags[tag], what=f"run {run_id} {RUN_DIR_BUNDLE}/{name}")
    return local


def promote(tracker: Tracker, name: str, version: str | int, alias: str = DEFAULT_ALIAS) -> VersionInfo:
    """Point ``alias`` of ``name`` at ``version`` (moving it from any other version)."""
    get_version(tracker, name, str(version))  # clear error for an unknown name/version
    tracker.client.set_registered_model_alias(name, alias, str(version))
    return get_version(tracker, name, str(version))


def get_version(tracker: Tracker, name: str, ref: str) -> VersionInfo:
    """Version ``ref`` (a number, or ``@alias`` / an alias name) of registered model ``name``."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        if ref.lstrip("@").isdigit() and not ref.startswith("@"):
            mv = tracker.client.get_model_version(name, ref)
        else:
            mv = tracker.client.get_model_version_by_alias(name, ref.lstrip("@"))
    except MlflowException as e:
        raise RegistryError(f"model {name!r} version/alias {ref!r} not found at {tracker.uri}: {e.message}") from None
    return VersionInfo.of(mv)


def list_models(tracker: Tracker) -> list[dict[str, Any]]:
    """Registered models: name, number of versions, latest version, aliases ({alias: version})."""
    out = []
    for rm in tracker.client.search_registered_models(max_results=1000):
        versions = list_versions(tracker, rm.name)
        out.append({"name": rm.name, "versions": len(versions),
                    "latest": max((int(v.version) for v in versions), default=None),
                    "aliases": {a: v.version for v in versions for a in v.aliases}})
    return sorted(out, key=lambda d: d["name"])


def list_versions(tracker: Tracker, name: str) -> list[VersionInfo]:
    mvs = tracker.client.search_model_versions(f"name = '{name}'")
    infos = []
    for mv in mvs:  # search results may omit aliases: fetch each version
        infos.append(VersionInfo.of(tracker.client.get_model_version(name, mv.version)))
    return sorted(infos, key=lambda v: int(v.version))


# ---------------------------------------------------------------------------------------- resolving
def parse_ref(ref: str) -> tuple[str, str, str | None]:
    """``('registry', name, version_or_@alias)``, ``('run', run_id, None)`` or ``('path', ref, None)``."""
    if ref.startswith("models:/"):
        body = ref[len("models:/"):].strip("/")
        if "@" in body:
            name, alias = body.rsplit("@", 1)
            if name and alias:
                return "registry", name, "@" + alias
        elif "/" in body:
            name, version = body.rsplit("/", 1)
            if name and version.isdigit():
                return "registry", name, version
        raise RegistryError(f"model reference {ref!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    if ref.startswith("runs:/"):
        parts = ref[len("runs:/"):].strip("/").split("/")
        if not parts[0]:
            raise RegistryError(f"model reference {ref!r}: expected runs:/RUN_ID[/model]")
        return "run", parts[0], None
    return "path", ref, None


def _find_zip(model_dir: Path) -> tuple[Path, dict]:
    metas = sorted(model_dir.glob(f"data/*/{META_FILE}"))
    if not metas:
        raise RegistryError(f"{model_dir}: not an intradayjules SB3 pyfunc model (no data/*/{META_FILE})")
    return metas[0].parent / MODEL_FILE, json.loads(metas[0].read_text())


def _verify_download(local: Path, ref: str, tags: dict[str, str]) -> tuple[Path, dict, Path | None]:
    """Check a fetched pyfunc directory against every digest the tracking database records for it:
    the SB3 zip (and ``sb3.json``'s copy of its digest), ``MLmodel``, the bundle's manifest and, through
    the manifest, its weights. Returns (zip path, sb3.json, bundle or None for a version without one)."""
    expected = tags[TAG_MODEL_SHA256]
    zip_path, meta = _find_zip(local)
    verify_sha256(zip_path, expected, what=f"model {ref} file")
    if meta.get("sha256") != expected:
        raise IntegrityError(f"model {ref}: {local}/.../{META_FILE} records sha256 {meta.get('sha256')}, "
                             f"the registry records {expected}; refusing to load it")
    if tags.get(TAG_MLMODEL_SHA256):
        verify_sha256(local / "MLmodel", tags[TAG_MLMODEL_SHA256], what=f"model {ref} MLmodel")
    bundle = None
    if tags.get(TAG_BUNDLE_SHA256):
        if meta.get("bundle_sha256") != tags[TAG_BUNDLE_SHA256]:
            raise IntegrityError(f"model {ref}: {META_FILE} records bundle sha256 {meta.get('bundle_sha256')}, "
                                 f"the registry records {tags[TAG_BUNDLE_SHA256]}; refusing to load it")
        bundle = bundle_in(zip_path.parent, meta)
        if bundle is None:
            raise IntegrityError(f"model {ref}: the registry records a policy bundle, {local} has none")
        verify_bundle(bundle)
    return zip_path, meta, bundle


def _fetch_cached(tracker: Tracker, source: str, cached: Path, ref: str,
                  tags: dict[str, str]) -> tuple[Path, dict, Path | None]:
    """The content-addressed cache entry ``cached``, verified; a missing entry, or one that fails
    verification (a poisoned or half-written cache), is fetched again (to a temporary folder, verified
    there, then renamed into place), so a repaired artifact store heals the cache."""
    if (cached / "MLmodel").exists():
        try:
            return _verify_download(cached, ref, tags)
        except (IntegrityError, RegistryError, OSError, ValueError, KeyError) as e:
            log.warning("cached copy %s of %s failed verification (%s); fetching it again", cached, ref, e)
            _discard(cached)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".dl-", dir=cached.parent) as tmp:
        got = tracker.download(source, tmp)
        _verify_download(got, ref, tags)  # a bad download never enters the cache
        try:
            got.rename(cached)
        except OSError:  # another process cached it first: verified below
            pass
    return _verify_download(cached, ref, tags)


def _discard(path: Path) -> None:
    """Move a cache entry aside and delete it (a rename first, so no reader sees half of it)."""
    trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        path.rename(trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def resolve_model(tracker: Tracker | None, ref: str, dst: str | Path | None = None) -> ResolvedModel:
    """Fetch model ``ref`` to local disk (``dst``, default the sha256-addressed :func:`model_cache_dir`)
    and verify its sha256 against the digest recorded in the tracking database (on every call, cached
    or not). Raises IntegrityError on a mismatch."""
    kind, what, sub = parse_ref(str(ref))
    if kind == "path":
        return _resolve_local(Path(what))
    if tracker is None or not getattr(tracker, "enabled", False):
        raise RegistryError(f"model reference {ref!r} needs tracking (it is disabled: drop --no-track)")
    if kind == "registry":
        info = get_version(tracker, what, sub)
        name, version, run_id, tags, source = info.name, info.version, info.run_id, info.tags, info.source
    else:
        name = version = None
        run_id = what
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        try:
            tags = dict(tracker.client.get_run(run_id).data.tags)
        except MlflowException as e:
            raise RegistryError(f"run {run_id} not found at {tracker.uri}: {e.message}") from None
        source = f"runs:/{run_id}/{MODEL_ARTIFACT}"
    expected = tags.get(TAG_MODEL_SHA256)
    if not expected or not all(c in "0123456789abcdef" for c in expected.lower()) or len(expected) != 64:
        raise RegistryError(f"{ref}: no valid recorded {TAG_MODEL_SHA256}; refusing to load an unverifiable model")
    if dst is not None:
        local = tracker.download(source, dst)
        zip_path, meta, bundle = _verify_download(local, ref, tags)
    else:  # content-addressed cache: downloaded once, verified on every use, re-fetched when it fails
        local = model_cache_dir() / expected.lower()
        zip_path, meta, bundle = _fetch_cached(tracker, source, local, ref, tags)
    return ResolvedModel(ref=str(ref), zip_path=zip_path, model_dir=local, sha256=expected, verified=True,
                         algo=meta.get("algo", "DQN"), name=name, version=version, run_id=run_id, tags=tags,
                         bundle_path=bundle)


def model_cache_dir() -> Path:
    """Where registry models are cached by sha256: ``$INTRADAYJULES_MODEL_CACHE`` or
    ``~/.cache/intradayjules/models``."""
    import os

    env = os.environ.get("INTRADAYJULES_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "intradayjules" / "models"


def _resolve_local(path: Path) -> ResolvedModel:
    if not path.exists():
        raise RegistryError(f"model {path} does not exist (and is not a models:/ or runs:/ reference)")
    if path.is_dir():
        zip_path, meta = _find_zip(path)
        verify_sha256(zip_path, meta["sha256"], what=f"model {path} file")
        bundle = bundle_in(zip_path.parent, meta)
        if bundle is not None:
            verify_bundle(bundle)
        return ResolvedModel(ref=str(path), zip_path=zip_path, model_dir=path, sha256=meta["sha256"],
                             verified=True, algo=meta.get("algo", "DQN"), bundle_path=bundle)
    sibling = bundle_path_for(path)
    bundle = sibling if is_bundle(sibling) else None
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.exists():
        expected = sidecar.read_text().split()[0]
        verify_sha256(path, expected, what=f"model {path}")
        return ResolvedModel(ref=str(path), zip_path=path, model_dir=None, sha256=expected, verified=True,
                             bundle_path=bundle, algo=zip_algo(path))
    return ResolvedModel(ref=str(path), zip_path=path, model_dir=None, sha256=sha256_file(path), verified=False,
                         bundle_path=bundle, algo=zip_algo(path))


def write_sha256_sidecar(path: str | Path) -> Path:
    """Write ``<file>.sha256`` (``sha256sum`` format) so a local model file is verified on load too."""
    path = Path(path)
    side = path.with_name(path.name + ".sha256")
    side.write_text(f"{sha256_file(path)}  {path.name}\n")
    return side


def resolve_model_uri(ref: str, tracker: Tracker | None = None, cfg: Any = None,
                      dst: str | Path | None = None) -> Path:
    """Local, verified SB3 zip for ``ref`` (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``,
    ``runs:/ID``, or a path). Without ``tracker`` one is made from ``cfg`` (None: defaults, i.e.
    ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/runs/mlflow.db``)."""
    if tracker is None and parse_ref(str(ref))[0] != "path":
        tracker = make_tracker(cfg, enabled=True)
    return resolve_model(tracker, str(ref), dst).zip_path


def version_config(tracker: Tracker, info: VersionInfo, dst: str | Path | None = None) -> dict[str, Any]:
    """The resolved config a version was trained with, downloaded from its run and checked against the
    version's ``intradayjules.config_sha256`` tag."""
    import hashlib

    expected = info.tags.get(TAG_CONFIG_SHA256)
    if not info.run_id or not expected:
        raise RegistryError(f"model {info.name} v{info.version} records no config (no run or no "
                            f"{TAG_CONFIG_SHA256} tag): it cannot be rerun")
    with tempfile.TemporaryDirectory(prefix="ij-config-") as tmp:
        text = tracker.download(f"runs:/{info.run_id}/{CONFIG_ARTIFACT}", dst or tmp).read_text()
    if hashlib.sha256(text.encode()).hexdigest() != expected:
        raise IntegrityError(f"{CONFIG_ARTIFACT} of run {info.run_id} does not match the sha256 recorded for "
                             f"model {info.name} v{info.version}; refusing to rerun from it")
    return json.loads(text)
