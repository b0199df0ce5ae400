"""Read one bar file, batch by batch, into plain arrays (the streaming front end of ``load_bars``).

CSV files go through pyarrow's streaming CSV reader (``open_csv``, blocks of ``BLOCK_BYTES``), Parquet
files through ``ParquetFile.iter_batches``; only the needed columns are read. Each batch becomes
``int64`` UTC nanoseconds, ``int32`` symbol codes and ``float64`` prices and volume, with the source line
of every row, and the row-wise validation rules (``bars.value_problems``) run on it right away. Batches
are written into one allocation per column, sized from the first block's rows per byte (grown by half if
short), and no pandas copy of the whole file is made: memory grows with the rows kept (60 bytes a row),
not with the text.

Two passes at most: the fast pass lets pyarrow type the columns (numbers as float64, ISO timestamps
natively). If a later block does not fit the types pyarrow chose (a timestamp with an offset among naive
ones, a word in a price column) the file is read again with every column as text and parsed by pandas,
which pins the exact line and rule.

Timestamps: naive values are wall-clock times in ``DataConfig.timezone``; values with an offset are
converted as they are. A file that mixes both is a ``mixed_timezone`` error at the first row of the other
kind. A non-existent or ambiguous local time (daylight-saving switch) is ``bad_timestamp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import DataError
from .bars import OHLCV, Problem, ProblemLog, value_problems

ALIASES = {
    "timestamp": ["timestamp", "datetime", "date_time", "ts", "time_stamp", "date", "time", "bar_time"],
    "symbol": ["symbol", "ticker", "sym", "instrument"],
    "open": ["open", "o", "open_price"],
    "high": ["high", "h", "high_price"],
    "low": ["low", "l", "low_price"],
    "close": ["close", "c", "close_price", "last"],
    "volume": ["volume", "v", "vol", "qty"],
}
BLOCK_BYTES = 16 << 20
PARQUET_BATCH = 1 << 20
TZ_SAMPLE_DENSE = 20_000   # rows kept for the time-zone check before thinning
TZ_SAMPLE_STRIDE = 50
_OFFSET_RE = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|(?:UTC|GMT)?[+-]\d{2}(?::?\d{2})?)\s*$"


class _Retry(Exception):
    """The typed pass met a value pyarrow could not convert: read the file again as text."""


@dataclass
class Columns:
    """Source column names for each canonical field; ``date``/``time`` when a pair is joined."""

    timestamp: str | None
    date: str | None
    time: str | None
    symbol: str | None
    values: dict[str, str]
    found: list[str]

    @property
    def source(self) -> list[str]:
        src = [c for c in (self.timestamp, self.date, self.time, self.symbol) if c]
        return src + [self.values[c] for c in OHLCV]


@dataclass
class FileArrays:
    """One file's rows (after the optional symbol filter), in file order."""

    file: str
    t: np.ndarray            # int64 UTC ns (iNaT where unparseable)
    sym: np.ndarray          # int32 codes into ``symbols`` (sorted alphabetically)
    symbols: list[str]
    values: dict[str, np.ndarray]
    line: np.ndarray         # int64 source line (CSV: header = 1; Parquet/frames: 1-based row)
    rows_read: int
    naive: bool              # timestamps had no offset
    naive_sample: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # wall clock as if UTC
    sample_line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    log: ProblemLog = field(default_factory=ProblemLog)


def map_columns(names: list[str], file: str) -> Columns:
    """Match the file's columns to the canonical fields (case-insensitive, aliases, date + time pair)."""
    lower: dict[str, str] = {}
    for c in names:
        lower.setdefault(str(c).strip().lower(), c)
    ts = date = time = None
    if "date" in lower and "time" in lower and not any(a in lower for a in ("timestamp", "datetime", "date_time")):
        date, time = lower["date"], lower["time"]
    else:
        ts = next((lower[a] for a in ALIASES["timestamp"] if a in lower), None)
        if ts is None:
            raise DataError(f"no timestamp column (looked for {ALIASES['timestamp']}; found {list(names)})",
                            file=file, rule="missing_column", column="timestamp")
    values = {}
    for canon in OHLCV:
        src = next((lower[a] for a in ALIASES[canon] if a in lower), None)
        if src is None:
            raise DataError(f"no {canon} column (looked for {ALIASES[canon]}; found {list(names)})",
                            file=file, rule="missing_column", column=canon)
        values[canon] = src
    symbol = next((lower[a] for a in ALIASES["symbol"] if a in lower), None)
    return Columns(ts, date, time, symbol, values, list(names))


# --------------------------------------------------------------------------------------- batches
def csv_names(path: Path) -> list[str]:
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
        names = reader.schema.names
        reader.close()
        return names
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read file: {e}", file=str(path), rule="unreadable") from None


def _csv_batches(path: Path, cols: Columns, typed: bool):
    types: dict[str, pa.DataType] = {}
    for c in cols.source:
        types[c] = pa.string()
    if typed:
        for c in cols.values.values():
            types[c] = pa.float64()
        if cols.symbol:
            types[cols.symbol] = pa.dictionary(pa.int32(), pa.string())
        if cols.timestamp:
            del types[cols.timestamp]  # let pyarrow infer (ISO timestamps are parsed natively)
    conv = pacsv.ConvertOptions(include_columns=cols.source, column_types=types,
                                strings_can_be_null=True, quoted_strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES), convert_options=conv)
    except pa.ArrowInvalid as e:
        if typed:
            raise _Retry from None
        raise DataError(f"cannot read file: {e}", file=str(path), rule="unreadable") from None
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as e:
            if typed:
                raise _Retry from None
            raise DataError(f"cannot read file: {e}", file=str(path), rule="unreadable") from None
        yield batch


def _parquet_batches(path: Path, cols: Columns):
    pf = pq.ParquetFile(path, memory_map=False)
    yield from pf.iter_batches(batch_size=PARQUET_BATCH, columns=cols.source)


# -------------------------------------------------------------------------------------- parsing
def _numbers(arr: pa.Array, canon: str, file: str, lines: np.ndarray) -> np.ndarray:
    t = arr.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(t) or pa.types.is_null(t):
        return pc_cast_float(arr)
    text = pd.Series(arr.cast(pa.string()).to_pandas(), dtype="string").str.strip()
    num = pd.to_numeric(text, errors="coerce")
    bad = np.flatnonzero(num.isna().to_numpy() & text.notna().to_numpy() & (text != "").fillna(False).to_numpy())
    if len(bad):
        p = int(bad[0])
        raise DataError(f"{canon}={text.iloc[p]!r} is not a number", file=file, line=int(lines[p]),
                        rule="not_a_number", column=canon)
    return num.to_numpy(dtype="float64", na_value=np.nan)


def pc_cast_float(arr: pa.Array) -> np.ndarray:
    return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)


class _Column:
    """An array filled batch by batch into one allocation sized from an estimate of the rows (grown by
    half when short), so the rows are never held twice the way a list of batches plus a concatenation
    would hold them. Pages past the rows written are never touched, so they cost no memory."""

    def __init__(self, dtype, capacity: int) -> None:
        self.a = np.empty(max(capacity, 1), dtype)
        self.n = 0

    def add(self, x: np.ndarray) -> None:
        need = self.n + len(x)
        if need > len(self.a):
            bigger = np.empty(max(need, len(self.a) * 3 // 2), self.a.dtype)
            bigger[: self.n] = self.a[: self.n]
            self.a = bigger
        self.a[self.n:need] = x
        self.n = need

    def result(self) -> np.ndarray:
        out = self.a[: self.n]
        self.a = None  # type: ignore[assignment]
        return out


class _TimeState:
    def __init__(self) -> None:
        self.kind: str | None = None   # "naive" or "aware"
        self.first_line: int | None = None


def _kind_check(aware: np.ndarray, text: pd.Series, state: _TimeState, file: str, lines: np.ndarray) -> bool:
    """Whether this batch's timestamps carry offsets; ``mixed_timezone`` if they disagree with each other or
    with the file's earlier rows."""
    valid = text.notna().to_numpy() & (text != "").fillna(False).to_numpy()
    if not valid.any():
        return state.kind == "aware"
    first = int(np.flatnonzero(valid)[0])
    kind = "aware" if aware[first] else "naive"
    if state.kind is None:
        state.kind, state.first_line = kind, int(lines[first])
    want_aware = state.kind == "aware"
    other = np.flatnonzero(valid & (aware != want_aware))
    if len(other):
        p = int(other[0])
        has = "carries a UTC offset" if aware[p] else "has no UTC offset"
        raise DataError(
            f"timestamp {text.iloc[p]!r} {has}, but the file's first timestamp (line {state.first_line}) "
            f"{'has one' if want_aware else 'has none'}: naive and offset timestamps cannot be mixed in one "
            "file (they would be read in different time zones); write them all one way",
            file=file, line=int(lines[p]), rule="mixed_timezone", column="timestamp")
    return want_aware


def _localize(naive: np.ndarray, tz: str, file: str, lines: np.ndarray) -> np.ndarray:
    idx = pd.DatetimeIndex(naive.view("M8[ns]"))
    try:
        loc = idx.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception:  # pinpoint the offending row
        loc = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        bad = np.flatnonzero(loc.isna() & ~idx.isna())
        p = int(bad[0])
        raise DataError(
            f"timestamp {idx[p]} does not exist or is ambiguous in {tz} (daylight-saving switch); if the file's "
            "times are UTC (or another fixed offset), say so with --timezone UTC / data.timezone",
            file=file, line=int(lines[p]), rule="bad_timestamp", column="timestamp") from None
    return loc.tz_convert("UTC").asi8.copy()


def _text_times(text: pd.Series, aware: bool) -> np.ndarray:
    """Parse text timestamps to ns (UTC when ``aware``, wall clock otherwise); NaT = iNaT."""
    kw = {"utc": True} if aware else {}
    first = pd.to_datetime(text, errors="coerce", **kw)  # format inferred from the first value: fast
    miss = first.isna().to_numpy() & text.notna().to_numpy() & (text != "").fillna(False).to_numpy()
    if miss.any():  # other formats in the same column: element by element
        first = first.copy()
        first.iloc[np.flatnonzero(miss)] = pd.to_datetime(text.iloc[np.flatnonzero(miss)], errors="coerce",
                                                          format="mixed", **kw)
    vals = first
    if isinstance(vals.dtype, pd.DatetimeTZDtype):
        vals = vals.dt.tz_convert("UTC").dt.tz_localize(None)
    return vals.to_numpy(dtype="datetime64[ns]").view("int64").copy()


def _timestamps(batch: pa.RecordBatch, cols: Columns, tz: str, file: str, lines: np.ndarray,
                state: _TimeState) -> tuple[np.ndarray, np.ndarray | None]:
    """UTC ns per row (iNaT where missing) and the naive wall-clock values (None for offset timestamps)."""
    if cols.timestamp is None:
        d = batch.column(cols.date).cast(pa.string())
        tm = batch.column(cols.time).cast(pa.string())
        text = pd.Series(d.to_pandas(), dtype="string").str.strip() + " " + pd.Series(tm.to_pandas(), dtype="string").str.strip()
        arr = pa.array(text.to_numpy(dtype=object, na_value=None), type=pa.string())
    else:
        arr = batch.column(cols.timestamp)
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_date(t):
            arr = arr.cast(pa.timestamp("ns"))
        aware = getattr(arr.type, "tz", None) is not None
        if state.kind is None:
            state.kind, state.first_line = ("aware" if aware else "naive"), int(lines[0]) if len(lines) else None
        ints = arr.cast(pa.timestamp("ns", tz=arr.type.tz)).cast(pa.int64())
        nat = np.asarray(ints.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        vals = ints.fill_null(np.iinfo(np.int64).min).to_numpy(zero_copy_only=False).astype(np.int64, copy=True)
        if aware:
            return vals, None
        ok = ~nat
        out = np.full(len(vals), np.iinfo(np.int64).min, np.int64)
        out[ok] = _localize(vals[ok], tz, file, lines[ok])
        return out, vals
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        raise DataError(f"timestamp column {cols.timestamp!r} holds numbers ({arr[0]}...): epoch numbers are not "
                        "read; write ISO 8601 times such as 2025-06-02 09:30:00", file=file,
                        line=int(lines[0]) if len(lines) else None, rule="bad_timestamp", column="timestamp")
    text = pd.Series(arr.cast(pa.string()).to_pandas(), dtype="string").str.strip()
    aware_rows = text.str.contains(_OFFSET_RE, regex=True).fillna(False).to_numpy(dtype=bool)
    aware = _kind_check(aware_rows, text, state, file, lines)
    vals = _text_times(text, aware)
    if aware:
        return vals, None
    nat = vals == np.iinfo(np.int64).min
    out = np.full(len(vals), np.iinfo(np.int64).min, np.int64)
    out[~nat] = _localize(vals[~nat], tz, file, lines[~nat])
    return out, vals


def _symbols(batch: pa.RecordBatch, cols: Columns, default: str | None, file: str,
             lines: np.ndarray, table: dict[str, int]) -> np.ndarray:
    """Codes (first-seen order in ``table``) of each row's upper-cased, stripped symbol."""
    n = batch.num_rows
    if cols.symbol is None:
        if not default:
            raise DataError("no symbol column and none given", file=file, rule="missing_column", column="symbol")
        code = table.setdefault(default, len(table))
        return np.full(n, code, np.int32)
    arr = batch.column(cols.symbol)
    if not pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string()).dictionary_encode()
    dic = [("" if v is None else str(v)).strip().upper() for v in arr.dictionary.to_pylist()]
    idx = arr.indices.to_numpy(zero_copy_only=False)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    blank = ~valid
    if not blank.all():
        empty_codes = np.array([d == "" for d in dic] or [False])
        blank |= valid & empty_codes[np.where(valid, idx, 0)]
    if blank.any():
        p = int(np.flatnonzero(blank)[0])
        raise DataError("symbol is missing", file=file, line=int(lines[p]), rule="nan", column="symbol")
    remap = np.array([table.setdefault(d, len(table)) for d in dic], dtype=np.int32)
    return remap[idx.astype(np.int64)]


# ---------------------------------------------------------------------------------------- files
def read_file(path: Path, *, tz: str, default_symbol: str | None, keep_symbols: list[str] | None = None) -> FileArrays:
    """All rows of one CSV/Parquet file (see the module docstring); raises ``DataError`` on parse errors.
    Row-wise rule violations are collected in ``FileArrays.log``, not raised."""
    is_pq = path.name.lower().endswith((".parquet", ".pq"))
    file = str(path)
    if is_pq:
        try:
            meta = pq.ParquetFile(path)
            names, rows = meta.schema_arrow.names, meta.metadata.num_rows
        except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds
            raise DataError(f"cannot read file: {e}", file=file, rule="unreadable") from None
        cols = map_columns(names, file)
        return _read(lambda: _parquet_batches(path, cols), cols, file, 1, tz, default_symbol, keep_symbols,
                     lambda first_rows: rows)
    cols = map_columns(csv_names(path), file)
    size = path.stat().st_size

    def estimate(first_rows: int) -> int:  # rows of the file from the first block's density, 5 % spare
        return int(first_rows * max(size / BLOCK_BYTES, 1.0) * 1.05) + 16

    try:
        return _read(lambda: _csv_batches(path, cols, True), cols, file, 2, tz, default_symbol, keep_symbols, estimate)
    except _Retry:
        return _read(lambda: _csv_batches(path, cols, False), cols, file, 2, tz, default_symbol, keep_symbols,
                     estimate)


def read_frame(df: pd.DataFrame, *, label: str, tz: str) -> FileArrays:
    """An in-memory long table (columns as in a file) through the same parser; lines are 1-based rows."""
    cols = map_columns(list(df.columns), label)
    arrays = {}
    for c in cols.source:
        col = df[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype):  # UTC instants, tagged (pyarrow's own path warns in pandas 3)
            utc = col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
            arrays[c] = pa.array(utc, type=pa.timestamp("ns", tz="UTC"), mask=np.isnat(utc))
            continue
        try:
            arrays[c] = pa.array(col, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays[c] = pa.array(col.astype("string"), from_pandas=True)
    batch = pa.RecordBatch.from_pydict(arrays)
    return _read(lambda: iter([batch]), cols, label, 1, tz, None, None, lambda first_rows: len(df))


def _read(batches, cols: Columns, file: str, first_line: int, tz: str, default_symbol: str | None,
          keep_symbols: list[str] | None, estimate) -> FileArrays:
    table: dict[str, int] = {}
    keep = {s.upper() for s in keep_symbols} if keep_symbols else None
    acc: dict[str, _Column] = {}
    sample_t: list[np.ndarray] = []
    sample_l: list[np.ndarray] = []
    state = _TimeState()
    log = ProblemLog()
    rows = 0
    sampled = 0
    for batch in batches():
        n = batch.num_rows
        lines = np.arange(rows + first_line, rows + first_line + n, dtype=np.int64)
        rows += n
        sym = _symbols(batch, cols, default_symbol, file, lines, table)
        vals = {c: _numbers(batch.column(cols.values[c]), c, file, lines) for c in OHLCV}
        t, naive = _timestamps(batch, cols, tz, file, lines, state)
        del batch
        if keep is not None:
            names = np.array(list(table), dtype=object)
            m = np.isin(names[sym], list(keep)) if len(names) else np.zeros(n, bool)
            sym, t, lines = sym[m], t[m], lines[m]
            vals = {c: v[m] for c, v in vals.items()}
            naive = naive[m] if naive is not None else None
        inv = {v: k for k, v in table.items()}
        value_problems(log, t == np.iinfo(np.int64).min, vals, lines, lambda p, s=sym: inv[int(s[p])])
        if naive is not None and len(naive):
            pos = np.arange(sampled, sampled + len(naive))
            pick = ((pos < TZ_SAMPLE_DENSE) | (pos % TZ_SAMPLE_STRIDE == 0)) & (naive != np.iinfo(np.int64).min)
            sample_t.append(naive[pick])
            sample_l.append(lines[pick])
            sampled += len(naive)
        if not acc:
            cap = max(int(estimate(n)), n)
            acc = {"t": _Column(np.int64, cap), "sym": _Column(np.int32, cap), "line": _Column(np.int64, cap),
                   **{c: _Column(np.float64, cap) for c in OHLCV}}
        acc["t"].add(t)
        acc["sym"].add(sym)
        acc["line"].add(lines)
        for c in OHLCV:
            acc[c].add(vals[c])
        del vals, t, sym, naive, lines
    if rows == 0:
        raise DataError("file has no rows", file=file, rule="empty")
    if not acc:  # every row filtered out by data.symbols
        acc = {"t": _Column(np.int64, 0), "sym": _Column(np.int32, 0), "line": _Column(np.int64, 0),
               **{c: _Column(np.float64, 0) for c in OHLCV}}
    # codes in alphabetical order of the symbols, so sorting by code sorts by symbol
    names = sorted(table)
    rank = np.zeros(max(len(table), 1), np.int32)
    for i, s in enumerate(names):
        rank[table[s]] = i
    sym = acc.pop("sym").result()
    np.take(rank, sym, out=sym)
    return FileArrays(file=file, t=acc.pop("t").result(), sym=sym, symbols=names,
                      values={c: acc.pop(c).result() for c in OHLCV}, line=acc.pop("line").result(), rows_read=rows,
                      naive=state.kind != "aware",
                      naive_sample=np.concatenate(sample_t) if sample_t else np.zeros(0, np.int64),
                      sample_line=np.concatenate(sample_l) if sample_l else np.zeros(0, np.int64), log=log)


__all__ = ["ALIASES", "Columns", "FileArrays", "Problem", "map_columns", "read_file", "read_frame"]
