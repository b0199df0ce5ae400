"""YAML for configuration files: plain data only, no aliases, bounded size.

``load_yaml(text, source)`` parses with PyYAML's ``SafeLoader`` (no Python objects) and additionally
refuses

- anchors and aliases (``&a`` / ``*a``): an alias "bomb" of a few hundred bytes expands to billions of
  nodes (measured before this loader: a 650-byte file took 26 s and 2.2 GB); a config never needs them;
- documents larger than :data:`MAX_CONFIG_BYTES` (1 MiB; the largest shipped config is ~2 KiB);
- nesting deeper than :data:`MAX_DEPTH` (64) levels.

Errors are :class:`~intradayjules.errors.ConfigError` naming the file, line and column and the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 64


class _Refused(yaml.constructor.ConstructorError):
    """A document that parses but breaks one of this module's rules."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases and deep nesting while composing the node tree."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise _Refused(
                None, None, f"YAML {kind}{event.anchor} is not allowed in a config (anchors and aliases "
                "are refused: they let a small file expand without bound)", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(None, None, f"YAML nesting deeper than {MAX_DEPTH} levels",
                                                        event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str | bytes, source: str | Path | None = None) -> Any:
    """Parse one YAML document under the rules of the module docstring."""
    where = str(source) if source is not None else "<yaml>"
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError([f"file is {size:,} bytes; a config may be at most {MAX_CONFIG_BYTES:,} bytes"], where)
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        rule = "" if isinstance(e, _Refused) else "YAML syntax: "
        raise ConfigError([f"{at}{rule}{problem}"], where) from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path) -> Any:
    """:func:`load_yaml` of a file, checking its size before reading it."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError([f"file is {size:,} bytes; a config may be at most {MAX_CONFIG_BYTES:,} bytes"], str(path))
    return load_yaml(path.read_bytes(), path)
