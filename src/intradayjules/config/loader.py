"""Reading and writing experiment YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..safe_yaml import load_yaml_file
from .overrides import set_dotted
from .schema import ExperimentConfig, config_from_dict


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load and validate a YAML experiment file. ``overrides`` are dotted keys (``agent.seed``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"file not found: {path}"], str(path))
    raw = load_yaml_file(path) or {}  # no anchors/aliases, at most 1 MiB (safe_yaml.py)
    if not isinstance(raw, dict):
        raise ConfigError(["<root>: must be a mapping of sections"], str(path))
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    return config_from_dict(raw, str(path))
