"""The canonical bar table and the validation rules every loader applies.

Canonical table (one row per symbol and bar, sorted by symbol then time)::

    timestamp         datetime64[ns, UTC]  bar start
    symbol            str
    open high low close   float64          > 0, low <= min(open, close), high >= max(open, close)
    volume            float64              >= 0 shares; 0 means no trade in the bar
    stale             bool                 volume == 0 (the feed repeats the last price)
    secs_since_trade  float64              seconds from the start of the last bar with a trade
                                           (0 for a traded bar; NaN before the symbol's first trade)
    session           datetime64[ns]       exchange session date the bar belongs to

Validation never rewrites its input. Repairs (sorting, dropping duplicates) happen only when asked for,
and each one is recorded in the returned report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError

OHLCV = ["open", "high", "low", "close", "volume"]
CANONICAL_COLUMNS = ["timestamp", "symbol", *OHLCV, "stale", "secs_since_trade", "session"]
LINE_COL = "_line"  # source line number, carried from the reader to the validator, then dropped

RULES = {
    "missing_column": "a required column is absent",
    "bad_timestamp": "timestamp cannot be parsed (or is ambiguous in the exchange time zone)",
    "nan": "a price or volume is missing",
    "non_positive_price": "open, high, low and close must be > 0",
    "high_below": "high is below max(open, close)",
    "low_above": "low is above min(open, close)",
    "negative_volume": "volume must be >= 0",
    "duplicate_timestamp": "the same symbol has two bars with one timestamp",
    "unsorted": "bars of a symbol are not in increasing time order",
}


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


@dataclass
class LoadReport:
    """What a loader did beyond reading: repairs, dropped and filled bars. Nothing happens silently."""

    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    repairs: list[str] = field(default_factory=list)
    dropped_outside_session: int = 0
    dropped_non_session_days: int = 0
    filled_stale: int = 0
    resampled_from: str | None = None

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
        return out


def _line_of(df: pd.DataFrame, pos: np.ndarray) -> np.ndarray:
    if LINE_COL in df.columns:
        return df[LINE_COL].to_numpy()[pos]
    return pos + 1


def find_problems(df: pd.DataFrame, *, max_per_rule: int = 3) -> list[Problem]:
    """Every rule violation (up to ``max_per_rule`` examples each), in rule order.

    ``df`` holds ``timestamp, symbol, open..volume`` in file order; ``_line`` (if present) maps rows
    back to source lines. Time order is checked per symbol in the order the rows appear.
    """
    problems: list[Problem] = []
    missing = [c for c in ["timestamp", "symbol", *OHLCV] if c not in df.columns]
    if missing:
        return [Problem("missing_column", None, None, c, f"required column {c!r} not found") for c in missing]

    sym = df["symbol"].to_numpy()

    def add(rule: str, mask: np.ndarray, column: str | None, msg) -> None:
        pos = np.flatnonzero(mask)
        for p in pos[:max_per_rule]:
            line = int(_line_of(df, np.array([p]))[0])
            problems.append(Problem(rule, line, str(sym[p]), column, msg(p)))

    ts = df["timestamp"]
    add("bad_timestamp", ts.isna().to_numpy(), "timestamp", lambda p: "timestamp is missing or unparseable")

    values = {c: df[c].to_numpy(dtype="float64", na_value=np.nan) for c in OHLCV}
    for c in OHLCV:
        add("nan", np.isnan(values[c]), c, lambda p, c=c: f"{c} is missing")
    o, h, lo, cl, v = (values[c] for c in OHLCV)
    with np.errstate(invalid="ignore"):
        for c in ("open", "high", "low", "close"):
            add("non_positive_price", values[c] <= 0, c, lambda p, c=c: f"{c}={values[c][p]} is not > 0")
        add("high_below", h < np.maximum(o, cl), "high",
            lambda p: f"high={h[p]} below max(open={o[p]}, close={cl[p]})")
        add("low_above", lo > np.minimum(o, cl), "low",
            lambda p: f"low={lo[p]} above min(open={o[p]}, close={cl[p]})")
        add("negative_volume", v < 0, "volume", lambda p: f"volume={v[p]} is negative")

    # Order and duplicates, per symbol, in file order (NaT rows were reported above). A stable sort
    # by symbol keeps each symbol's rows in file order, so long files interleaved by time work too.
    t = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    valid = ~ts.isna().to_numpy()
    order = np.argsort(sym, kind="stable")
    s_sym, s_t, s_valid = sym[order], t[order], valid[order]
    back = np.zeros(len(df), dtype=bool)
    if len(df) > 1:
        bad = (s_sym[1:] == s_sym[:-1]) & s_valid[1:] & s_valid[:-1] & (s_t[1:] < s_t[:-1])
        back[order[1:][bad]] = True
    prev_pos = np.empty(len(df), dtype=np.int64)
    prev_pos[order[1:]] = order[:-1]
    add("unsorted", back, "timestamp",
        lambda p: f"{ts.iloc[p]} comes after {ts.iloc[prev_pos[p]]} (line {int(_line_of(df, np.array([prev_pos[p]]))[0])})")
    key = pd.DataFrame({"s": sym, "t": t})
    dup = key.duplicated(keep="first").to_numpy() & valid
    add("duplicate_timestamp", dup, "timestamp", lambda p: f"second bar at {ts.iloc[p]}")
    return problems


def validate_bars(
    df: pd.DataFrame,
    *,
    file: str | None = None,
    sort: bool = False,
    drop_duplicates: bool = False,
    report: LoadReport | None = None,
) -> pd.DataFrame:
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
    if problems:
        err = problems[0].as_error(file)
        err.problems = [str(p.as_error(file)) for p in problems]  # type: ignore[attr-defined]
        raise err
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


def add_staleness(df: pd.DataFrame) -> pd.DataFrame:
    """Set ``stale`` and ``secs_since_trade`` on a frame sorted by symbol, time (in place, returned)."""
    vol = df["volume"].to_numpy()
    stale = vol <= 0
    t = df["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    sym = df["symbol"].to_numpy()
    n = len(df)
    # index of the last traded bar at or before each row, within the same symbol
    starts = np.ones(n, dtype=bool)
    if n > 1:
        starts[1:] = sym[1:] != sym[:-1]
    idx = np.where(~stale, np.arange(n), -1)
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    last = np.maximum.accumulate(idx)
    last = np.where(last >= group_start, last, -1)
    secs = np.full(n, np.nan)
    ok = last >= 0
    secs[ok] = (t[ok] - t[last[ok]]) / 1e9
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
