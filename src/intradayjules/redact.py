"""Credential redaction: what the package writes or prints never carries a password.

A URI's password (``scheme://user:PASSWORD@host``) becomes ``***``; the user name stays (it tells which
account without giving it away). So do the values of query parameters that name a secret
(``?password=``, ``token=``, ``secret=``, ``api_key=``, ``access_key=``, ``sig=``...)::

    >>> redact_text("postgresql://tune:hunter2@db:5432/optuna?sslmode=require&password=x")
    'postgresql://tune:***@db:5432/optuna?sslmode=require&password=***'

``redact_text(s)`` works on any text (a URI, a log line, HTML, YAML); ``redact_obj(o)`` returns a copy
of a JSON-like value (dicts, lists, tuples, strings) with every string redacted; ``Redactor(secrets)``
also replaces given literal secrets (e.g. the password a worker was handed) wherever they appear, for
output streams that can print anything (tracebacks, library warnings).

Redaction is one way: keep the real value in memory (or in the environment) where it is needed to
connect, and write only the redacted one. ``REDACTED`` marks what was removed.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, TextIO

REDACTED = "***"

# scheme://user:password@  (password: anything up to the last '@' before the host; no '/', no space)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]*:)(?P<pw>[^\s/]*)@(?=[^\s@]*(?:[/\s?#]|$))")
_SECRET_PARAM = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|pass|token|access_token|auth_token|secret|client_secret|api_key|apikey"
    r"|access_key|secret_key|sig|signature)=)(?P<value>[^&;#\s\"'<>]+)", re.IGNORECASE)


def redact_text(text: str) -> str:
    """``text`` with URI passwords and secret query parameter values replaced by ``***``."""
    if not text or ("://" not in text and "=" not in text):
        return text
    out = _USERINFO.sub(lambda m: m.group("head") + (REDACTED if m.group("pw") else "") + "@", text)
    return _SECRET_PARAM.sub(lambda m: m.group("head") + REDACTED, out)


def redact_uri(uri: str | None) -> str | None:
    """One URI, redacted (None stays None)."""
    return None if uri is None else redact_text(str(uri))


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like value with every string (keys included) passed through :func:`redact_text`."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


def uri_password(uri: str | None) -> str | None:
    """The password inside ``uri`` (None when it has none), so a process can redact it verbatim."""
    if not uri:
        return None
    m = _USERINFO.search(uri)
    return m.group("pw") if m and m.group("pw") else None


class Redactor:
    """Redact :func:`redact_text` patterns plus the literal ``secrets`` (empty ones ignored)."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return redact_text(text)


class RedactingStream:
    """A text stream wrapper that redacts every write (for a worker's stdout/stderr)."""

    def __init__(self, stream: TextIO, redactor: Redactor):
        self._stream, self._redact = stream, redactor

    def write(self, s: str) -> int:
        self._stream.write(self._redact(s))
        return len(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
