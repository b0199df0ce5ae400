"""Lineage facts recorded with every run and model version: code version, package version, checksums.

Nothing here imports mlflow. Conventions:

- ``git_state(path)`` returns the commit (40 hex) of the repository holding ``path`` and whether the
  working tree is dirty (tracked files modified or untracked files present); ``None`` commit when
  ``path`` is not inside a git work tree or git is not installed.
- ``sha256_file`` hashes file bytes (hex digest, lower case), streamed in 1 MiB blocks.
- ``flatten_config`` turns a nested config mapping into ``{"agent.learning_rate": "0.0001", ...}``:
  dotted keys, scalars as ``str``, lists/dicts as compact JSON, ``None`` as ``"None"``; MLflow params
  are strings, so this is what is logged and what is compared. URI passwords are redacted
  (``redact.py``), here and in ``Lineage.config``: neither params nor ``lineage/config.json`` carry one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import __version__
from ..errors import IntegrityError
from ..redact import redact_obj, redact_text

# Tag names (run tags and model version tags). Stable: the registry and rerun read them back.
TAG_PREFIX = "intradayjules."
TAG_GIT_COMMIT = TAG_PREFIX + "git_commit"
TAG_GIT_DIRTY = TAG_PREFIX + "git_dirty"
TAG_PACKAGE_VERSION = TAG_PREFIX + "package_version"
TAG_DATA_FINGERPRINT = TAG_PREFIX + "data_fingerprint"
TAG_FEATURE_KEY = TAG_PREFIX + "feature_store_key"
TAG_FEATURE_VERSION = TAG_PREFIX + "feature_version"
TAG_CONFIG_SHA256 = TAG_PREFIX + "config_sha256"
TAG_MODEL_SHA256 = TAG_PREFIX + "model_sha256"
TAG_BUNDLE_SHA256 = TAG_PREFIX + "bundle_sha256"    # sha256 of the policy bundle's manifest.json
TAG_MLMODEL_SHA256 = TAG_PREFIX + "mlmodel_sha256"  # sha256 of the pyfunc model's MLmodel file


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | Path, expected: str, what: str = "artifact") -> None:
    """Raise IntegrityError naming the file and both digests when ``path`` does not hash to ``expected``."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise IntegrityError(
            f"{what} {path} failed its integrity check: sha256 is {actual}, but {expected} was recorded "
            "when it was logged. The file was modified or corrupted after logging; refusing to load it."
        )


def git_state(path: str | Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree that holds ``path`` (default: this package's source)."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    if where.is_file():
        where = where.parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain"], capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit.stdout.strip(), dirty


def package_version() -> str:
    return __version__


def _param_value(v: Any) -> str:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)
    return str(v)


def flatten_config(cfg: Any, prefix: str = "") -> dict[str, str]:
    """Dotted-key string map of a pydantic model or nested mapping (see module docstring)."""
    if hasattr(cfg, "model_dump"):
        cfg = cfg.model_dump(mode="json")
    out: dict[str, str] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = redact_text(_param_value(v))
    return out


@dataclass
class Lineage:
    """What is needed to rerun a model: resolved config, data and feature identity, code version.

    ``config`` is the resolved experiment config as a plain dict (``cfg.model_dump(mode="json")``).
    """

    config: dict[str, Any] | None = None
    data_fingerprint: str | None = None
    feature_store_key: str | None = None
    feature_version: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    package_version: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def collect(cls, cfg: Any = None, *, data_fingerprint: str | None = None,
                feature_store_key: str | None = None, feature_version: str | None = None,
                repo_path: str | Path | None = None, **extra: str) -> "Lineage":
        """Lineage of the current process: git state and package version filled in automatically."""
        commit, dirty = git_state(repo_path)
        config = redact_obj(cfg.model_dump(mode="json") if hasattr(cfg, "model_dump") else cfg)
        return cls(config=config, data_fingerprint=data_fingerprint, feature_store_key=feature_store_key,
                   feature_version=feature_version, git_commit=commit, git_dirty=dirty,
                   package_version=package_version(), extra={k: str(v) for k, v in extra.items()})

    # keys of a lineage mapping (e.g. ``experiment.Prepared.lineage()``) -> fields
    _MAPPING_KEYS = {"data_fingerprint": "data_fingerprint", "feature_key": "feature_store_key",
                     "feature_store_key": "feature_store_key", "feature_version": "feature_version"}

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], cfg: Any = None, repo_path: str | Path | None = None) -> "Lineage":
        """Lineage from a plain mapping (``data_fingerprint``, ``feature_key``, ``feature_version``; any
        other key, e.g. ``data_source``, becomes an extra ``intradayjules.<key>`` tag), with the git
        state and package version of this process and ``cfg`` as the config."""
        known = {cls._MAPPING_KEYS[k]: (str(v) if v not in (None, "") else None)
                 for k, v in d.items() if k in cls._MAPPING_KEYS}
        extra = {k: v for k, v in d.items() if k not in cls._MAPPING_KEYS and k not in ("package_version",)
                 and v not in (None, "")}
        return cls.collect(cfg, repo_path=repo_path, **known, **extra)

    def tags(self) -> dict[str, str]:
        """Run / model-version tags (the config itself travels as an artifact, by its sha256)."""
        t = {
            TAG_GIT_COMMIT: self.git_commit,
            TAG_GIT_DIRTY: None if self.git_dirty is None else str(self.git_dirty).lower(),
            TAG_PACKAGE_VERSION: self.package_version,
            TAG_DATA_FINGERPRINT: self.data_fingerprint,
            TAG_FEATURE_KEY: self.feature_store_key,
            TAG_FEATURE_VERSION: self.feature_version,
        }
        if self.config is not None:
            t[TAG_CONFIG_SHA256] = hashlib.sha256(self.config_json().encode()).hexdigest()
        t.update({TAG_PREFIX + k: v for k, v in self.extra.items()})
        return {k: v for k, v in t.items() if v is not None}

    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True, indent=1, default=str)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], config: dict[str, Any] | None = None) -> "Lineage":
        dirty = tags.get(TAG_GIT_DIRTY)
        known = {TAG_GIT_COMMIT, TAG_GIT_DIRTY, TAG_PACKAGE_VERSION, TAG_DATA_FINGERPRINT, TAG_FEATURE_KEY,
                 TAG_FEATURE_VERSION, TAG_CONFIG_SHA256, TAG_MODEL_SHA256, TAG_BUNDLE_SHA256, TAG_MLMODEL_SHA256}
        extra = {k[len(TAG_PREFIX):]: v for k, v in tags.items() if k.startswith(TAG_PREFIX) and k not in known}
        return cls(config=config, data_fingerprint=tags.get(TAG_DATA_FINGERPRINT),
                   feature_store_key=tags.get(TAG_FEATURE_KEY), feature_version=tags.get(TAG_FEATURE_VERSION),
                   git_commit=tags.get(TAG_GIT_COMMIT),
                   git_dirty=None if dirty is None else dirty == "true",
                   package_version=tags.get(TAG_PACKAGE_VERSION), extra=extra)
