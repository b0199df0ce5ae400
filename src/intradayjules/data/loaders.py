"""Load bars from CSV or Parquet into the canonical table (see ``bars.py``).

Accepted layouts:
* a directory of files, one per symbol; the symbol is the file name up to the first ``_``
  (``SPY_5min.csv`` -> ``SPY``), unless the file has a symbol column;
* one long file with a symbol column (``symbol``, ``ticker``, ``sym``).

Column names are matched case-insensitively with common aliases (``datetime``, ``Date``, ``time``, ``o``,
``vol``...), and a separate date and time column pair is joined. Naive timestamps are wall-clock times
in the exchange time zone (default America/New_York) and are converted to UTC, so daylight-saving
switches come out right; timestamps with an offset are converted as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DataConfig
from ..errors import DataError
from .bars import LINE_COL, LoadReport, add_staleness, canonical, validate_bars
from . import sessions

ALIASES = {
    "timestamp": ["timestamp", "datetime", "date_time", "ts", "time_stamp", "date", "time", "bar_time"],
    "symbol": ["symbol", "ticker", "sym", "instrument"],
    "open": ["open", "o", "open_price"],
    "high": ["high", "h", "high_price"],
    "low": ["low", "l", "low_price"],
    "close": ["close", "c", "close_price", "last"],
    "volume": ["volume", "v", "vol", "qty"],
}
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


@dataclass
class Bars:
    """A canonical bar table and what was done to produce it."""

    frame: pd.DataFrame
    report: LoadReport = field(default_factory=LoadReport)
    bar: pd.Timedelta | None = None

    @property
    def symbols(self) -> list[str]:
        return sorted(self.frame["symbol"].unique().tolist())


def list_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        raise DataError("no such file or directory", file=str(path), rule="missing_file")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    if not files:
        raise DataError("no .csv or .parquet files in directory", file=str(path), rule="missing_file")
    return files


def symbol_from_filename(path: Path) -> str:
    name = path.name
    for suf in SUFFIXES:
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
            break
    return name.split("_")[0].upper()


def _map_columns(columns: list[str], file: str) -> dict[str, str]:
    lower = {c.strip().lower(): c for c in columns}
    mapping: dict[str, str] = {}
    for canon, names in ALIASES.items():
        for n in names:
            if n in lower and lower[n] not in mapping.values():
                mapping[canon] = lower[n]
                break
    # a separate Date + Time pair: both found under 'timestamp' aliases; join them
    return mapping


def read_raw(path: Path) -> pd.DataFrame:
    """Read one file with original columns plus ``_line`` (source line / row number)."""
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
            df[LINE_COL] = np.arange(1, len(df) + 1)
        else:
            df = pd.read_csv(path, engine="pyarrow")
            df[LINE_COL] = np.arange(2, len(df) + 2)  # line 1 is the header
    except DataError:
        raise
    except Exception as e:  # pyarrow/pandas parse errors carry their own row detail
        raise DataError(f"cannot read file: {e}", file=str(path), rule="unreadable") from None
    return df


def _parse_timestamps(raw: pd.Series, tz: str, file: str, lines: np.ndarray) -> pd.Series:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        text = raw.astype("string")
        parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=False)
        if parsed.dtype == object:  # mixed UTC offsets: normalise them all to UTC
            parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC")
    try:
        local = parsed.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception:  # pinpoint the offending row
        local = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        bad = np.flatnonzero(local.isna().to_numpy() & parsed.notna().to_numpy())
        p = int(bad[0])
        raise DataError(
            f"timestamp {parsed.iloc[p]} does not exist or is ambiguous in {tz} (daylight-saving switch)",
            file=file, line=int(lines[p]), rule="bad_timestamp", column="timestamp",
        ) from None
    return local.dt.tz_convert("UTC")


def to_long(df: pd.DataFrame, file: str, tz: str, default_symbol: str | None) -> pd.DataFrame:
    """Rename aliases, parse timestamps to UTC, attach the symbol. Output columns: timestamp, symbol,
    OHLCV, _line. Missing columns raise ``DataError`` naming them."""
    cols = [c for c in df.columns if c != LINE_COL]
    lower = {c.strip().lower(): c for c in cols}
    out = pd.DataFrame(index=df.index)
    # timestamp: one column, or a date + time pair
    ts_src = None
    if "date" in lower and "time" in lower and not any(a in lower for a in ("timestamp", "datetime", "date_time")):
        ts_raw = df[lower["date"]].astype("string") + " " + df[lower["time"]].astype("string")
        ts_src = f"{lower['date']}+{lower['time']}"
    else:
        for a in ALIASES["timestamp"]:
            if a in lower:
                ts_src = lower[a]
                ts_raw = df[ts_src]
                break
    if ts_src is None:
        raise DataError(f"no timestamp column (looked for {ALIASES['timestamp']}; found {cols})",
                        file=file, rule="missing_column", column="timestamp")
    for canon in ("open", "high", "low", "close", "volume"):
        src = next((lower[a] for a in ALIASES[canon] if a in lower), None)
        if src is None:
            raise DataError(f"no {canon} column (looked for {ALIASES[canon]}; found {cols})",
                            file=file, rule="missing_column", column=canon)
        col = df[src]
        if not pd.api.types.is_numeric_dtype(col):
            num = pd.to_numeric(col, errors="coerce")
            bad = np.flatnonzero(num.isna().to_numpy() & col.notna().to_numpy())
            if len(bad):
                p = int(bad[0])
                raise DataError(f"{canon}={col.iloc[p]!r} is not a number", file=file,
                                line=int(df[LINE_COL].iloc[p]), rule="not_a_number", column=canon)
            col = num
        out[canon] = col.astype("float64")
    sym_src = next((lower[a] for a in ALIASES["symbol"] if a in lower), None)
    if sym_src is not None:
        out["symbol"] = df[sym_src].astype(str).str.strip().str.upper()
    elif default_symbol:
        out["symbol"] = default_symbol
    else:
        raise DataError("no symbol column and none given", file=file, rule="missing_column", column="symbol")
    out[LINE_COL] = df[LINE_COL].to_numpy()
    out["timestamp"] = _parse_timestamps(ts_raw, tz, file, df[LINE_COL].to_numpy()).astype("datetime64[ns, UTC]")
    return out[["timestamp", "symbol", "open", "high", "low", "close", "volume", LINE_COL]]


def load_bars(path: str | Path, cfg: DataConfig | None = None, **overrides) -> Bars:
    """Read, validate and normalise bars from a file or directory.

    Steps: read -> map columns -> parse timestamps (naive = exchange time zone) -> validate every rule
    (``DataError`` naming file, line and rule) -> keep regular-session bars of real sessions (unless
    ``extended_hours``) -> resample (``bar``) -> fill missing in-session bars as stale -> staleness
    columns. The input files are never written.
    """
    cfg = cfg or DataConfig()
    if overrides:
        cfg = DataConfig.model_validate({**cfg.model_dump(), **overrides})
    path = Path(path)
    report = LoadReport()
    frames = []
    for f in list_files(path):
        raw = read_raw(f)
        report.files.append(str(f))
        report.rows_read += len(raw)
        long = to_long(raw, str(f), cfg.timezone, symbol_from_filename(f))
        if cfg.symbols:
            long = long[long["symbol"].isin([s.upper() for s in cfg.symbols])]
        long = validate_bars(long, file=str(f), sort=cfg.repair.sort,
                             drop_duplicates=cfg.repair.drop_duplicates, report=report)
        frames.append(long)
    df = pd.concat(frames, ignore_index=True)
    if df.duplicated(["symbol", "timestamp"]).any():
        dup = df[df.duplicated(["symbol", "timestamp"], keep=False)].iloc[0]
        raise DataError(f"symbol {dup['symbol']} appears in more than one file", file=str(path),
                        rule="duplicate_timestamp")
    df = df.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    if df.empty:
        raise DataError("no bars left (check data.symbols)", file=str(path), rule="empty")
    return finish_bars(df, cfg, report)


def finish_bars(df: pd.DataFrame, cfg: DataConfig, report: LoadReport) -> Bars:
    """Session filter, resampling, gap filling and staleness on a validated, sorted long frame."""
    sess, inside, sched = sessions.assign_sessions(df["timestamp"], cfg.calendar)
    non_session = sess < 0
    report.dropped_non_session_days += int(non_session.sum())
    keep = ~non_session
    if not cfg.extended_hours:
        report.dropped_outside_session += int((~inside & ~non_session).sum())
        keep &= inside
    df = df[keep].reset_index(drop=True)
    sess = sess[keep]
    if df.empty:
        raise DataError("no bars inside the exchange's sessions", rule="empty")
    sym = df["symbol"].to_numpy()
    in_bar = sessions.infer_bar(df["timestamp"], sym)
    bar = in_bar
    if cfg.bar is not None:
        bar = pd.Timedelta(cfg.bar)
        if bar < in_bar or bar.value % in_bar.value:
            raise DataError(f"cannot resample {in_bar} bars to {bar}: target must be a multiple", rule="bar_size")
        if bar != in_bar:
            report.resampled_from = str(in_bar)
            df = sessions.resample(df, bar, sched, sess)
            sess = df["_sess"].to_numpy()
    df["_sess"] = sess
    if cfg.fill_gaps and not cfg.extended_hours:
        df = sessions.fill_gaps(df, bar, sched, report)
    df["session"] = sched.index.to_numpy()[df["_sess"].to_numpy()]
    df = add_staleness(df)
    return Bars(canonical(df), report, bar)


def bars_from_frame(df: pd.DataFrame, cfg: DataConfig | None = None, label: str = "<frame>") -> Bars:
    """Validate an in-memory long table (columns as in a file) the same way files are."""
    cfg = cfg or DataConfig()
    raw = df.copy()
    raw[LINE_COL] = np.arange(1, len(raw) + 1)
    long = to_long(raw, label, cfg.timezone, None)
    report = LoadReport(files=[label], rows_read=len(df))
    long = validate_bars(long, file=label, sort=cfg.repair.sort, drop_duplicates=cfg.repair.drop_duplicates,
                         report=report)
    return finish_bars(long, cfg, report)
