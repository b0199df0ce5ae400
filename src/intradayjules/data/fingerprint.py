"""A cheap, content-based fingerprint of the raw data behind a bar table.

``data_fingerprint(bars, source, data_cfg)`` -> 32 hex chars. It changes when anything that changes the
bars changes, and is cheap to recompute on every run:

* **files** (``source`` a file or directory): the sorted list of (relative path, size, mtime_ns) of the
  data files is hashed to a *stat key*; the content hash (BLAKE2b over names and bytes) is cached in a
  sidecar JSON named by that key (under ``cache_dir``, default ``$INTRADAYJULES_CACHE`` or
  ``~/.cache/intradayjules/fingerprints``; the data folder itself is never written). A hit costs a
  ``stat`` per file; touching a file without changing it re-hashes once and yields the same
  fingerprint.
* **synthetic** (``source`` a ``SyntheticConfig``): its settings plus a hash of the generator's source
  file, so editing the generator invalidates everything built from it.
* **in-memory** (``source`` None): a hash of the bar table itself (correct, not cheap: ~0.1 s per
  500k rows).

The loader settings that shape the bars (time zone, calendar, resampling, gap filling and its session
limit, symbol filter, repairs) and a hash of the loader source files are mixed in, so a different way of reading the same
files is a different fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..config import DataConfig, SyntheticConfig
from .loaders import bar_source, list_files

FINGERPRINT_VERSION = 1
_LOADER_MODULES = ("bars.py", "loaders.py", "sessions.py", "reader.py", "gaps.py", "tzcheck.py")
_CHUNK = 1 << 20


def _default_cache_dir() -> Path:
    env = os.environ.get("INTRADAYJULES_CACHE")
    return Path(env) / "fingerprints" if env else Path.home() / ".cache" / "intradayjules" / "fingerprints"


def _source_hash(names) -> str:
    h = hashlib.blake2b(digest_size=16)
    here = Path(__file__).resolve().parent
    for name in names:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _data_files(path: Path) -> list[Path]:
    return list_files(path)


def _stat_list(path: Path) -> list[tuple[str, int, int]]:
    files = _data_files(path)
    base = path if path.is_dir() else path.parent
    out = []
    for f in files:
        st = f.stat()
        out.append((str(f.relative_to(base)), st.st_size, st.st_mtime_ns))
    return sorted(out)


def content_hash(path: Path, files: list[str]) -> str:
    """BLAKE2b (16 bytes) over each file's relative name and bytes, in the given order."""
    base = path if path.is_dir() else path.parent
    h = hashlib.blake2b(digest_size=16)
    for rel in files:
        h.update(rel.encode() + b"\0")
        with open(base / rel, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def files_fingerprint(path: str | Path, cache_dir: str | Path | None = None) -> tuple[str, bool]:
    """Content hash of the data files under ``path`` and whether it came from the sidecar cache."""
    path = Path(path).resolve()
    stats = _stat_list(path)
    stat_key = hashlib.blake2b(json.dumps([str(path), stats]).encode(), digest_size=16).hexdigest()
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    sidecar = cache / f"{stat_key}.json"
    try:
        cached = json.loads(sidecar.read_text())
        if cached.get("stats") == [list(s) for s in stats]:
            return cached["content"], True
    except (OSError, ValueError, KeyError):
        pass
    digest = content_hash(path, [s[0] for s in stats])
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".fp-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump({"path": str(path), "stats": stats, "content": digest}, fh)
        os.replace(tmp, sidecar)
    except OSError:  # a read-only cache only costs speed
        pass
    return digest, False


def frame_hash(frame) -> str:
    """Hash of a bar table's contents (row order matters)."""
    import pandas as pd

    h = hashlib.blake2b(digest_size=16)
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def data_fingerprint(bars=None, source=None, data_cfg: DataConfig | None = None, *,
                     cache_dir: str | Path | None = None) -> str:
    """Fingerprint of the data behind ``bars`` (see the module docstring).

    ``source``: a path (file or directory of bar files), a ``SyntheticConfig``, or None to hash
    ``bars`` (a ``Bars`` or a DataFrame) directly. ``data_cfg``: the ``DataConfig`` used to load them.
    """
    data_cfg = data_cfg or DataConfig()
    loader = data_cfg.model_dump(mode="json", include={"timezone", "calendar", "bar", "extended_hours",
                                                       "fill_gaps", "max_fill_sessions", "symbols", "repair"})
    parts: dict = {"version": FINGERPRINT_VERSION, "loader": loader}
    if isinstance(source, SyntheticConfig):
        parts["kind"] = "synthetic"
        parts["synthetic"] = source.model_dump(mode="json")
        parts["code"] = _source_hash((*_LOADER_MODULES, "synthetic.py"))
    elif source is not None:
        parts["kind"] = "files"
        parts["content"], _ = files_fingerprint(source, cache_dir)
        parts["code"] = _source_hash(_LOADER_MODULES)
    else:
        if bars is None:
            raise ValueError("data_fingerprint needs bars or a source")
        frame = getattr(bars, "frame", bars)
        parts["kind"] = "frame"
        parts["content"] = frame_hash(frame)
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=16).hexdigest()


def experiment_fingerprint(cfg, path=None, cache_dir=None) -> str:
    """The fingerprint of the data ``intradayjules.data.load_data(cfg, path)`` would load, without
    loading it."""
    src = Path(path) if path is not None else (cfg.data.path if cfg.data.source == "path" else None)
    if src is None:
        return data_fingerprint(source=cfg.data.synthetic, data_cfg=cfg.data)
    src, _ = bar_source(src)
    return data_fingerprint(source=src, data_cfg=cfg.data, cache_dir=cache_dir)
