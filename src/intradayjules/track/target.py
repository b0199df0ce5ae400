"""Where tracking goes: the tracking URI and artifact root, and a fast reachability check.

No mlflow import here (``intradayjules.track.mlflow_tracking`` is the only module that imports it).
``resolve_tracking`` precedence: ``cfg.tracking.uri`` > ``$MLFLOW_TRACKING_URI`` > the default
``sqlite:///<abs workdir>/mlflow.db`` with artifacts in ``<abs workdir>/mlartifacts``.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IntradayJulesError
from ..redact import redact_uri


class TrackingError(IntradayJulesError):
    """Tracking is misconfigured or the tracking server cannot be used."""


class TrackingUnreachableError(TrackingError):
    """The tracking server did not answer; raised before any training starts."""


# ------------------------------------------------------------------------------------------ target
@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go. ``uri`` is an MLflow tracking URI; ``artifact_location`` a ``file://`` URI for the
    local sqlite default (None for a server: it decides); ``source`` says which setting chose ``uri``."""

    uri: str
    artifact_location: str | None
    experiment: str = "intradayjules"
    registered_model: str = "intradayjules-dqn"
    enabled: bool = True
    source: str = "default"
    alias: str = "champion"
    connect_timeout_s: float = 5.0
    heartbeat_timeout_s: float | None = None


def _sqlite_artifacts(uri: str) -> str | None:
    """``file://`` artifact root beside a ``sqlite:///ABS/path.db`` (``mlartifacts`` in its folder)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):])
    if not db.is_absolute():
        raise TrackingError(f"tracking URI {redact_uri(uri)!r}: the sqlite path must be absolute "
                            "(sqlite:////abs/path.db)")
    return (db.parent / "mlartifacts").as_uri()


def resolve_tracking(cfg: Any = None, workdir: str | Path | None = None, *,
                     enabled: bool | None = None) -> TrackingTarget:
    """Decide the tracking URI. Precedence: ``cfg.tracking.uri`` > ``$MLFLOW_TRACKING_URI`` > default
    ``sqlite:///<abs workdir>/mlflow.db`` with artifacts in ``<abs workdir>/mlartifacts``.

    ``cfg`` is an ExperimentConfig (or None for defaults); ``workdir`` defaults to ``cfg.workdir``.
    ``enabled=False`` (the CLI's ``--no-track``) overrides ``cfg.tracking.enabled``.
    """
    tcfg = getattr(cfg, "tracking", None)
    if workdir is None:
        workdir = getattr(cfg, "workdir", None) or "runs"
    workdir = Path(workdir).expanduser().resolve()
    on = (tcfg.enabled if tcfg is not None else True) if enabled is None else enabled
    experiment = tcfg.experiment if tcfg is not None else "intradayjules"
    registered = tcfg.registered_model if tcfg is not None else "intradayjules-dqn"
    if tcfg is not None and tcfg.uri:
        uri, source = tcfg.uri, "config tracking.uri"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        uri, source = os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI"
    else:
        uri, source = f"sqlite:///{workdir / 'mlflow.db'}", "default"
    if uri.startswith("file:") or "://" not in uri and not uri.startswith(("databricks", "uc")):
        raise TrackingError(f"tracking URI {redact_uri(uri)!r} (from {source}): the MLflow file store is not "
                            "supported; use sqlite:///ABSOLUTE/path.db or http(s)://host:port")
    extra = {}
    if tcfg is not None:
        extra = dict(alias=tcfg.alias, connect_timeout_s=tcfg.connect_timeout_s,
                     heartbeat_timeout_s=tcfg.heartbeat_timeout_s)
    return TrackingTarget(uri=uri, artifact_location=_sqlite_artifacts(uri), experiment=experiment,
                          registered_model=registered, enabled=bool(on), source=source, **extra)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with a clear message, when ``uri`` cannot be used: a server that does not answer
    ``GET /health`` within ``timeout`` seconds, or a sqlite database whose folder cannot be written."""
    if uri.startswith(("http://", "https://")):
        url, auth = _split_userinfo(uri.rstrip("/") + "/health")
        shown = redact_uri(uri)
        req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http only)
                body = resp.read(64).decode(errors="replace").strip()
                if resp.status != 200:
                    raise TrackingUnreachableError(f"MLflow server {shown}: GET /health answered {resp.status}")
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise TrackingUnreachableError(
                f"MLflow tracking server {shown} is unreachable ({reason}). Start the server, point "
                "tracking.uri / MLFLOW_TRACKING_URI at a running one, or pass --no-track."
            ) from None
        if body and body.upper() != "OK":
            raise TrackingUnreachableError(f"{shown}/health answered {body!r}, not OK: is this an MLflow server?")
    elif uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrackingError(f"tracking database folder {db.parent} cannot be created: {e}") from None
        if not os.access(db.parent, os.W_OK):
            raise TrackingError(f"tracking database folder {db.parent} is not writable")


def _split_userinfo(url: str) -> tuple[str, str | None]:
    """``http://user:pw@host/x`` -> (``http://host/x``, ``"Basic ..."``); urllib cannot take the user
    info in the URL itself (MLflow's client sends it as basic auth, so the health check does too)."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    cred = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    return urlunsplit(parts._replace(netloc=netloc)), "Basic " + base64.b64encode(cred).decode()
