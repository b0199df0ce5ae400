"""Preset experiment files shipped inside the package (``examples/configs`` in the repository points
here), so ``intradayjules run`` works from any directory and ``--config quickstart`` names a preset."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
DEFAULT_PRESET = "quickstart"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The file of preset ``name`` (``quickstart``, ``illiquid_experiment``, ...)."""
    p = PRESET_DIR / f"{name}.yaml"
    if not p.is_file():
        raise ConfigError([f"no preset {name!r}; presets: {', '.join(preset_names())}"])
    return p


def resolve_config_ref(ref: str | Path) -> Path:
    """A config reference from the command line: an existing file, else a preset name (a folder that
    happens to carry a preset's name, e.g. a run's output, does not shadow the preset)."""
    p = Path(ref)
    if p.is_file() or p.suffix in (".yaml", ".yml") or len(p.parts) > 1:
        return p
    return preset_path(str(ref))
