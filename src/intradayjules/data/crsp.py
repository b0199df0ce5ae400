"""CRSP stock files in, one PERMNO-keyed panel out, with delisting returns merged (see docs/crsp.md).

Inputs: CRSP stock file exports (daily DSF or monthly MSF) as CSV or Parquet, with the legacy column
names (``PERMNO, DATE/date, PRC, RET, RETX, VOL, SHROUT, SHRCD, EXCHCD, TICKER, COMNAM, CFACPR,
CFACSHR``, any case) or the CIZ names (``DlyCalDt, DlyPrc, DlyRet, DlyRetx, DlyVol, ShrOut,
PrimaryExch, DlyCumFacPr, DlyCumFacShr`` and their ``Mth*`` monthly twins). Delisting data
(``PERMNO, DLSTDT, DLSTCD, DLRET, DLRETX, DLPRC``) come from a separate file or from columns of the
stock file.

Rules (each one has a hand-computed test in tests/data/test_crsp.py):

* Identity is the PERMNO. Tickers are attributes with date ranges (``ticker_spells``): a ticker
  reused by two companies stays two PERMNOs; a ticker change keeps one PERMNO.
* ``PRC < 0`` is CRSP's bid/ask midpoint for a day without a closing trade: ``prc = |PRC|`` and
  ``bidask = True``. ``PRC == 0`` or empty means no price at all: ``prc`` is NaN.
* Missing-return codes in RET/RETX/DLRET/DLRETX (-44, -55, -66, -77, -88, -99, and single-letter codes
  such as ``B``, ``C``, ``A``, ``P``, ``S``, ``T``) become NaN, never numbers; they are counted in the
  report. Any other return below -1 is an error (a simple return cannot be below -100 %).
* Adjusted series: ``adj_prc = prc / CFACPR`` and ``adj_vol = VOL * CFACSHR`` (a factor of 0 or missing
  gives NaN). Without factor columns the factors are 1 (reported). ``mktcap = prc * SHROUT * 1000``
  (USD; SHROUT is in thousands, and the product needs no adjustment).
* ``dollar_vol`` (USD/day, for ADV and liquidity tiers) is ``prc * VOL`` on daily files; on monthly files
  VOL is in hundreds of shares, and ``dollar_vol = prc * VOL * 100 / 21`` approximates a daily figure.
* ``eligible`` = SHRCD in ``CrspConfig.share_codes`` (default 10, 11) and EXCHCD in
  ``CrspConfig.exchange_codes`` (default 1 NYSE, 2 AMEX, 3 Nasdaq), row by row (codes change over time).
  The filters do not delete rows: the universe reads ``eligible`` as of each date.
* Delisting events are DLSTCD >= 200 (1xx means still trading; CRSP gives active issues a 100 record).
  CRSP's DLSTDT is the date of the last price on the exchange, so the delisting return is applied on
  that row (daily) or on the row of that month (monthly): ``tret = (1 + RET)(1 + DLRET) - 1``; with
  one part missing, ``tret`` is the other; both missing gives NaN. Without a stock row for that date or
  month, a row is added there (``delist_row = True``, RET missing, so ``tret = DLRET``).
* A missing DLRET of a performance delisting (DLSTCD 500 or 520-584) is filled with
  ``CrspConfig.delisting_fill_nyse_amex`` (default -30 %, Shumway 1997) when the last EXCHCD before
  delisting is 1, 2 (or anything but 3), or ``delisting_fill_nasdaq`` (-55 %, Shumway & Warther 1999)
  when it is 3, and flagged ``dlret_filled``. Other missing DLRETs stay missing (``tret = RET``) and are
  counted in the report.
* Duplicate PERMNO-dates: ``CrspConfig.duplicates`` = ``error`` (default; the error lists them with
  their lines), or ``keep_first`` / ``keep_last`` in file order (reported).
* CIZ files: CRSP's CIZ format already folds delisting returns into DlyRet/MthRet, so no DLRET is
  compounded for them (a delisting file still gives the events). ``PrimaryExch`` N/A/Q/R becomes EXCHCD
  1/2/3/4. CIZ has no SHRCD: when ``SecurityType, SecuritySubType, ShareType, USIncFlg`` are present,
  EQTY/COM/NS/Y becomes SHRCD 11 (ordinary common share of a US company), anything else 0; without them
  the share-code filter cannot be applied and is skipped (reported).

Bad input raises ``DataError`` naming file, line (CSV: header = line 1; Parquet: 1-based row) and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import CrspConfig
from ..errors import DataError

STOCK_COLUMNS = {
    "permno": ["permno"],
    "date": ["date", "caldt", "dlycaldt", "mthcaldt"],
    "prc": ["prc", "dlyprc", "mthprc"],
    "ret": ["ret", "dlyret", "mthret"],
    "retx": ["retx", "dlyretx", "mthretx"],
    "vol": ["vol", "dlyvol", "mthvol"],
    "shrout": ["shrout"],
    "shrcd": ["shrcd"],
    "exchcd": ["exchcd", "primaryexch"],
    "ticker": ["ticker", "tsymbol"],
    "comnam": ["comnam", "securitynm", "issuernm"],
    "cfacpr": ["cfacpr", "dlycumfacpr", "mthcumfacpr"],
    "cfacshr": ["cfacshr", "dlycumfacshr", "mthcumfacshr"],
}
DELIST_COLUMNS = {
    "permno": ["permno"],
    "dlstdt": ["dlstdt"],
    "dlstcd": ["dlstcd"],
    "dlret": ["dlret"],
    "dlretx": ["dlretx"],
    "dlprc": ["dlprc"],
}
CIZ_MARKERS = ("dlycaldt", "mthcaldt", "dlyret", "mthret", "dlyprc", "mthprc")
CIZ_SHARE = ("securitytype", "securitysubtype", "sharetype", "usincflg")
CIZ_EXCHANGE = {"N": 1, "A": 2, "Q": 3, "R": 4}
MISSING_RETURN_CODES = (-44.0, -55.0, -66.0, -77.0, -88.0, -99.0)
RETURN_COLUMNS = ("ret", "retx", "dlret", "dlretx")
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
PERIODS_PER_YEAR = {"daily": 252, "monthly": 12}
MONTHLY_TRADING_DAYS = 21


def is_performance_delisting(code) -> np.ndarray:
    """DLSTCD 500 or 520-584: delisted by the exchange for poor performance (Shumway 1997)."""
    c = np.asarray(code, dtype=float)
    return (c == 500) | ((c >= 520) & (c <= 584))


@dataclass
class CrspData:
    """A parsed CRSP panel.

    ``panel``: one row per PERMNO and date, sorted by (permno, date), columns ``permno date ticker comnam
    shrcd exchcd prc bidask ret retx vol shrout cfacpr cfacshr adj_prc adj_vol mktcap dollar_vol eligible
    dlstcd dlret dlret_filled delist_row tret file line``.
    ``delistings``: one row per delisting event (DLSTCD >= 200): ``permno dlstdt dlstcd dlret dlret_raw
    dlretx dlprc dlret_filled performance exchcd``. ``freq`` is ``daily`` or ``monthly``.
    """

    panel: pd.DataFrame
    delistings: pd.DataFrame
    freq: str = "daily"
    report: list[str] = field(default_factory=list)
    dlret_in_ret: bool = False  # CIZ input: RET already holds the delisting return (do not apply DLRET)

    @property
    def periods_per_year(self) -> int:
        return PERIODS_PER_YEAR[self.freq]

    def ticker_spells(self) -> pd.DataFrame:
        return ticker_spells(self.panel)

    def permno_for(self, ticker: str, date) -> int | None:
        return permno_for(self.ticker_spells(), ticker, date)


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
        import pyarrow as pa
        from pyarrow import csv as pacsv

        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
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
            blank = sub.isin(["", ".", "NA", "NaN", "nan", "None"]).to_numpy(dtype=bool)
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


def _parse_stock(path: Path, counts: dict, report: list[str]) -> tuple[pd.DataFrame, pd.DataFrame | None, bool]:
    raw, offset = _read_table(path)
    cols = _map(raw.columns, STOCK_COLUMNS)
    for need in ("permno", "date", "ret"):
        if need not in cols:
            raise DataError(f"missing column {need.upper()} (have: {', '.join(map(str, raw.columns))})",
                            file=str(path), rule="missing_column", column=need.upper())
    lower = {str(c).strip().lower(): c for c in raw.columns}
    ciz = any(m in lower for m in CIZ_MARKERS)
    kw = dict(path=path, offset=offset)
    out = pd.DataFrame({
        "permno": _permno(raw[cols["permno"]], column=cols["permno"], **kw),
        "date": _dates(raw[cols["date"]], column=cols["date"], required=True, **kw),
    })
    for c in ("prc", "ret", "retx", "vol", "shrout", "cfacpr", "cfacshr", "shrcd"):
        if c in cols:
            out[c] = _numeric(raw[cols[c]], column=cols[c], returns=c in RETURN_COLUMNS, counts=counts, **kw)
        else:
            out[c] = np.nan
    if "exchcd" in cols:
        src = raw[cols["exchcd"]]
        if ciz and cols["exchcd"].strip().lower() == "primaryexch":
            out["exchcd"] = src.astype("string").str.strip().str.upper().map(CIZ_EXCHANGE).astype(float).to_numpy()
        else:
            out["exchcd"] = _numeric(src, column=cols["exchcd"], returns=False, counts=counts, **kw)
    else:
        out["exchcd"] = np.nan
    if ciz and "shrcd" not in cols:
        if all(k in lower for k in CIZ_SHARE):
            s = {k: raw[lower[k]].astype("string").str.strip().str.upper() for k in CIZ_SHARE}
            common = ((s["securitytype"] == "EQTY") & (s["securitysubtype"] == "COM") & (s["sharetype"] == "NS")
                      & (s["usincflg"] == "Y")).fillna(False)
            out["shrcd"] = np.where(common.to_numpy(dtype=bool), 11.0, 0.0)
        else:
            report.append(f"{path.name}: CIZ file without share-type columns: share-code filter skipped")
            out["shrcd"] = -1.0  # sentinel: filter not applicable
    for c in ("ticker", "comnam"):
        if c in cols:
            t = raw[cols[c]].astype("string").str.strip().replace("", pd.NA)
            out[c] = (t.str.upper() if c == "ticker" else t).to_numpy(dtype=object)
        else:
            out[c] = None
    for c in ("cfacpr", "cfacshr"):
        if c not in cols:
            out[c] = 1.0
            report.append(f"{path.name}: no {c.upper()} column: adjustment factor taken as 1")
    out["file"] = str(path)
    out["line"] = np.arange(len(out)) + offset
    # delisting columns inside the stock file (WRDS merged exports)
    dcols = _map(raw.columns, DELIST_COLUMNS)
    embedded = None
    if "dlstcd" in dcols:
        embedded = _parse_delist_frame(raw, dcols, path, offset, counts)
    return out, embedded, ciz


def _parse_delist_frame(raw: pd.DataFrame, cols: dict, path: Path, offset: int, counts: dict) -> pd.DataFrame:
    for need in ("permno", "dlstdt", "dlstcd"):
        if need not in cols:
            raise DataError(f"missing column {need.upper()}", file=str(path), rule="missing_column",
                            column=need.upper())
    kw = dict(path=path, offset=offset)
    code = _numeric(raw[cols["dlstcd"]], column=cols["dlstcd"], returns=False, counts=counts, **kw)
    keep = ~np.isnan(code)
    d = pd.DataFrame({
        "permno": _permno(raw[cols["permno"]], column=cols["permno"], **kw),
        "dlstdt": _dates(raw[cols["dlstdt"]], column=cols["dlstdt"], required=False, **kw),
        "dlstcd": code,
    })
    for c in ("dlret", "dlretx", "dlprc"):
        d[c] = (_numeric(raw[cols[c]], column=cols[c], returns=c in RETURN_COLUMNS, counts=counts, **kw)
                if c in cols else np.nan)
    d["file"] = str(path)
    d["line"] = np.arange(len(d)) + offset
    d = d[keep]
    nodate = d["dlstdt"].isna().to_numpy()
    if nodate.any():
        r = d.iloc[int(np.flatnonzero(nodate)[0])]
        raise DataError("delisting code without DLSTDT", file=str(path), line=int(r["line"]),
                        column=cols["dlstdt"], rule="bad_date")
    d = d.drop_duplicates(["permno", "dlstdt", "dlstcd", "dlret", "dlretx", "dlprc"])
    dup = d.duplicated("permno", keep=False).to_numpy()
    if dup.any():
        r = d[dup].iloc[1]
        raise DataError(f"PERMNO {int(r['permno'])} has conflicting delisting records", file=str(path),
                        line=int(r["line"]), rule="duplicate_delisting")
    return d.reset_index(drop=True)


def stock_and_delist_files(path: Path) -> tuple[list[Path], list[Path]]:
    """A directory's stock files and delisting files (name contains 'delist'); 'member' files skipped."""
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise DataError("no such file or directory", file=str(path), rule="missing_file")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    delist = [p for p in files if "delist" in p.name.lower()]
    stock = [p for p in files if p not in delist and "member" not in p.name.lower()]
    if not stock:
        raise DataError("no CRSP stock file (.csv/.parquet) in directory", file=str(path), rule="missing_file")
    return stock, delist


def read_crsp(path: str | Path, cfg: CrspConfig | None = None,
              delistings: str | Path | None = None) -> CrspData:
    """Read CRSP stock file(s) and delisting data into a :class:`CrspData` (rules: module docstring).

    ``path`` is a file or a directory (stock files plus optional ``*delist*`` files); ``delistings`` an
    extra delisting file.
    """
    cfg = cfg or CrspConfig()
    path = Path(path)
    stock_files, delist_files = stock_and_delist_files(path)
    if delistings is not None:
        delist_files.append(Path(delistings))
    counts: dict[str, int] = {}
    report: list[str] = []
    frames, dframes, ciz_any = [], [], False
    for f in stock_files:
        frame, embedded, ciz = _parse_stock(f, counts, report)
        frames.append(frame)
        ciz_any |= ciz
        if embedded is not None:
            dframes.append(embedded)
    for f in delist_files:
        raw, offset = _read_table(f)
        dframes.append(_parse_delist_frame(raw, _map(raw.columns, DELIST_COLUMNS), f, offset, counts))
    panel = pd.concat(frames, ignore_index=True)
    panel = panel.sort_values(["permno", "date"], kind="stable").reset_index(drop=True)
    panel = _resolve_duplicates(panel, cfg, report)
    freq = _frequency(panel, cfg, stock_files)
    panel = _derive(panel, cfg, freq)
    dl = (pd.concat(dframes, ignore_index=True) if dframes
          else pd.DataFrame(columns=["permno", "dlstdt", "dlstcd", "dlret", "dlretx", "dlprc", "file", "line"]))
    if len(dframes) > 1:
        dl = dl.drop_duplicates(["permno", "dlstdt", "dlstcd", "dlret", "dlretx", "dlprc"])
        dup = dl.duplicated("permno", keep=False).to_numpy()
        if dup.any():
            r = dl[dup].iloc[1]
            raise DataError(f"PERMNO {int(r['permno'])} has conflicting delisting records across files",
                            file=str(r["file"]), line=int(r["line"]), rule="duplicate_delisting")
    panel, events = _merge_delistings(panel, dl, cfg, freq, compound=not ciz_any, report=report)
    for k, n in sorted(counts.items()):
        report.append(f"missing-return code {k}: {n} cell(s) read as missing")
    return CrspData(panel=panel, delistings=events, freq=freq, report=report, dlret_in_ret=ciz_any)


def _resolve_duplicates(panel: pd.DataFrame, cfg: CrspConfig, report: list[str]) -> pd.DataFrame:
    dup = panel.duplicated(["permno", "date"], keep=False).to_numpy()
    if not dup.any():
        return panel
    d = panel[dup]
    if cfg.duplicates == "error":
        shown = "; ".join(f"PERMNO {int(r.permno)} {r.date.date()} at {Path(r.file).name}:{int(r.line)}"
                          for r in d.head(6).itertuples())
        r = d.iloc[1]
        raise DataError(f"{int(dup.sum())} rows share a PERMNO-date ({shown}); set crsp.duplicates to "
                        "keep_first or keep_last to resolve", file=str(r["file"]), line=int(r["line"]),
                        rule="duplicate_permno_date", column="PERMNO,DATE")
    keep = "first" if cfg.duplicates == "keep_first" else "last"
    out = panel.drop_duplicates(["permno", "date"], keep=keep).reset_index(drop=True)
    report.append(f"duplicates: {len(panel) - len(out)} duplicate PERMNO-date row(s) dropped ({cfg.duplicates})")
    return out


def _frequency(panel: pd.DataFrame, cfg: CrspConfig, files: list[Path]) -> str:
    if cfg.freq != "auto":
        return cfg.freq
    gaps = panel.groupby("permno", sort=False)["date"].diff().dropna()
    if len(gaps) and gaps.median() > pd.Timedelta(days=20):
        return "monthly"
    return "daily"


def _derive(panel: pd.DataFrame, cfg: CrspConfig, freq: str) -> pd.DataFrame:
    raw_prc = panel["prc"].to_numpy()
    panel["bidask"] = raw_prc < 0
    prc = np.abs(raw_prc)
    prc[prc == 0] = np.nan
    panel["prc"] = prc
    fpr = panel["cfacpr"].to_numpy(dtype=float)
    fsh = panel["cfacshr"].to_numpy(dtype=float)
    fpr = np.where(fpr > 0, fpr, np.nan)
    fsh = np.where(fsh > 0, fsh, np.nan)
    panel["adj_prc"] = prc / fpr
    panel["adj_vol"] = panel["vol"].to_numpy() * fsh
    panel["mktcap"] = prc * panel["shrout"].to_numpy() * 1000.0
    vol_shares = panel["vol"].to_numpy() * (100.0 if freq == "monthly" else 1.0)
    per_day = MONTHLY_TRADING_DAYS if freq == "monthly" else 1.0
    panel["dollar_vol"] = prc * vol_shares / per_day
    shr = panel["shrcd"].to_numpy()
    share_ok = (shr == -1) | np.isin(shr, cfg.share_codes)
    panel["eligible"] = share_ok & np.isin(panel["exchcd"].to_numpy(), cfg.exchange_codes)
    return panel


def _merge_delistings(panel: pd.DataFrame, dl: pd.DataFrame, cfg: CrspConfig, freq: str, *,
                      compound: bool, report: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attach delisting events (DLSTCD >= 200) to their row; add a row where the stock file has none."""
    panel["dlstcd"] = np.nan
    panel["dlret"] = np.nan
    panel["dlret_filled"] = False
    panel["delist_row"] = False
    ev = dl[dl["dlstcd"].astype(float) >= 200].copy() if len(dl) else dl.copy()
    known = set(panel["permno"].unique().tolist())
    outside = ev[~ev["permno"].isin(known)]
    if len(outside):
        report.append(f"delistings: {len(outside)} event(s) for PERMNOs without stock rows ignored")
    ev = ev[ev["permno"].isin(known)].sort_values("permno").reset_index(drop=True)
    cols = ["permno", "dlstdt", "dlstcd", "dlret", "dlret_raw", "dlretx", "dlprc", "dlret_filled",
            "performance", "exchcd", "row_added"]
    if ev.empty:
        panel["tret"] = panel["ret"]
        return panel, pd.DataFrame(columns=cols)
    ev["dlret_raw"] = ev["dlret"].astype(float)
    ev["dlstdt"] = pd.to_datetime(ev["dlstdt"])
    key = ev["dlstdt"].dt.to_period("M") if freq == "monthly" else ev["dlstdt"]
    pkey = panel["date"].dt.to_period("M") if freq == "monthly" else panel["date"]
    # row of each event: same permno, same date (daily) or month (monthly)
    idx_by = pd.Series(panel.index.to_numpy(), index=pd.MultiIndex.from_arrays([panel["permno"], pkey]))
    idx_by = idx_by[~idx_by.index.duplicated(keep="last")]
    hit = idx_by.reindex(pd.MultiIndex.from_arrays([ev["permno"], key]))
    ev["row"] = hit.to_numpy()
    # exchange at delisting: last EXCHCD on or before DLSTDT
    last = panel[["permno", "date", "exchcd"]].dropna(subset=["exchcd"]).sort_values("date")
    probe = ev[["permno", "dlstdt"]].rename(columns={"dlstdt": "date"}).reset_index().sort_values("date")
    ex = pd.merge_asof(probe, last, on="date", by="permno", direction="backward")
    ex = ex.set_index("index")["exchcd"].reindex(ev.index)
    if ex.isna().any():  # delisting dated before the first row: use the first row's exchange
        first = panel.groupby("permno")["exchcd"].first()
        ex = ex.fillna(ev["permno"].map(first))
    ev["exchcd"] = ex.to_numpy()
    ev["performance"] = is_performance_delisting(ev["dlstcd"])
    fill = np.where(ev["exchcd"].to_numpy() == 3, cfg.delisting_fill_nasdaq, cfg.delisting_fill_nyse_amex)
    need = ev["performance"].to_numpy() & np.isnan(ev["dlret_raw"].to_numpy())
    ev["dlret"] = np.where(need, fill, ev["dlret_raw"].to_numpy())
    ev["dlret_filled"] = need
    if need.any():
        report.append(f"delistings: {int(need.sum())} missing performance DLRET(s) filled "
                      f"({cfg.delisting_fill_nyse_amex:+.0%} NYSE/AMEX, {cfg.delisting_fill_nasdaq:+.0%} Nasdaq)")
    other = (~ev["performance"].to_numpy()) & np.isnan(ev["dlret_raw"].to_numpy())
    if other.any():
        report.append(f"delistings: {int(other.sum())} non-performance DLRET(s) missing: return on the "
                      "delisting date is RET alone")
    # rows to add where the stock file has none for the event's date/month
    missing = ev["row"].isna().to_numpy()
    ev["row_added"] = missing
    if missing.any():
        add = []
        for e in ev[missing].itertuples():
            prior = panel[(panel["permno"] == e.permno) & (panel["date"] <= e.dlstdt)]
            base = prior.iloc[-1] if len(prior) else panel[panel["permno"] == e.permno].iloc[0]
            row = base.copy()
            date = e.dlstdt if freq == "daily" else (e.dlstdt + pd.offsets.MonthEnd(0))
            row["date"] = date
            for c in ("ret", "retx", "vol", "adj_vol", "dollar_vol"):
                row[c] = np.nan
            dlprc = abs(e.dlprc) if np.isfinite(e.dlprc) and e.dlprc != 0 else np.nan
            row["prc"] = dlprc
            row["adj_prc"] = dlprc / row["cfacpr"] if np.isfinite(dlprc) else np.nan
            row["mktcap"] = dlprc * row["shrout"] * 1000.0
            row["bidask"] = False
            row["delist_row"] = True
            add.append(row)
        panel = pd.concat([panel, pd.DataFrame(add)], ignore_index=True)
        panel = panel.sort_values(["permno", "date"], kind="stable").reset_index(drop=True)
        report.append(f"delistings: {int(missing.sum())} event(s) without a stock row on DLSTDT: row added")
        idx_by = pd.Series(panel.index.to_numpy(),
                           index=pd.MultiIndex.from_arrays([panel["permno"], panel["date"].dt.to_period("M")
                                                            if freq == "monthly" else panel["date"]]))
        idx_by = idx_by[~idx_by.index.duplicated(keep="last")]
        ev["row"] = idx_by.reindex(pd.MultiIndex.from_arrays([ev["permno"], key])).to_numpy()
    rows = ev["row"].to_numpy(dtype=np.int64)
    panel.loc[rows, "dlstcd"] = ev["dlstcd"].to_numpy()
    panel.loc[rows, "dlret"] = ev["dlret"].to_numpy()
    panel.loc[rows, "dlret_filled"] = ev["dlret_filled"].to_numpy()
    panel["dlret_filled"] = panel["dlret_filled"].astype(bool)
    panel["delist_row"] = panel["delist_row"].astype(bool)
    panel["bidask"] = panel["bidask"].astype(bool)
    panel["eligible"] = panel["eligible"].astype(bool)
    if compound:
        panel["tret"] = compound_returns(panel["ret"].to_numpy(), panel["dlret"].to_numpy())
    else:
        panel["tret"] = panel["ret"]
        report.append("CIZ input: delisting returns are already in DlyRet/MthRet; DLRET not compounded")
    events = ev[cols].reset_index(drop=True)
    return panel, events


def compound_returns(ret, dlret) -> np.ndarray:
    """``(1 + RET)(1 + DLRET) - 1``; one part missing -> the other; both missing -> NaN."""
    r = np.asarray(ret, dtype=float)
    d = np.asarray(dlret, dtype=float)
    both = (1.0 + np.nan_to_num(r)) * (1.0 + np.nan_to_num(d)) - 1.0
    return np.where(np.isnan(r) & np.isnan(d), np.nan, both)


# ----------------------------------------------------------------------------------------- identity
def ticker_spells(panel: pd.DataFrame) -> pd.DataFrame:
    """Runs of one ticker on one PERMNO: ``ticker, permno, start, end`` (end = the day before the
    PERMNO's next ticker starts, or its last row). A reused ticker gives one spell per PERMNO."""
    p = panel[["permno", "date", "ticker"]].dropna(subset=["ticker"]).sort_values(["permno", "date"])
    if p.empty:
        return pd.DataFrame(columns=["ticker", "permno", "start", "end"])
    change = (p["ticker"] != p["ticker"].shift()) | (p["permno"] != p["permno"].shift())
    spell_id = change.cumsum()
    g = p.groupby(spell_id, sort=False)
    out = pd.DataFrame({"ticker": g["ticker"].first(), "permno": g["permno"].first(),
                        "start": g["date"].min(), "end": g["date"].max()}).reset_index(drop=True)
    nxt = out.groupby("permno")["start"].shift(-1)
    out["end"] = np.where(nxt.notna(), nxt - pd.Timedelta(days=1), out["end"])
    out["end"] = pd.to_datetime(out["end"])
    return out.sort_values(["ticker", "start"]).reset_index(drop=True)


def permno_for(spells: pd.DataFrame, ticker: str, date) -> int | None:
    """The PERMNO that carried ``ticker`` on ``date`` (None if none); two at once is a DataError."""
    d = pd.Timestamp(date).normalize()
    s = spells[(spells["ticker"] == ticker.upper()) & (spells["start"] <= d) & (spells["end"] >= d)]
    ids = sorted(set(s["permno"].astype(int)))
    if len(ids) > 1:
        raise DataError(f"ticker {ticker} maps to PERMNOs {ids} on {d.date()}", rule="ambiguous_ticker")
    return ids[0] if ids else None
