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
  report. In DLRET, ``A`` / -88 means "still active" and the others "delisted, value missing"
  (``crsp_parse.py``). Any other return below -1 is an error (a simple return cannot be below -100 %).
* Adjusted series: ``adj_prc = prc / CFACPR`` and ``adj_vol = VOL * CFACSHR`` (a factor of 0 or missing
  gives NaN). Without factor columns the factors are 1 (reported). ``mktcap = prc * SHROUT * 1000``
  (USD; SHROUT is in thousands, and the product needs no adjustment).
* ``dollar_vol`` (USD/day, for ADV and liquidity tiers) is ``prc * VOL`` on daily files; on monthly files
  VOL is in hundreds of shares, and ``dollar_vol = prc * VOL * 100 / 21`` approximates a daily figure.
* ``eligible`` = SHRCD in ``CrspConfig.share_codes`` (default 10, 11) and EXCHCD in
  ``CrspConfig.exchange_codes`` (default 1 NYSE, 2 AMEX, 3 Nasdaq), row by row (codes change over time).
  The filters do not delete rows: the universe reads ``eligible`` as of each date. A file without a
  SHRCD (or EXCHCD) column cannot be filtered on it: that filter is skipped for its rows (the code is
  -1) and the report says so; :func:`eligibility_reasons` explains an empty universe.
* Delistings (events, dates, returns, the Shumway fill, CIZ flags): ``crsp_delist.py``.
* Duplicate PERMNO-dates: rows that agree on every field the model reads (``MODEL_FIELDS``) are one row
  repeated (WRDS repeats a monthly row for each distribution event) and collapse into one (reported).
  Rows that disagree: ``CrspConfig.duplicates`` = ``error`` (default: the error names both lines and the
  fields that differ), or ``keep_first`` / ``keep_last`` in file order (reported).
* CIZ files (``DlyCalDt``/``MthCalDt``...): CRSP's CIZ format already folds delisting returns into
  DlyRet/MthRet, so no DLRET is compounded for them (a delisting file still gives the events).
  ``PrimaryExch`` N/A/Q/R becomes EXCHCD 1/2/3/4 (anything else, e.g. ``X`` on a delisting row, none).
  CIZ has no SHRCD: when ``SecurityType, SecuritySubType, ShareType, USIncFlg`` are present,
  EQTY/COM/NS/Y becomes SHRCD 11 (ordinary common share of a US company), anything else 0; without them
  the share-code filter is skipped (reported).

Bad input raises ``DataError`` naming file, line (CSV: header = line 1; Parquet: 1-based row) and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import CrspConfig
from ..errors import DataError
from .crsp_delist import (CIZ_FLAGS, DELIST_COLUMNS, ciz_events, compound_returns, embedded_events, empty_events,
                          is_performance_delisting, merge_delistings, parse_delist_file)
from .crsp_parse import MISSING_RETURN_CODES, _dates, _map, _numeric, _permno, _read_table

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
CIZ_MARKERS = ("dlycaldt", "mthcaldt", "dlyret", "mthret", "dlyprc", "mthprc")
CIZ_SHARE = ("securitytype", "securitysubtype", "sharetype", "usincflg")
CIZ_EXCHANGE = {"N": 1, "A": 2, "Q": 3, "R": 4}
RETURN_COLUMNS = ("ret", "retx", "dlret", "dlretx")
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
MODEL_FIELDS = ("prc", "ret", "retx", "vol", "shrout", "shrcd", "exchcd", "cfacpr", "cfacshr", "ticker")
NOT_APPLICABLE = -1.0  # SHRCD/EXCHCD of rows from a file without that column: the filter is skipped
__all__ = ["MISSING_RETURN_CODES", "CrspData", "compound_returns", "eligibility_reasons", "is_performance_delisting",
           "permno_for", "read_crsp", "ticker_spells"]
PERIODS_PER_YEAR = {"daily": 252, "monthly": 12}
MONTHLY_TRADING_DAYS = 21


@dataclass
class CrspData:
    """A parsed CRSP panel.

    ``panel``: one row per PERMNO and date, sorted by (permno, date), columns ``permno date ticker comnam
    shrcd exchcd prc bidask ret retx vol shrout cfacpr cfacshr adj_prc adj_vol mktcap dollar_vol eligible
    dlstcd dlret dlret_filled delist_row delist dlret_in_ret tret file line``.
    ``delist`` marks the row a delisting event sits on; ``dlret_in_ret`` that its RET already holds the
    delisting return (CIZ).
    ``delistings``: one row per delisting event: ``permno dlstdt dlstcd dlret dlret_raw dlretx dlprc
    dlret_filled performance exchcd row_added code in_ret`` (``dlstcd`` NaN when the file has none;
    ``code`` the DLRET missing code or CIZ flag). ``freq`` is ``daily`` or ``monthly``.
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
        out["exchcd"] = NOT_APPLICABLE
        report.append(f"{path.name}: no EXCHCD (or PrimaryExch) column: exchange filter (crsp.exchange_codes) "
                      "skipped for its rows")
    if "shrcd" not in cols:
        if ciz and all(k in lower for k in CIZ_SHARE):
            s = {k: raw[lower[k]].astype("string").str.strip().str.upper() for k in CIZ_SHARE}
            common = ((s["securitytype"] == "EQTY") & (s["securitysubtype"] == "COM") & (s["sharetype"] == "NS")
                      & (s["usincflg"] == "Y")).fillna(False)
            out["shrcd"] = np.where(common.to_numpy(dtype=bool), 11.0, 0.0)
        else:
            what = "CIZ file without share-type columns" if ciz else "no SHRCD column"
            report.append(f"{path.name}: {what}: share-code filter (crsp.share_codes) skipped for its rows")
            out["shrcd"] = NOT_APPLICABLE
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
    # delisting information inside the stock file (WRDS merged exports, CIZ flags)
    dcols = _map(raw.columns, DELIST_COLUMNS)
    flag = next((lower[f] for f in CIZ_FLAGS if f in lower), None)
    embedded = None
    if flag is not None:
        embedded = ciz_events(raw[flag], out["permno"].to_numpy(), out["date"].to_numpy(), path, offset, report)
    elif "dlstcd" in dcols or "dlret" in dcols:
        embedded = embedded_events(raw, dcols, out["permno"].to_numpy(), out["date"].to_numpy(), path, offset,
                                   counts, report)
    return out, embedded, ciz


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
        dframes.append(parse_delist_file(raw, _map(raw.columns, DELIST_COLUMNS), f, offset, counts))
    panel = pd.concat(frames, ignore_index=True)
    panel = panel.sort_values(["permno", "date"], kind="stable").reset_index(drop=True)
    panel = _resolve_duplicates(panel, cfg, report)
    freq = _frequency(panel, cfg, stock_files)
    panel = _derive(panel, cfg, freq)
    dl = pd.concat(dframes, ignore_index=True) if dframes else empty_events()
    if len(dframes) > 1:
        dl = dl.drop_duplicates(["permno", "dlstdt", "dlstcd", "dlret", "dlretx", "dlprc"])
        dup = dl.duplicated("permno", keep=False).to_numpy()
        if dup.any():
            a, b = dl[dup].iloc[0], dl[dup].iloc[1]
            raise DataError(f"PERMNO {int(a['permno'])} has conflicting delisting records across files: "
                            f"{Path(a['file']).name} line {int(a['line'])} and {Path(b['file']).name} line {int(b['line'])}",
                            file=str(b["file"]), line=int(b["line"]), rule="duplicate_delisting")
    if ciz_any:  # CIZ returns already hold every delisting return, whatever file the event came from
        dl["in_ret"] = True
        report.append("CIZ input: delisting returns are already in DlyRet/MthRet; DLRET not compounded")
    panel, events = merge_delistings(panel, dl, cfg, freq, report=report)
    for k, n in sorted(counts.items()):
        col, code = k.split("=", 1)
        kind = ""
        if col.strip().lower() in ("dlret", "dlretx"):
            kind = " (still active)" if code.upper() in ("A", "-88") else " (delisted, value missing)"
        report.append(f"missing-return code {k}{kind}: {n} cell(s) read as missing")
    return CrspData(panel=panel, delistings=events, freq=freq, report=report, dlret_in_ret=ciz_any)


def _same(a: pd.Series, b: pd.Series) -> bool:
    return bool(a == b) or (pd.isna(a) and pd.isna(b))


def _resolve_duplicates(panel: pd.DataFrame, cfg: CrspConfig, report: list[str]) -> pd.DataFrame:
    key = ["permno", "date"]
    dup = panel.duplicated(key, keep=False).to_numpy()
    if not dup.any():
        return panel
    fields = [c for c in MODEL_FIELDS if c in panel.columns]
    repeat = panel.duplicated(key + fields, keep="first").to_numpy()  # NaN equals NaN here
    if repeat.any():
        report.append(f"duplicates: {int(repeat.sum())} repeated PERMNO-date row(s) collapsed (every price, return "
                      "and code identical; WRDS repeats a row for each distribution event)")
        panel = panel[~repeat].reset_index(drop=True)
        dup = panel.duplicated(key, keep=False).to_numpy()
        if not dup.any():
            return panel
    d = panel[dup]
    if cfg.duplicates == "error":
        a, b = d.iloc[0], d.iloc[1]
        diff = [c.upper() for c in fields if not _same(a[c], b[c])]
        shown = "; ".join(f"PERMNO {int(r.permno)} {r.date.date()} at {Path(r.file).name}:{int(r.line)}"
                          for r in d.head(6).itertuples())
        raise DataError(f"{int(dup.sum())} rows share a PERMNO-date and differ ({shown}): lines {int(a['line'])} and "
                        f"{int(b['line'])} differ in {', '.join(diff)}; set crsp.duplicates to keep_first or keep_last "
                        "to resolve", file=str(b["file"]), line=int(b["line"]), rule="duplicate_permno_date",
                        column="PERMNO,DATE")
    keep = "first" if cfg.duplicates == "keep_first" else "last"
    out = panel.drop_duplicates(key, keep=keep).reset_index(drop=True)
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
    shr, exch = panel["shrcd"].to_numpy(), panel["exchcd"].to_numpy()
    share_ok = (shr == NOT_APPLICABLE) | np.isin(shr, cfg.share_codes)
    exch_ok = (exch == NOT_APPLICABLE) | np.isin(exch, cfg.exchange_codes)
    panel["eligible"] = share_ok & exch_ok
    return panel


def eligibility_reasons(crsp: "CrspData", cfg: CrspConfig | None = None) -> list[str]:
    """Why rows are (not) eligible: per filter, how many rows pass, and the most common codes that fail."""
    cfg = cfg or CrspConfig()
    p = crsp.panel[~crsp.panel["delist_row"]] if "delist_row" in crsp.panel else crsp.panel
    out = []
    for col, name, allowed in (("shrcd", "share-code", cfg.share_codes), ("exchcd", "exchange", cfg.exchange_codes)):
        v = p[col].to_numpy(dtype=float)
        skipped = v == NOT_APPLICABLE
        ok = skipped | np.isin(v, allowed)
        if skipped.all():
            out.append(f"{name} filter skipped: no {col.upper()} column")
            continue
        bad = pd.Series(v[~ok]).value_counts(dropna=False).head(3)
        seen = ", ".join(f"{'empty' if pd.isna(k) else f'{k:g}'} ({n} rows)" for k, n in bad.items())
        out.append(f"{int(ok.sum())} of {len(v)} rows pass the {name} filter ({col.upper()} in {list(allowed)})"
                   + (f"; failing values: {seen}" if seen else ""))
    return out


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
