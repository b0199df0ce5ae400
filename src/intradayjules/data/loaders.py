"""Load bars from CSV or Parquet into the canonical table (see ``bars.py``).

Accepted layouts:
* a directory of files, one per symbol; the symbol is the file name up to the first ``_``
  (``SPY_5min.csv`` -> ``SPY``), unless the file has a symbol column;
* one long file with a symbol column (``symbol``, ``ticker``, ``sym``);
* a directory written by ``intradayjules data synth`` (``bars.parquet`` + ``universe.parquet``): its bars.

Column names are matched case-insensitively with common aliases (``datetime``, ``Date``, ``time``, ``o``,
``vol``...), and a separate date and time column pair is joined. Naive timestamps are wall-clock times
in the exchange time zone (default America/New_York) and are converted to UTC, so daylight-saving
switches come out right; timestamps with an offset are converted as they are. Files are read in a
streaming way (``reader.py``); the steps after reading work on arrays and build the table once.

Steps (each failure is a ``DataError`` naming file, line and rule):
read (``reader.py``) -> row rules -> order per symbol (repairs only on request) -> time-zone sanity
(``tzcheck.py``) -> sessions of ``data.calendar`` (extended hours and non-trading days dropped, counted)
-> bar sizes (mixed sizes are an error unless ``data.bar`` resamples them) -> resample -> daily input
statistics -> gaps (``gaps.py``: short gaps filled as stale, longer holes split the history) ->
staleness -> the canonical table.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import DataConfig
from ..errors import DataError
from . import sessions
from .bars import OHLCV, LoadReport, ProblemLog, fmt_ts, order_problems, raise_problems, staleness
from .gaps import fill_gaps
from .reader import ALIASES, FileArrays, read_file, read_frame
from .tzcheck import check_timezone

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
SYNTH_FILES = ("bars.parquet", "universe.parquet")
__all__ = ["ALIASES", "Bars", "bar_source", "bars_from_frame", "list_files", "load_bars", "symbol_from_filename"]


@dataclass
class Bars:
    """A canonical bar table and what was done to produce it.

    ``daily``: per symbol and session, what the *input* held (before any filling): ``bars`` (regular-session
    bars), ``traded_bars`` (volume > 0), ``volume``, ``dollar_volume`` (sum of close x volume),
    ``expected_bars`` (the calendar's bars that session). ``coverage``: per symbol, sessions, holes and
    input bars against the calendar (``gaps.py``). Both are None for tables not made by the loader."""

    frame: pd.DataFrame
    report: LoadReport = field(default_factory=LoadReport)
    bar: pd.Timedelta | None = None
    daily: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    calendar: str = "XNYS"

    @property
    def symbols(self) -> list[str]:
        return sorted(self.frame["symbol"].unique().tolist())


def bar_source(path: Path) -> tuple[Path, Path | None]:
    """The bar file(s) of ``path`` and a universe file: a ``data synth`` directory is its bars.parquet."""
    if path.is_dir() and all((path / f).exists() for f in SYNTH_FILES):
        return path / "bars.parquet", path / "universe.parquet"
    return path, None


def list_files(path: Path) -> list[Path]:
    path, _ = bar_source(Path(path))
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


def release_memory() -> None:
    """Hand freed memory back to the OS between stages (big files): pyarrow's pool and glibc's heap keep
    freed blocks otherwise, which showed as up to ~1x the file of resident memory that held no data."""
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


# ----------------------------------------------------------------------------------- one file
@dataclass
class Part:
    """One file's validated rows, sorted by symbol then time (symbol codes local to the file)."""

    cols: dict[str, np.ndarray]
    symbols: list[str]
    file_index: int


def validate_file(fa: FileArrays, cfg: DataConfig, report: LoadReport, file_index: int) -> Part:
    """Order and duplicate rules (repairs if asked), then sort; raise the file's problems."""
    log: ProblemLog = fa.log
    nat = fa.t == np.iinfo(np.int64).min
    symbol_of = lambda p: fa.symbols[int(fa.sym[p])]  # noqa: E731
    order = order_problems(log, fa.sym, fa.t, ~nat, fa.line, symbol_of)
    drop: tuple[str, ...] = ()
    problems = log.problems()
    unsorted = [p for p in problems if p.rule == "unsorted"]
    dups = [p for p in problems if p.rule == "duplicate_timestamp"]
    if cfg.repair.sort and unsorted:
        drop += ("unsorted",)
        report.repairs.append(f"{fa.file}: sorted rows into time order (first out-of-order row: line {unsorted[0].line})")
    if cfg.repair.drop_duplicates and dups:
        drop += ("duplicate_timestamp",)
    raise_problems(log.problems(drop=drop), fa.file)
    # take the arrays over from ``fa`` so each column can be replaced (and freed) one at a time
    cols = {"sym": fa.sym, "t": fa.t, "line": fa.line, **fa.values}
    fa.values, fa.t, fa.sym, fa.line = {}, None, None, None  # type: ignore[assignment]
    if unsorted or dups:
        order = np.lexsort((cols["t"], cols["sym"]))  # stable: equal times keep file order
    if (np.diff(order) != 1).any():
        _take(cols, order)
    del order
    if dups and cfg.repair.drop_duplicates:
        s, t = cols["sym"], cols["t"]
        keep = np.ones(len(t), bool)
        keep[1:] = ~((s[1:] == s[:-1]) & (t[1:] == t[:-1]))
        report.repairs.append(f"{fa.file}: dropped {int((~keep).sum())} duplicate-timestamp rows "
                              "(kept the first in file order)")
        _take(cols, keep)
    return Part(cols, fa.symbols, file_index)


def merge_parts(parts: list[Part], files: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """One sorted array set with global symbol codes; a symbol's bar in two files at one time is an error."""
    symbols = sorted({s for p in parts for s in p.symbols})
    code = {s: i for i, s in enumerate(symbols)}
    out: dict[str, list] = {}
    for p in parts:
        remap = np.array([code[s] for s in p.symbols] or [0], np.int32)
        p.cols["sym"] = remap[p.cols["sym"]]
        p.cols["file"] = np.full(len(p.cols["t"]), p.file_index, np.int32)
        for k, v in p.cols.items():
            out.setdefault(k, []).append(v)
        p.cols = {}
    cols = {k: (v[0] if len(v) == 1 else np.concatenate(v)) for k, v in out.items()}
    out.clear()
    if len(parts) > 1:
        sym, t = cols["sym"], cols["t"]
        order = np.argsort(sym, kind="stable")
        ts = t[order]
        ss = sym[order]
        if ((ss[1:] == ss[:-1]) & (ts[1:] <= ts[:-1])).any():
            order = np.lexsort((t, sym))
        del ts, ss
        _take(cols, order)
        sym, t = cols["sym"], cols["t"]
        dup = np.flatnonzero((sym[1:] == sym[:-1]) & (t[1:] == t[:-1]))
        if len(dup):
            k = int(dup[0])
            fa, fb = files[int(cols["file"][k])], files[int(cols["file"][k + 1])]
            raise DataError(f"symbol {symbols[int(sym[k])]} appears in more than one file with a bar at "
                            f"{fmt_ts(t[k])}: {fa} line {int(cols['line'][k])} and {fb} line {int(cols['line'][k + 1])}",
                            file=fb, line=int(cols["line"][k + 1]), rule="duplicate_timestamp", column="timestamp")
    return cols, symbols


# --------------------------------------------------------------------------------------- load
def load_bars(path: str | Path, cfg: DataConfig | None = None, **overrides) -> Bars:
    """Read, validate and normalise bars from a file or directory (steps: module docstring). The input
    files are never written."""
    cfg = cfg or DataConfig()
    if overrides:
        cfg = DataConfig.model_validate({**cfg.model_dump(), **overrides})
    path = Path(path)
    report = LoadReport()
    files = list_files(path)
    parts = []
    for i, f in enumerate(files):
        fa = read_file(f, tz=cfg.timezone, default_symbol=symbol_from_filename(f), keep_symbols=cfg.symbols)
        report.files.append(str(f))
        report.rows_read += fa.rows_read
        check_timezone(fa, cfg.timezone, cfg.calendar)
        parts.append(validate_file(fa, cfg, report, i))
        del fa
        release_memory()
    cols, symbols = merge_parts(parts, report.files)
    if len(cols["t"]) == 0:
        raise DataError("no bars left (check data.symbols)", file=str(path), rule="empty")
    return finish(cols, symbols, cfg, report, str(path))


def bars_from_frame(df: pd.DataFrame, cfg: DataConfig | None = None, label: str = "<frame>") -> Bars:
    """Validate an in-memory long table (columns as in a file) the same way files are."""
    cfg = cfg or DataConfig()
    fa = read_frame(df, label=label, tz=cfg.timezone)
    report = LoadReport(files=[label], rows_read=len(df))
    check_timezone(fa, cfg.timezone, cfg.calendar)
    part = validate_file(fa, cfg, report, 0)
    cols, symbols = merge_parts([part], [label])
    if len(cols["t"]) == 0:
        raise DataError("no bars", file=label, rule="empty")
    return finish(cols, symbols, cfg, report, label)


def _take(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    for k in list(cols):
        cols[k] = cols[k][mask]
    return cols


def _choose_bar(cols, symbols, files, cfg: DataConfig, opens, report: LoadReport) -> tuple[pd.Timedelta, bool]:
    """The bar of the output and whether to resample (module docstring of ``sessions``)."""
    sizes = sessions.bar_sizes(cols["sym"], cols["sess"], cols["t"], opens, len(symbols))
    per = sizes.per_symbol
    known = np.flatnonzero(per > 0)
    if len(known) == 0:
        if cfg.bar is None:
            raise DataError("cannot infer the bar size: fewer than two bars per session", file=files[0],
                            rule="bar_size")
        return pd.Timedelta(cfg.bar), False
    distinct = sorted(set(per[known].tolist()))
    fmt = lambda ns: _fmt_td(pd.Timedelta(int(ns), unit="ns"))  # noqa: E731
    first_row = {int(s): int(np.flatnonzero(cols["sym"] == s)[0]) for s in known}

    def where(row: int) -> tuple[str, int]:
        return files[int(cols["file"][row])], int(cols["line"][row])

    target = pd.Timedelta(cfg.bar) if cfg.bar is not None else None
    if target is None:
        odd = np.flatnonzero(sizes.odd_row >= 0)
        if odd.size:
            s = int(odd[0])
            row = int(sizes.odd_row[s])
            f, ln = where(row)
            day = pd.Timestamp(int(cols["t"][row]), unit="ns", tz="UTC").date()
            raise DataError(f"{symbols[s]}: bar size changes: {fmt(per[s])} bars, but the session of {day} has "
                            f"{fmt(sizes.odd_size[s])} bars (line {ln}); mixed bar sizes are not resampled silently: "
                            f"resample everything to one size with data.bar (--bar "
                            f"{fmt(max(per[s], sizes.odd_size[s]))}), or load the parts separately",
                            file=f, line=ln, rule="mixed_bar_size", column="timestamp")
        if len(distinct) > 1:
            a = int(known[per[known] == distinct[0]][0])
            b = int(known[per[known] == distinct[-1]][0])
            fa_, la = where(first_row[a])
            fb, lb = where(first_row[b])
            raise DataError(f"mixed bar sizes: {symbols[a]} has {fmt(distinct[0])} bars ({fa_}), {symbols[b]} has "
                            f"{fmt(distinct[-1])} bars ({fb}); resampling is an explicit choice: set data.bar "
                            f"(--bar {fmt(np.lcm.reduce(np.array(distinct)))}) or load them separately",
                            file=fb, line=lb, rule="mixed_bar_size", column="timestamp")
        return pd.Timedelta(int(distinct[0]), unit="ns"), False
    sizes_all = set(distinct) | set(sizes.odd_size[sizes.odd_row >= 0].tolist())
    for ns in sorted(sizes_all):
        if target.value < ns or target.value % ns:
            s = int(known[per[known] == ns][0]) if (per[known] == ns).any() else int(known[0])
            f, ln = where(first_row[s])
            raise DataError(f"cannot resample {symbols[s]}'s {fmt(ns)} bars to {fmt(target.value)}: the target must be a "
                            "multiple of the input bar", file=f, line=ln, rule="bar_size")
    resample = any(ns != target.value for ns in sizes_all)
    if resample:
        report.resampled_from = (str(pd.Timedelta(int(distinct[0]), unit="ns")) if len(sizes_all) == 1
                                 else " and ".join(fmt(ns) for ns in sorted(sizes_all)))
    return target, resample


def _fmt_td(td: pd.Timedelta) -> str:
    s = int(td.total_seconds())
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}min"
    return f"{s}s"


def daily_input(cols: dict[str, np.ndarray], symbols: list[str], sched: pd.DataFrame, n_per: np.ndarray) -> pd.DataFrame:
    """Per symbol and session, what the input held (``Bars.daily``)."""
    sym, sess = cols["sym"], cols["sess"]
    inside = cols["inside"]
    starts = sessions.group_starts(sym, sess)
    vol = cols["volume"]
    traded = (vol > 0) & inside
    return pd.DataFrame({
        "symbol": np.asarray(symbols, dtype=object)[sym[starts]],
        "session": sched.index.to_numpy()[sess[starts]],
        "bars": np.add.reduceat(inside.astype(np.int64), starts),
        "traded_bars": np.add.reduceat(traded.astype(np.int64), starts),
        "volume": np.add.reduceat(vol, starts),
        "dollar_volume": np.add.reduceat(vol * cols["close"], starts),
        "expected_bars": n_per[sess[starts]],
    })


def finish(cols: dict[str, np.ndarray], symbols: list[str], cfg: DataConfig, report: LoadReport, label: str) -> Bars:
    """Sessions, bar size, resampling, gaps and staleness on sorted, validated arrays; the canonical table."""
    files = report.files
    sess, inside, sched = sessions.assign_sessions(cols["t"], cfg.calendar)
    non_session = sess < 0
    report.dropped_non_session_days += int(non_session.sum())
    keep = ~non_session
    if not cfg.extended_hours:
        report.dropped_outside_session += int((~inside & ~non_session).sum())
        keep &= inside
    if not keep.any():
        k = 0
        f = files[int(cols["file"][k])]
        raise DataError(f"no bars inside the exchange's sessions: all {len(keep):,} bars fall outside the {cfg.calendar} "
                        f"regular session or on days without one (first: {fmt_ts(cols['t'][k])}); daily bars, "
                        "extended hours only, or the wrong data.timezone / data.calendar?",
                        file=f, line=int(cols["line"][k]), rule="empty")
    cols["sess"], cols["inside"] = sess, inside
    if not keep.all():
        cols = _take(cols, keep)
    opens, closes = sessions.open_close_ns(sched)
    bar, do_resample = _choose_bar(cols, symbols, files, cfg, opens, report)
    if do_resample:
        inside_bars = cols.pop("inside")
        cols = sessions.resample_arrays(cols, bar, opens)
        _, cols["inside"] = sessions.inside_session(cols["t"], opens, closes)
        del inside_bars
    n_per = sessions.bars_per_session(sched, bar)
    daily = daily_input(cols, symbols, sched, n_per)
    release_memory()
    gap = fill_gaps(cols, symbols, files, sched, n_per, bar, cfg.max_fill_sessions,
                    cfg.fill_gaps and not cfg.extended_hours, report)
    if gap.cols is not None:
        cols = gap.cols
    for k in ("line", "file", "inside"):
        cols.pop(k, None)
    release_memory()
    stale, secs = staleness(cols["volume"], cols["t"], cols["sym"])
    frame = build_frame(cols, symbols, sched, stale, secs)
    release_memory()
    return Bars(frame, report, bar, daily=daily, coverage=gap.coverage, calendar=cfg.calendar)


def build_frame(cols: dict[str, np.ndarray], symbols: list[str], sched: pd.DataFrame, stale: np.ndarray,
                secs: np.ndarray) -> pd.DataFrame:
    """The canonical table from arrays, without copying the numeric columns."""
    t = cols.pop("t")
    ts = pd.arrays.DatetimeArray._simple_new(t.view("M8[ns]"), dtype=pd.DatetimeTZDtype("ns", "UTC"))
    sym_codes = cols.pop("sym")
    sym = pd.Categorical.from_codes(sym_codes, categories=pd.Index(symbols, dtype=object)).astype(str)
    del sym_codes
    sess_days = sched.index.to_numpy(dtype="datetime64[ns]")[cols.pop("sess")]
    data = {"timestamp": ts, "symbol": sym}
    for c in OHLCV:
        data[c] = cols.pop(c)
    data["stale"] = stale
    data["secs_since_trade"] = secs
    data["session"] = sess_days
    return pd.DataFrame(data, copy=False)
