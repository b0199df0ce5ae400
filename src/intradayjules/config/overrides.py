"""The one way to vary a configuration: dotted keys.

``--set agent.seed=3`` on every command, ``tune.search_space`` parameters, trial parameters and the
experiments' arms all go through :func:`apply_overrides`, which validates the result like a loaded file
(an unknown key or a bad value is a :class:`ConfigError` naming the dotted path).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ..errors import ConfigError
from .schema import ExperimentConfig, RiskConfig, config_from_dict


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """``d["a"]["b"] = value`` for ``key="a.b"``, creating missing levels."""
    parts = key.split(".")
    for p in parts[:-1]:
        nxt = d.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError([f"{key}: {p!r} is not a section"])
        d = nxt
    d[parts[-1]] = value


def parse_set_options(items: Iterable[str]) -> dict[str, Any]:
    """``["agent.seed=3", "env.symbols=[A, B]"]`` -> ``{"agent.seed": 3, "env.symbols": ["A", "B"]}``
    (values parsed as YAML scalars/lists)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"--set expects KEY=VALUE (got {item!r})"])
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError([f"--set {key.strip()}: value is not valid YAML ({e})"]) from None
    return out


def apply_overrides(cfg: ExperimentConfig | dict[str, Any] | None, overrides: Mapping[str, Any],
                    source: str = "overrides") -> ExperimentConfig:
    """A validated copy of ``cfg`` (a config, a raw mapping or None for the defaults) with the dotted
    ``overrides`` applied. Only the keys a config set explicitly (and the overrides) are re-validated,
    so profile-derived risk values stay derived."""
    if isinstance(cfg, ExperimentConfig):
        raw = cfg.model_dump(mode="json", exclude_unset=True)
    else:
        raw = dict(cfg or {})
    if not overrides:
        return cfg if isinstance(cfg, ExperimentConfig) else config_from_dict(raw, source)
    for key, value in overrides.items():
        set_dotted(raw, key, value)
    return config_from_dict(raw, source)


def with_risk_profile(cfg: ExperimentConfig, profile: str | None) -> ExperimentConfig:
    """A copy of ``cfg`` whose risk section uses ``profile``; explicitly set risk values are kept."""
    if profile is None or profile == cfg.risk.profile:
        return cfg
    explicit = {k: getattr(cfg.risk, k) for k in cfg.risk.model_fields_set if k != "profile"}
    risk = RiskConfig.model_validate({**{k: (v.model_dump() if hasattr(v, "model_dump") else v)
                                         for k, v in explicit.items()}, "profile": profile})
    return cfg.model_copy(update={"risk": risk})
