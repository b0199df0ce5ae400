"""Exceptions shared by every layer.

Errors carry enough context (file, line, field) to be acted on without a debugger.
"""

from __future__ import annotations


class IntradayJulesError(Exception):
    """Base class for errors this package raises on bad input or state."""


class ConfigError(IntradayJulesError):
    """A configuration file or value is invalid. ``problems`` lists ``field.path: message`` lines."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"invalid configuration in {source}" if source else "invalid configuration"
        super().__init__(head + ":\n  " + "\n  ".join(self.problems))


class IntegrityError(IntradayJulesError):
    """A file's bytes do not match the digest (sha256 or HMAC) recorded when it was written or logged, or
    no digest exists for a file that may only be loaded verified (a pickle)."""


class DataError(IntradayJulesError):
    """Bar or reference data broke a validation rule.

    ``file`` is the input file (or a label for in-memory data), ``line`` the 1-based line in that file
    (the header is line 1 for CSV, so the first data row is line 2; for Parquet the 1-based row number),
    ``rule`` a short machine-readable rule name, ``column`` the offending column if any.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        rule: str | None = None,
        column: str | None = None,
    ):
        self.file = file
        self.line = line
        self.rule = rule
        self.column = column
        self.detail = message
        where = []
        if file:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if column:
            where.append(f"column {column!r}")
        prefix = ":".join(where[:2]) if where else "<data>"
        if column:
            prefix += f" ({where[-1]})"
        tag = f"[{rule}] " if rule else ""
        super().__init__(f"{prefix}: {tag}{message}")
