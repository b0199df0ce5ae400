"""Reading and writing experiment YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .overrides import set_dotted
from .schema import ExperimentConfig, config_from_dict


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load and validate a YAML experiment file. ``overrides`` are dotted keys (``agent.seed``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"file not found: {path}"], str(path))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"YAML syntax: {e}"], str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError(["<root>: must be a mapping of sections"], str(path))
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    return config_from_dict(raw, str(path))
