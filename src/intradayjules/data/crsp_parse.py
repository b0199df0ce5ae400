"""CRSP cells: reading a table, matching column names, and parsing PERMNOs, dates, numbers and CRSP's
missing-value codes, with errors that name file, line and column (CSV: header = line 1; Parquet: 1-based
row). Shared by ``crsp.py``, ``crsp_delist.py`` and ``universe.py``.

Missing-value codes (CRSP Data Descriptions; WRDS prints them as letters in its exports):

* returns (RET, RETX): -44, -55, -66, -77, -88, -99 and single letters (``B``, ``C``, ...; ``C`` marks a
  first period without a previous price) mean "no return": NaN, counted in the report;
* delisting returns (DLRET, DLRETX): ``A`` / -88 the security is still **active** (no delisting);
  ``S`` / -55 no sources to value it after delisting; ``T`` / -66 more than 10 periods between its last
  price and one on a new exchange; ``P`` / -99 it trades on a new exchange but CRSP has no price. All but
  ``A`` mean: delisted, delisting return missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pacsv

from ..errors import DataError

MISSING_RETURN_CODES = (-44.0, -55.0, -66.0, -77.0, -88.0, -99.0)
ACTIVE_CODES = ("A", "-88")                 # DLRET: still active
DELISTED_MISSING_CODES = ("S", "T", "P", "-55", "-66", "-99")  # DLRET: delisted, value missing
BLANKS = ("", ".", "NA", "NaN", "nan", "None", "NULL", "null")


# ------------------------------------------------------------------------------------------- reading
def _read_table(path: Path) -> tuple[pd.DataFrame, int]:
    """Raw table with every CSV cell as a string, and the offset from row position to file line."""
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path), 1
        # pyarrow parses all-numeric columns natively (fast); columns holding letter codes stay text
        # and go through the slow, checked path in _numeric. Text cells are never turned into nulls
        # (a ticker "NA" stays "NA").
        try:
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
        except pa.ArrowInvalid:  # a later block did not fit the types of the first (e.g. a letter code): as text
            names = pacsv.open_csv(path).schema.names
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                strings_can_be_null=False, column_types={n: pa.string() for n in names}))
        return table.to_pandas(types_mapper={pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}.get), 2
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"cannot read: {e}", file=str(path), rule="unreadable") from None


def _map(columns, spec: dict[str, list[str]]) -> dict[str, str]:
    lower = {str(c).strip().lower(): c for c in columns}
    out = {}
    for canon, names in spec.items():
        for n in names:
            if n in lower:
                out[canon] = lower[n]
                break
    return out


def _bad(path, offset, pos, column, msg, rule) -> DataError:
    return DataError(msg, file=str(path), line=int(pos) + offset, column=column, rule=rule)


def _numeric(raw: pd.Series, *, path, offset, column: str, returns: bool, counts: dict) -> np.ndarray:
    """Parse a column to float64; missing codes of return columns become NaN (counted in ``counts``)."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        vals = raw.to_numpy(dtype=float, na_value=np.nan)
        text = None
    else:
        text = raw.astype("string").str.strip()
        vals = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        nan_pos = np.flatnonzero(np.isnan(vals))  # only these cells need a closer look
        if nan_pos.size:
            sub = text.iloc[nan_pos].fillna("")
            letter = sub.str.fullmatch(r"[A-Za-z]").fillna(False).to_numpy(dtype=bool)
            blank = sub.isin(list(BLANKS)).to_numpy(dtype=bool)
            if letter.any():
                if not returns:
                    pos = int(nan_pos[np.flatnonzero(letter)[0]])
                    raise _bad(path, offset, pos, column, f"letter code {text.iloc[pos]!r} in a numeric "
                               "column", "not_a_number")
                for code, n in sub[letter].value_counts().items():
                    counts[f"{column}={code}"] = counts.get(f"{column}={code}", 0) + int(n)
            bad = ~letter & ~blank
            if bad.any():
                pos = int(nan_pos[np.flatnonzero(bad)[0]])
                raise _bad(path, offset, pos, column, f"not a number: {text.iloc[pos]!r}", "not_a_number")
    if returns:
        code = np.isin(vals, MISSING_RETURN_CODES)
        if code.any():
            for v, n in zip(*np.unique(vals[code], return_counts=True)):
                counts[f"{column}={v:g}"] = counts.get(f"{column}={v:g}", 0) + int(n)
            vals = np.where(code, np.nan, vals)
        low = vals < -1
        if low.any():
            pos = int(np.flatnonzero(low)[0])
            raise _bad(path, offset, pos, column, f"return {vals[pos]:g} is below -100 % and not a CRSP "
                       f"missing code {MISSING_RETURN_CODES}", "bad_return")
    return vals


def _dates(raw: pd.Series, *, path, offset, column: str, required: bool) -> np.ndarray:
    """YYYYMMDD integers/strings, ISO dates or datetimes -> datetime64[ns] (normalised, naive)."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        out = pd.to_datetime(raw)
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        out = out.dt.normalize()
    elif pd.api.types.is_integer_dtype(raw.dtype) or (pd.api.types.is_float_dtype(raw.dtype)):
        v = raw.to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(v)
        parts = pd.DataFrame({"year": np.where(ok, v // 10000, 2000), "month": np.where(ok, v // 100 % 100, 1),
                              "day": np.where(ok, v % 100, 1)}).astype(int)
        out = pd.to_datetime(parts, errors="coerce").where(ok)
        bad = out.isna().to_numpy() & ok
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise _bad(path, offset, pos, column, f"not a date: {raw.iloc[pos]!r} (want YYYYMMDD or "
                       "YYYY-MM-DD)", "bad_date")
    else:
        text = raw.astype("string").str.strip().fillna("")
        text = text.str.replace(r"\.0$", "", regex=True)
        compact = text.str.fullmatch(r"\d{8}").fillna(False)
        out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        if compact.any():
            out[compact] = pd.to_datetime(text[compact], format="%Y%m%d", errors="coerce")
        rest = ~compact & (text != "")
        if rest.any():
            out[rest] = pd.to_datetime(text[rest], format="ISO8601", errors="coerce").dt.normalize()
        bad = out.isna() & (text != "")
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise _bad(path, offset, pos, column, f"not a date: {text.iloc[pos]!r} (want YYYYMMDD or "
                       "YYYY-MM-DD)", "bad_date")
    vals = out.to_numpy(dtype="datetime64[ns]")
    if required:
        miss = np.isnat(vals)
        if miss.any():
            raise _bad(path, offset, int(np.flatnonzero(miss)[0]), column, "date is missing", "bad_date")
    return vals


def _permno(raw: pd.Series, *, path, offset, column: str) -> np.ndarray:
    v = _numeric(raw, path=path, offset=offset, column=column, returns=False, counts={})
    bad = np.isnan(v) | (v <= 0) | (v != np.floor(v))
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise _bad(path, offset, pos, column, f"PERMNO must be a positive integer, got {raw.iloc[pos]!r}",
                   "bad_permno")
    return v.astype(np.int64)


def codes_of(raw: pd.Series) -> np.ndarray:
    """Each cell's missing-value code as text (``A``, ``S``, ``-55``...; '' for a number or a blank)."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        v = raw.to_numpy(dtype=float, na_value=np.nan)
        out = np.full(len(v), "", dtype=object)
        hit = np.isin(v, MISSING_RETURN_CODES)
        out[hit] = [f"{x:g}" for x in v[hit]]
        return out
    text = raw.astype("string").str.strip().str.upper().fillna("")
    num = pd.to_numeric(text, errors="coerce")
    letter = text.str.fullmatch(r"[A-Z]").fillna(False)
    code_num = num.isin(MISSING_RETURN_CODES).fillna(False)
    out = np.full(len(text), "", dtype=object)
    out[letter.to_numpy(dtype=bool)] = text[letter].to_numpy(dtype=object)
    out[code_num.to_numpy(dtype=bool)] = [f"{x:g}" for x in num[code_num]]
    return out
