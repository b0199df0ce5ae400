"""A content-addressed feature store that parallel workers (processes) share through the file system.

Layout under ``root``::

    entries/<key>/data.parquet     the feature table (Parquet, zstd), rows sorted by symbol, time
    entries/<key>/meta.json        manifest record; written last, so its presence commits the entry
    entries/<key>/scaler-<h>.json  scalers fitted on a set of training sessions (h = hash of that set)
    locks/<key>.lock               one file lock per key (``filelock``), held while building or deleting

* **Key** = BLAKE2b of (raw data fingerprint, feature spec with indicator code versions, symbols,
  session range, calendar). Same inputs -> same key -> the stored table; any change -> a new key.
* **Build once**: a miss takes the key's lock, looks again (another process may have built it while
  this one waited), and only then computes. Different keys build in parallel.
* **Atomic writes**: each file is written to a temporary name in the entry directory and renamed into
  place (``os.replace``); ``meta.json`` goes last. A reader never sees half a file.
* **Integrity**: ``meta.json`` records the checksum and size of ``data.parquet``; every read
  verifies it (CRC-32, computed in a thread while Arrow decodes the file, so it adds ~no wall time). A truncated or corrupted entry is rebuilt by ``get_or_build`` with a warning (or
  reported by ``get``, which has no bars to rebuild from).
* **Memory cache**: a process keeps the tables it decoded (up to ``memory_cache_mb``); a later hit on
  the same key still verifies the file's size and CRC, then skips only the Parquet decode.
* **Manifest**: no database file (a DuckDB file allows one writer process); ``manifest()`` and
  ``sql()`` query the ``meta.json`` records with an in-memory DuckDB connection.
* **Permissions** follow the umask of the writing process, as for any file it creates: data,
  manifest and scaler files get ``0o666 & ~umask`` (0644 under the common umask 022, 0600 under 077),
  directories ``0o777 & ~umask``, lock files likewise (``filelock``). Group-shared store: give the root
  to the group with the setgid bit (``chgrp research store && chmod 2770 store``) and run every
  worker with ``umask 007``: entries are then ``0660`` files in ``2770`` directories of that group,
  readable and lockable by its members and by no one else. A private store: ``umask 077``.
* **Last use** is the modification time of ``meta.json`` (touched on every hit); ``gc`` keeps the
  ``keep_last`` most recently used entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import IntradayJulesError
from .pipeline import Scaler, _default_cfg, compute_features, feature_spec

if TYPE_CHECKING:
    from ..config import FeaturesConfig

STORE_VERSION = 1
# decoded tables of this process, by (store root, key, checksum); bounded by FeatureStore.memory_cache_mb
_MEMO: OrderedDict[tuple[str, str, str], pd.DataFrame] = OrderedDict()
_MEMO_SIZE: dict[tuple[str, str, str], float] = {}
DATA = "data.parquet"
META = "meta.json"


class StoreError(IntradayJulesError):
    """A feature-store entry is missing or failed its integrity check."""


class CorruptEntry(StoreError):
    pass


def _blake(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _day(x) -> str | None:
    """A session date as ISO text (a tz-aware timestamp keeps its wall-clock date)."""
    if x is None:
        return None
    ts = pd.Timestamp(x)
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.date().isoformat()


def _norm_symbols(symbols) -> list[str] | None:
    if symbols is None:
        return None
    if isinstance(symbols, str):
        symbols = [symbols]
    return sorted({str(s).upper() for s in symbols})


def _crc(buf) -> str:
    """CRC-32 (zlib) of a bytes-like object, 8 hex digits: detects truncation and corruption at
    ~4 GB/s (a cryptographic hash would add ~50 ms to every 40 MB read for no gain here)."""
    return f"{zlib.crc32(buf) & 0xFFFFFFFF:08x}"


def _umask() -> int:
    """The process umask, read without changing it (Linux ``/proc``; elsewhere set and restored)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, data) -> None:
    """Write ``data`` (bytes-like) to a temporary file next to ``path`` and rename it into place. The
    file gets the mode a plain ``open`` would give it (``0o666`` minus the umask), not ``mkstemp``'s
    0600, so a store shared by a group stays readable by it (module docstring)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(memoryview(data))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FeatureStore:
    """Content-addressed feature tables on disk, safe for several processes at once (module docstring)."""

    def __init__(self, root: str | Path, *, lock_timeout: float = 3600.0, compression_level: int = 1,
                 memory_cache_mb: float = 1024.0):
        """``memory_cache_mb``: per-process budget for decoded tables kept for later hits (0 = off);
        a cached hit still verifies the on-disk checksum first."""
        self.root = Path(root)
        self.memory_cache_mb = memory_cache_mb
        self.lock_timeout = lock_timeout
        self.compression_level = compression_level
        (self.root / "entries").mkdir(parents=True, exist_ok=True)
        (self.root / "locks").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------------- keys
    @staticmethod
    def key_parts(fingerprint: str, cfg: FeaturesConfig | None = None, symbols=None, start=None, end=None,
                  calendar: str = "XNYS") -> dict:
        return {"store_version": STORE_VERSION, "fingerprint": fingerprint, "spec": feature_spec(cfg, calendar),
                "symbols": _norm_symbols(symbols), "start": _day(start), "end": _day(end)}

    @classmethod
    def key_for(cls, fingerprint: str, cfg: FeaturesConfig | None = None, symbols=None, start=None, end=None,
                calendar: str = "XNYS") -> str:
        """The store key (32 hex chars) for these inputs."""
        parts = cls.key_parts(fingerprint, cfg, symbols, start, end, calendar)
        return _blake(json.dumps(parts, sort_keys=True))

    def _dir(self, key: str) -> Path:
        if not (len(key) == 32 and all(ch in "0123456789abcdef" for ch in key)):
            raise StoreError(f"not a feature-store key: {key!r}")
        return self.root / "entries" / key

    def _lock(self, key: str, timeout: float | None = None):
        from filelock import FileLock

        return FileLock(str(self.root / "locks" / f"{key}.lock"),
                        timeout=self.lock_timeout if timeout is None else timeout)

    # ------------------------------------------------------------------------------------ reads
    def _verify(self, key: str, check_crc: bool = True):
        """The manifest record and a zero-copy view of the data file, checked against the record's size
        and (unless ``check_crc`` is False: the caller checks it) CRC. Raises ``KeyError`` when absent,
        ``CorruptEntry`` when missing, truncated or altered."""
        import pyarrow as pa

        d = self._dir(key)
        try:
            meta = json.loads((d / META).read_text())
        except FileNotFoundError:
            raise KeyError(key) from None
        except ValueError as e:
            raise CorruptEntry(f"{d / META}: unreadable manifest record ({e})") from None
        try:
            raw = pa.memory_map(str(d / DATA)).read_buffer()  # zero-copy view of the page cache
        except FileNotFoundError:
            raise CorruptEntry(f"{d / DATA}: missing") from None
        if raw.size != meta["bytes"]:
            raise CorruptEntry(f"{d / DATA}: {raw.size} bytes, manifest says {meta['bytes']} (truncated?)")
        if check_crc and _crc(raw) != meta["checksum"]:
            raise CorruptEntry(f"{d / DATA}: checksum mismatch (file altered or corrupted)")
        return meta, raw

    def _read_verified(self, key: str) -> tuple[pd.DataFrame, dict]:
        """Read an entry, verified (``_verify``). A table this process already decoded is served from
        its memory cache after the on-disk file passed the same check (content-addressed: same key,
        same content), which skips only the Parquet decode."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        meta, raw = self._verify(key, check_crc=False)
        memo_key = (str(self.root.resolve()), key, meta["checksum"])
        cached = _MEMO.get(memo_key) if self.memory_cache_mb > 0 else None
        if cached is not None:
            if _crc(raw) != meta["checksum"]:
                raise CorruptEntry(f"{self._dir(key) / DATA}: checksum mismatch (file altered or corrupted)")
            _MEMO.move_to_end(memo_key)
            return cached.copy(deep=False), meta  # copy-on-write (pandas 3): callers cannot alter it
        # the CRC runs in a thread while Arrow decodes (both release the GIL); nothing decoded is
        # returned before the checksum matched
        crc: list[str] = []
        worker = threading.Thread(target=lambda: crc.append(_crc(raw)), daemon=True)
        worker.start()
        try:
            frame = pq.read_table(pa.BufferReader(raw)).to_pandas()
            error = None
        except (pa.ArrowException, OSError) as e:
            frame, error = None, e
        worker.join()
        if crc[0] != meta["checksum"]:
            raise CorruptEntry(f"{self._dir(key) / DATA}: checksum mismatch (file altered or corrupted)")
        if error is not None:  # only if the checksum collided with a corruption
            raise CorruptEntry(f"{self._dir(key) / DATA}: unreadable Parquet ({error})") from None
        self._remember(memo_key, frame)
        return frame, meta

    def _remember(self, memo_key, frame: pd.DataFrame) -> None:
        if self.memory_cache_mb <= 0:
            return
        budget = self.memory_cache_mb * 1e6
        size = float(frame.memory_usage(index=False, deep=False).sum())
        if size > budget:
            return
        _MEMO[memo_key] = frame.copy(deep=False)
        _MEMO_SIZE[memo_key] = size
        while sum(_MEMO_SIZE.values()) > budget:
            old, _ = _MEMO.popitem(last=False)
            _MEMO_SIZE.pop(old, None)

    def has(self, key: str) -> bool:
        """Whether a committed entry exists (not verified: ``get`` verifies)."""
        return (self._dir(key) / META).exists()

    def get(self, key_or_spec: str | dict, symbols=None, start=None, end=None) -> pd.DataFrame:
        """The stored table of a key (or of ``key_for(**spec)``), only the rows of ``symbols`` with
        session in ``[start, end]`` (inclusive dates; None = unbounded). Raises ``KeyError`` if absent
        and ``CorruptEntry`` if it fails its checksum."""
        key = key_or_spec if isinstance(key_or_spec, str) else self.key_for(**key_or_spec)
        frame, _ = self._read_verified(key)
        self._touch(key)
        return _slice(frame, symbols, start, end)

    def info(self, key: str) -> dict:
        """The manifest record of an entry, plus its size on disk and whether it verifies."""
        d = self._dir(key)
        try:
            meta = json.loads((d / META).read_text())
        except FileNotFoundError:
            raise KeyError(key) from None
        try:
            self._verify(key)
            meta["status"] = "ok"
        except CorruptEntry as e:
            meta["status"] = f"corrupt: {e}"
        meta["scalers"] = sorted(p.name for p in d.glob("scaler-*.json"))
        meta["last_used"] = dt.datetime.fromtimestamp((d / META).stat().st_mtime, dt.timezone.utc).isoformat()
        return meta

    def _touch(self, key: str) -> None:
        try:
            os.utime(self._dir(key) / META)
        except OSError:
            pass

    # ----------------------------------------------------------------------------------- builds
    def get_or_build(
        self,
        bars: Any,
        fingerprint: str,
        cfg: FeaturesConfig | None = None,
        symbols=None,
        start=None,
        end=None,
        *,
        calendar: str = "XNYS",
        train_sessions=None,
    ) -> tuple[pd.DataFrame, str, bool]:
        """The feature table for these inputs: ``(frame, key, hit)``.

        ``bars``: a ``Bars``, a canonical DataFrame, or a zero-argument callable returning one (called
        only on a miss, so a hit never loads raw data). ``fingerprint``: ``data_fingerprint`` of those
        bars. Features are computed on the full history of the selected symbols up to ``end`` and then
        cut to sessions ``[start, end]``, so a range's values equal the full run's. ``hit`` is False
        only in the process that computed the entry. With ``train_sessions``, a scaler fitted on them is
        stored with the entry too (``scaler(key, train_sessions)`` returns it).
        """
        cfg = cfg or _default_cfg()
        key = self.key_for(fingerprint, cfg, symbols, start, end, calendar)
        try:
            frame, _ = self._read_verified(key)
            hit = True
        except (KeyError, CorruptEntry, OSError):
            frame = None
        if frame is None:
            with self._lock(key):
                try:
                    frame, _ = self._read_verified(key)  # built by another process while we waited
                    hit = True
                except KeyError:
                    frame = None
                except CorruptEntry as e:
                    warnings.warn(f"feature store entry {key} is corrupt ({e}); rebuilding it", stacklevel=2)
                    frame = None
                if frame is None:
                    frame = self._build(key, bars, fingerprint, cfg, symbols, start, end, calendar)
                    hit = False
        if hit:
            self._touch(key)
        if train_sessions is not None:
            self.scaler(key, train_sessions, frame=frame)
        return frame, key, hit

    def _build(self, key, bars, fingerprint, cfg, symbols, start, end, calendar) -> pd.DataFrame:
        t0 = time.perf_counter()
        if callable(bars):
            bars = bars()
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame = getattr(bars, "frame", bars)
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"bars must be a Bars, a DataFrame or a callable returning one, got {type(frame)}")
        sel = _norm_symbols(symbols)
        keep = np.ones(len(frame), dtype=bool)
        if sel is not None:
            keep &= frame["symbol"].isin(sel).to_numpy()
            absent = sorted(set(sel) - set(frame.loc[keep, "symbol"].unique()))
            if absent:
                raise StoreError(f"symbols not in the bars: {absent}")
        if end is not None:
            keep &= (frame["session"] <= pd.Timestamp(_day(end))).to_numpy()
        src = frame if keep.all() else frame[keep]
        feats = compute_features(src, cfg, calendar=calendar)
        if start is not None:
            feats = feats[feats["session"] >= pd.Timestamp(_day(start))].reset_index(drop=True)
        compute_s = time.perf_counter() - t0
        self._write(key, feats, fingerprint, cfg, symbols, start, end, calendar, load_s, compute_s)
        return feats

    def _write(self, key, feats, fingerprint, cfg, symbols, start, end, calendar, load_s, compute_s) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        d = self._dir(key)
        d.mkdir(parents=True, exist_ok=True)
        table = _to_arrow(feats)
        floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
        sink = pa.BufferOutputStream()
        # byte_stream_split: ~8 % smaller and ~40 % faster to read for float64 features than plain
        pq.write_table(table, sink, compression="zstd", compression_level=self.compression_level,
                       use_dictionary=["symbol"], use_byte_stream_split=floats,
                       write_statistics=["timestamp", "symbol", "session"])
        raw = sink.getvalue()
        _atomic_write(d / DATA, raw)
        sessions = feats["session"]
        meta = {
            "key": key,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "fingerprint": fingerprint,
            "symbols_requested": _norm_symbols(symbols),
            "start_requested": _day(start),
            "end_requested": _day(end),
            "symbols": sorted(feats["symbol"].unique().tolist()),
            "n_symbols": int(feats["symbol"].nunique()),
            "first_session": _day(sessions.min()) if len(feats) else None,
            "last_session": _day(sessions.max()) if len(feats) else None,
            "rows": int(len(feats)),
            "warm_rows": int(feats["warm"].sum()),
            "columns": [c for c in feats.columns if c not in ("timestamp", "symbol", "session", "warm")],
            "bytes": raw.size,
            "checksum": _crc(raw),
            "checksum_algo": "crc32",
            "load_seconds": round(load_s, 4),
            "compute_seconds": round(compute_s, 4),
            "write_seconds": round(time.perf_counter() - t0, 4),
            "pid": os.getpid(),
            "spec": self.key_parts(fingerprint, cfg, symbols, start, end, calendar)["spec"],
        }
        _atomic_write(d / META, json.dumps(meta, indent=1).encode())
        self._remember((str(self.root.resolve()), key, meta["checksum"]), feats)

    # ---------------------------------------------------------------------------------- scalers
    def scaler(self, key: str, sessions, *, frame: pd.DataFrame | None = None, by_symbol: bool = False) -> Scaler:
        """The scaler of an entry fitted on ``sessions`` (training sessions only; per symbol or pooled,
        ``features.scaler``); fitted and stored next to the entry's data on first use."""
        days = sorted({_day(s) for s in sessions})
        path = self._dir(key) / f"scaler-{_blake(json.dumps([days, by_symbol]) if by_symbol else json.dumps(days))[:16]}.json"
        try:
            return Scaler.from_json(path.read_text())
        except (FileNotFoundError, ValueError, KeyError):
            pass
        if frame is None:
            frame, _ = self._read_verified(key)
        sc = Scaler.fit(frame, days, by_symbol=by_symbol)
        _atomic_write(path, sc.to_json().encode())
        return sc

    # --------------------------------------------------------------------------------- manifest
    def _meta_glob(self) -> str:
        return str(self.root / "entries" / "*" / META)

    def sql(self, query: str) -> pd.DataFrame:
        """Run DuckDB SQL where the view ``entries`` holds one row per committed entry (scalar fields of
        ``meta.json``: key, created, fingerprint, rows, n_symbols, first_session, last_session, bytes,
        compute_seconds, ...)."""
        import duckdb

        con = duckdb.connect()  # in memory: no database file, no cross-process lock
        try:
            if any((self.root / "entries").glob(f"*/{META}")):
                con.execute(f"""CREATE VIEW entries AS SELECT * EXCLUDE (spec)
                    FROM read_json('{self._meta_glob()}', format='auto', union_by_name=true,
                                   maximum_object_size=67108864)""")
            else:
                con.execute("CREATE VIEW entries AS SELECT NULL::VARCHAR AS key, NULL::VARCHAR AS created, "
                            "NULL::BIGINT AS rows, NULL::BIGINT AS n_symbols, NULL::VARCHAR AS first_session, "
                            "NULL::VARCHAR AS last_session, NULL::BIGINT AS bytes, NULL::VARCHAR AS fingerprint, "
                            "NULL::DOUBLE AS compute_seconds WHERE false")
            return con.execute(query).df()
        finally:
            con.close()

    def manifest(self) -> pd.DataFrame:
        """One row per entry, most recently used first, with ``last_used`` (UTC)."""
        df = self.sql("SELECT key, created, rows, n_symbols, first_session, last_session, bytes, fingerprint, "
                      "compute_seconds FROM entries")
        used = []
        for k in df["key"]:
            try:
                used.append(pd.Timestamp((self.root / "entries" / k / META).stat().st_mtime_ns, tz="UTC"))
            except FileNotFoundError:
                used.append(pd.NaT)
        df["last_used"] = pd.to_datetime(pd.Series(used, dtype="object"), utc=True)
        return df.sort_values("last_used", ascending=False, kind="stable").reset_index(drop=True)

    def keys(self) -> list[str]:
        return sorted(p.parent.name for p in (self.root / "entries").glob(f"*/{META}"))

    # --------------------------------------------------------------------------------------- gc
    def delete(self, key: str, *, timeout: float = 0.0) -> bool:
        """Remove an entry if its lock is free within ``timeout`` s; True if removed."""
        from filelock import Timeout

        d = self._dir(key)
        try:
            with self._lock(key, timeout=timeout):
                if not d.exists():
                    return False
                trash = self.root / "trash"
                trash.mkdir(exist_ok=True)
                target = trash / f"{key}-{uuid.uuid4().hex[:8]}"
                os.replace(d, target)  # readers now see no entry at all, never a partial one
                shutil.rmtree(target, ignore_errors=True)
                return True
        except Timeout:
            return False

    def gc(self, keep_last: int) -> list[str]:
        """Delete all but the ``keep_last`` most recently used entries (entries being built or deleted
        by another process are skipped) and temporary files older than an hour. Returns the deleted
        keys. Lock files stay: removing one another process waits on could let two hold the lock."""
        if keep_last < 0:
            raise ValueError("keep_last must be >= 0")
        entries = []
        for meta in (self.root / "entries").glob(f"*/{META}"):
            try:
                entries.append((meta.stat().st_mtime_ns, meta.parent.name))
            except FileNotFoundError:
                continue
        entries.sort(reverse=True)
        removed = [k for _, k in entries[keep_last:] if self.delete(k)]
        shutil.rmtree(self.root / "trash", ignore_errors=True)
        # temporary files of writers that died mid-write (live writers rename theirs within seconds)
        cutoff = time.time() - 3600
        for tmp in (self.root / "entries").glob("*/.*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except FileNotFoundError:
                pass
        return removed


def _to_arrow(feats: pd.DataFrame):
    """Column by column (``Table.from_pandas`` trips a pandas 3.1 deprecation on tz-aware columns)."""
    import pyarrow as pa

    arrays, names = [], []
    for c in feats.columns:
        s = feats[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            arr = pa.array(s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"),
                           type=pa.timestamp("ns", tz="UTC"))
        elif pd.api.types.is_datetime64_dtype(s.dtype):
            arr = pa.array(s.to_numpy(dtype="datetime64[ns]"), type=pa.timestamp("ns"))
        elif hasattr(s.array, "__arrow_array__"):  # pandas 3 str columns are Arrow already: no copy
            arr = pa.array(s.array)
        elif pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            arr = pa.array(s.to_numpy(dtype=object), type=pa.string())
        else:
            arr = pa.array(s.to_numpy())
        arrays.append(arr)
        names.append(str(c))
    return pa.Table.from_arrays(arrays, names=names)


def _slice(frame: pd.DataFrame, symbols=None, start=None, end=None) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    sel = _norm_symbols(symbols)
    if sel is not None:
        keep &= frame["symbol"].isin(sel).to_numpy()
    if start is not None:
        keep &= (frame["session"] >= pd.Timestamp(_day(start))).to_numpy()
    if end is not None:
        keep &= (frame["session"] <= pd.Timestamp(_day(end))).to_numpy()
    return frame if keep.all() else frame[keep].reset_index(drop=True)
