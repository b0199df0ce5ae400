"""The canonical bar table and the validation rules every loader applies.

Canonical table (one row per symbol and bar, sorted by symbol then time)::

    timestamp         datetime64[ns, UTC]  bar start
    symbol            str
    open high low close   float64          > 0 and finite, low <= min(open, close), high >= max(open, close)
    volume            float64              >= 0 shares and finite; 0 means no trade in the bar
    stale             bool                 volume == 0 (the feed repeats the last price)
    secs_since_trade  float64              seconds from the start of the last bar with a trade
                                           (0 for a traded bar; NaN before the symbol's first trade)
    session           datetime64[ns]       exchange session date the bar belongs to

Validation never rewrites its input. Repairs (sorting, dropping duplicates) happen only when asked for,
and each one is recorded in the returned report. The rules are checked on plain arrays
(:func:`value_problems`, :func:`order_problems`) so a file can be checked batch by batch while it is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError

OHLCV = ["open", "high", "low", "close", "volume"]
PRICES = ["open", "high", "low", "close"]
CANONICAL_COLUMNS = ["timestamp", "symbol", *OHLCV, "stale", "secs_since_trade", "session"]
LINE_COL = "_line"  # source line number, carried from the reader to the validator, then dropped
MAX_PER_RULE = 3

RULES = {
    "missing_column": "a required column is absent",
    "bad_timestamp": "timestamp cannot be parsed (or is ambiguous in the exchange time zone)",
    "mixed_timezone": "some timestamps carry a UTC offset and others do not",
    "nan": "a price or volume is missing",
    "not_finite": "a price or volume is infinite",
    "non_positive_price": "open, high, low and close must be > 0",
    "high_below": "high is below max(open, close)",
    "low_above": "low is above min(open, close)",
    "negative_volume": "volume must be >= 0",
    "unsorted": "bars of a symbol are not in increasing time order",
    "duplicate_timestamp": "the same symbol has two bars with one timestamp",
}
# (rule, column) in the order problems are reported
PROBLEM_ORDER = ([("bad_timestamp", "timestamp")] + [("nan", c) for c in OHLCV] + [("not_finite", c) for c in OHLCV]
                 + [("non_positive_price", c) for c in PRICES]
                 + [("high_below", "high"), ("low_above", "low"), ("negative_volume", "volume"),
                    ("unsorted", "timestamp"), ("duplicate_timestamp", "timestamp")])


@dataclass
class Problem:
    rule: str
    line: int | None
    symbol: str | None
    column: str | None
    message: str

    def as_error(self, file: str | None) -> DataError:
        msg = self.message if self.symbol is None else f"{self.symbol}: {self.message}"
        return DataError(msg, file=file, line=self.line, rule=self.rule, column=self.column)


class ProblemLog:
    """The first ``MAX_PER_RULE`` problems of each (rule, column), gathered across batches."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str | None], list[Problem]] = {}

    def add(self, p: Problem) -> None:
        lst = self.by_key.setdefault((p.rule, p.column), [])
        if len(lst) < MAX_PER_RULE:
            lst.append(p)

    def full(self, rule: str, column: str | None) -> bool:
        return len(self.by_key.get((rule, column), ())) >= MAX_PER_RULE

    def problems(self, drop: tuple[str, ...] = ()) -> list[Problem]:
        order = {k: i for i, k in enumerate(PROBLEM_ORDER)}
        keys = sorted(self.by_key, key=lambda k: order.get(k, len(order)))
        return [p for k in keys if k[0] not in drop for p in self.by_key[k]]


def raise_problems(problems: list[Problem], file: str | None) -> None:
    if problems:
        err = problems[0].as_error(file)
        err.problems = [str(p.as_error(file)) for p in problems]  # type: ignore[attr-defined]
        raise err


@dataclass
class Hole:
    """Whole sessions missing in a symbol's history that were not filled: its history is split there."""

    symbol: str
    last_before: pd.Timestamp   # last session with bars before the hole
    first_after: pd.Timestamp   # first session with bars after it
    sessions: int               # exchange sessions missing

    def __str__(self) -> str:
        return (f"{self.symbol}: {self.sessions} sessions missing between {self.last_before.date()} and "
                f"{self.first_after.date()} (not filled: history split)")


@dataclass
class LoadReport:
    """What a loader did beyond reading: repairs, dropped and filled bars, holes. Nothing happens silently."""

    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    repairs: list[str] = field(default_factory=list)
    dropped_outside_session: int = 0
    dropped_non_session_days: int = 0
    filled_stale: int = 0          # bars inserted inside sessions the symbol traded in
    filled_sessions: int = 0       # whole missing sessions filled (at most data.max_fill_sessions in a row)
    filled_session_bars: int = 0   # bars of those sessions
    holes: list[Hole] = field(default_factory=list)
    resampled_from: str | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"read {self.rows_read} rows from {len(self.files)} file(s)"]
        out += self.repairs
        if self.dropped_outside_session:
            out.append(f"dropped {self.dropped_outside_session} extended-hours bars")
        if self.dropped_non_session_days:
            out.append(f"dropped {self.dropped_non_session_days} bars on non-trading days")
        if self.resampled_from:
            out.append(f"resampled from {self.resampled_from}")
        if self.filled_stale:
            out.append(f"filled {self.filled_stale} missing bars as stale (price carried, volume 0)")
        if self.filled_sessions:
            out.append(f"filled {self.filled_sessions} whole missing session(s) ({self.filled_session_bars} bars) "
                       "as stale: gaps of at most data.max_fill_sessions sessions")
        if self.holes:
            out.append(f"{len(self.holes)} hole(s) longer than data.max_fill_sessions left unfilled "
                       f"({sum(h.sessions for h in self.holes)} sessions)")
        out += self.notes
        return out


def _line_of(df: pd.DataFrame, pos: np.ndarray) -> np.ndarray:
    if LINE_COL in df.columns:
        return df[LINE_COL].to_numpy()[pos]
    return pos + 1


def value_problems(log: ProblemLog, t_nat: np.ndarray, values: dict[str, np.ndarray], lines: np.ndarray,
                   symbol_of) -> None:
    """Add the row-wise rule violations of one batch to ``log``.

    ``t_nat``: True where the timestamp is missing/unparseable; ``values``: float64 OHLCV; ``lines``: the
    source line of each row; ``symbol_of(i)``: the symbol of row ``i`` (for messages)."""

    def add(rule: str, mask: np.ndarray, column: str, msg) -> None:
        if log.full(rule, column):
            return
        for p in np.flatnonzero(mask)[:MAX_PER_RULE]:
            log.add(Problem(rule, int(lines[p]), symbol_of(p), column, msg(p)))

    add("bad_timestamp", t_nat, "timestamp", lambda p: "timestamp is missing or unparseable")
    o, h, lo, cl, v = (values[c] for c in OHLCV)
    with np.errstate(invalid="ignore"):
        for c in OHLCV:
            x = values[c]
            add("nan", np.isnan(x), c, lambda p, c=c: f"{c} is missing")
            add("not_finite", np.isinf(x), c, lambda p, c=c, x=x: f"{c}={x[p]} is not finite")
        for c in PRICES:
            x = values[c]
            add("non_positive_price", x <= 0, c, lambda p, c=c, x=x: f"{c}={x[p]} is not > 0")
        add("high_below", h < np.maximum(o, cl), "high",
            lambda p: f"high={h[p]} below max(open={o[p]}, close={cl[p]})")
        add("low_above", lo > np.minimum(o, cl), "low",
            lambda p: f"low={lo[p]} above min(open={o[p]}, close={cl[p]})")
        add("negative_volume", v < 0, "volume", lambda p: f"volume={v[p]} is negative")


def fmt_ts(ns: int) -> str:
    return str(pd.Timestamp(int(ns), unit="ns", tz="UTC"))


def order_problems(log: ProblemLog, sym: np.ndarray, t: np.ndarray, valid: np.ndarray, lines: np.ndarray,
                   symbol_of) -> np.ndarray:
    """Time order and duplicates per symbol, in file order; returns the stable order by symbol (a
    permutation that keeps each symbol's rows in file order)."""
    order = np.argsort(sym, kind="stable")
    n = len(sym)
    if n < 2:
        return order
    s_sym, s_t, s_ok = sym[order], t[order], valid[order]
    same = (s_sym[1:] == s_sym[:-1]) & s_ok[1:] & s_ok[:-1]
    back = np.flatnonzero(same & (s_t[1:] < s_t[:-1]))
    for k in back[:MAX_PER_RULE]:
        p, q = order[k + 1], order[k]
        log.add(Problem("unsorted", int(lines[p]), symbol_of(p), "timestamp",
                        f"{fmt_ts(t[p])} comes after {fmt_ts(t[q])} (line {int(lines[q])})"))
    # duplicates: equal (symbol, time) anywhere in the symbol's rows
    if len(back):
        o2 = np.lexsort((t, sym))
        d_sym, d_t, d_ok = sym[o2], t[o2], valid[o2]
        dup = np.flatnonzero((d_sym[1:] == d_sym[:-1]) & (d_t[1:] == d_t[:-1]) & d_ok[1:] & d_ok[:-1])
        rows = np.sort(np.maximum(o2[dup + 1], o2[dup]))  # the later row in file order is the duplicate
    else:
        rows = order[1:][np.flatnonzero(same & (s_t[1:] == s_t[:-1]))]
        rows = np.sort(rows)
    for p in rows[:MAX_PER_RULE]:
        log.add(Problem("duplicate_timestamp", int(lines[p]), symbol_of(p), "timestamp",
                        f"second bar at {fmt_ts(t[p])}"))
    return order


def _frame_arrays(df: pd.DataFrame):
    ts = df["timestamp"]
    t_nat = ts.isna().to_numpy()
    t = ts.to_numpy(dtype="datetime64[ns]").view("int64").copy()
    values = {c: df[c].to_numpy(dtype="float64", na_value=np.nan) for c in OHLCV}
    sym = df["symbol"].to_numpy()
    return t, t_nat, values, sym


def find_problems(df: pd.DataFrame, *, max_per_rule: int = MAX_PER_RULE) -> list[Problem]:
    """Every rule violation (up to ``MAX_PER_RULE`` examples each), in rule order.

    ``df`` holds ``timestamp, symbol, open..volume`` in file order; ``_line`` (if present) maps rows
    back to source lines. Time order is checked per symbol in the order the rows appear.
    """
    missing = [c for c in ["timestamp", "symbol", *OHLCV] if c not in df.columns]
    if missing:
        return [Problem("missing_column", None, None, c, f"required column {c!r} not found") for c in missing]
    t, t_nat, values, sym = _frame_arrays(df)
    lines = _line_of(df, np.arange(len(df)))
    codes = pd.factorize(sym)[0]
    log = ProblemLog()
    symbol_of = lambda p: str(sym[p])  # noqa: E731
    value_problems(log, t_nat, values, lines, symbol_of)
    order_problems(log, codes, t, ~t_nat, lines, symbol_of)
    return log.problems()


def validate_bars(df: pd.DataFrame, *, file: str | None = None, sort: bool = False, drop_duplicates: bool = False,
                  report: LoadReport | None = None) -> pd.DataFrame:
    """Check every rule and return a new frame sorted by symbol, time. Raises ``DataError`` on the
    first violation (its ``problems`` attribute lists the first few of each rule).

    ``sort`` and ``drop_duplicates`` turn the ``unsorted`` and ``duplicate_timestamp`` rules into
    reported repairs; duplicates keep the first row in file order.
    """
    problems = find_problems(df)
    repairs: list[str] = []
    unsorted = [p for p in problems if p.rule == "unsorted"]
    if sort and unsorted:
        repairs.append(f"sorted rows into time order (first out-of-order row: line {unsorted[0].line})")
        problems = [p for p in problems if p.rule != "unsorted"]
    if drop_duplicates and any(p.rule == "duplicate_timestamp" for p in problems):
        problems = [p for p in problems if p.rule != "duplicate_timestamp"]
        repairs.append("dropped duplicate-timestamp rows (kept the first in file order)")
    raise_problems(problems, file)
    out = df.copy()
    if drop_duplicates:
        before = len(out)
        out = out.drop_duplicates(["symbol", "timestamp"], keep="first")
        if before != len(out):
            repairs[-1] = f"dropped {before - len(out)} duplicate-timestamp rows (kept the first in file order)"
    out = out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    if report is not None:
        report.repairs.extend(f"{file}: {r}" if file else r for r in repairs)
    return out


def staleness(vol: np.ndarray, t: np.ndarray, sym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``stale`` (volume <= 0) and ``secs_since_trade`` for arrays sorted by symbol, time."""
    stale = vol <= 0
    n = len(vol)
    idx = np.int32 if n < 2**31 else np.int64
    group_start = np.arange(n, dtype=idx)
    if n > 1:
        group_start[1:][sym[1:] == sym[:-1]] = 0
    np.maximum.accumulate(group_start, out=group_start)
    last = np.arange(n, dtype=idx)
    last[stale] = -1
    np.maximum.accumulate(last, out=last)
    none = last < group_start  # no trade yet in this symbol
    del group_start
    last[none] = 0
    d = np.take(t, last)
    del last
    np.subtract(t, d, out=d)
    secs = d.astype(np.float64)
    del d
    secs /= 1e9
    secs[none] = np.nan
    return stale, secs


def add_staleness(df: pd.DataFrame) -> pd.DataFrame:
    """Set ``stale`` and ``secs_since_trade`` on a frame sorted by symbol, time (in place, returned)."""
    stale, secs = staleness(df["volume"].to_numpy(), df["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64"),
                            df["symbol"].to_numpy())
    df["stale"] = stale
    df["secs_since_trade"] = secs
    return df


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in canonical order with canonical dtypes."""
    out = df[CANONICAL_COLUMNS].copy()
    for c in OHLCV:
        out[c] = out[c].astype("float64")
    out["timestamp"] = out["timestamp"].astype("datetime64[ns, UTC]")
    out["session"] = pd.to_datetime(out["session"]).astype("datetime64[ns]")
    out["symbol"] = out["symbol"].astype(str)
    out["stale"] = out["stale"].astype(bool)
    return out.reset_index(drop=True)


def check_canonical(df: pd.DataFrame, label: str = "<bars>") -> None:
    """Raise ``DataError`` unless ``df`` already is a canonical bar table (used at layer boundaries)."""
    missing = [c for c in CANONICAL_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"not a canonical bar table, missing {missing}", file=label, rule="missing_column")
    if str(df["timestamp"].dtype) != "datetime64[ns, UTC]":
        raise DataError(f"timestamp must be datetime64[ns, UTC], is {df['timestamp'].dtype}", file=label,
                        rule="bad_timestamp")
