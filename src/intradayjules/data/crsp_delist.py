"""CRSP delistings: where the events come from in each file layout, and how their returns are applied.

Sources of delisting events (one table: ``permno dlstdt dlstcd dlret dlretx dlprc code in_ret file line``):

* **a delisting file** (msedelist/dsedelist: ``PERMNO, DLSTDT, DLSTCD, DLRET, ...``): one row per security;
  DLSTCD >= 200 is an event, 1xx (100: still active) is not.
* **delisting columns inside the stock file** (WRDS merged exports, e.g. ``DATE, PERMNO, SHRCD, EXCHCD,
  SICCD, DLRETX, DLRET, ...`` or the 64-column msf with the event files): a row *carries* a delisting
  when its DLSTCD is >= 200, or, without a DLSTCD on the row, when its DLRET is a number or a
  delisted-but-missing code (``S T P`` / -55 -66 -99). ``A`` / -88 and DLSTCD 1xx mark an active security.
  The delisting date is DLSTDT when the file has it, else **the date of the row that carries it** (in
  WRDS's monthly merges that row is often an extra one after the last price, with PRC and RET empty).
  The same event repeated on several rows (WRDS repeats a row per distribution event) counts once; when
  no DLSTDT dates it, the last of those rows dates it. Two different events for one PERMNO are an error
  naming both lines.
* **CIZ files** (2024+): ``DlyDelFlg`` / ``MthDelFlg`` not ``N`` marks the delisting row; CRSP has already
  folded the delisting return into that row's DlyRet / MthRet (``in_ret``), so it is never applied a
  second time. Flag ``Y``: return included; any other value (``M``, ``G``...): the delisting return was
  missing or too far from the last price and is not in the return (counted in the report).

Application (``merge_delistings``): the event goes on the stock row of its date (monthly: of its month);
a row is added when there is none (``delist_row``). ``tret = (1 + RET)(1 + DLRET) - 1`` with one part
missing giving the other. A missing DLRET of a performance delisting (DLSTCD 500 or 520-584) is filled with
the Shumway defaults by exchange (``CrspConfig.delisting_fill_*``; an unknown exchange gets the NYSE/AMEX
value, reported). Without a DLSTCD the kind of delisting is unknown: no fill, and it is reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import CrspConfig
from ..errors import DataError
from .crsp_parse import ACTIVE_CODES, DELISTED_MISSING_CODES, _dates, _numeric, _permno, codes_of

DELIST_COLUMNS = {
    "permno": ["permno"],
    "dlstdt": ["dlstdt"],
    "dlstcd": ["dlstcd"],
    "dlret": ["dlret"],
    "dlretx": ["dlretx"],
    "dlprc": ["dlprc"],
}
CIZ_FLAGS = ("dlydelflg", "mthdelflg")
EVENT_COLUMNS = ["permno", "dlstdt", "dlstcd", "dlret", "dlretx", "dlprc", "code", "in_ret", "file", "line"]
EVENT_KEY = ["permno", "dlstdt", "dlstcd", "dlret", "dlretx", "dlprc", "code"]


def is_performance_delisting(code) -> np.ndarray:
    """DLSTCD 500 or 520-584: delisted by the exchange for poor performance (Shumway 1997)."""
    c = np.asarray(code, dtype=float)
    return (c == 500) | ((c >= 520) & (c <= 584))


def compound_returns(ret, dlret) -> np.ndarray:
    """``(1 + RET)(1 + DLRET) - 1``; one part missing -> the other; both missing -> NaN."""
    r = np.asarray(ret, dtype=float)
    d = np.asarray(dlret, dtype=float)
    both = (1.0 + np.nan_to_num(r)) * (1.0 + np.nan_to_num(d)) - 1.0
    return np.where(np.isnan(r) & np.isnan(d), np.nan, both)


def empty_events() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
        EVENT_COLUMNS, ["int64", "datetime64[ns]", "float64", "float64", "float64", "float64", "object", "bool",
                        "object", "int64"])})


def _values(raw, cols, path, offset, counts, n):
    kw = dict(path=path, offset=offset)
    out = {}
    for c in ("dlstcd", "dlret", "dlretx", "dlprc"):
        out[c] = (_numeric(raw[cols[c]], column=cols[c], returns=c in ("dlret", "dlretx"), counts=counts, **kw)
                  if c in cols else np.full(n, np.nan))
    out["code"] = codes_of(raw[cols["dlret"]]) if "dlret" in cols else np.full(n, "", dtype=object)
    return out


def _one_per_permno(d: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    """Identical repeats count once; two different events for one PERMNO are an error naming both lines."""
    d = d.drop_duplicates(EVENT_KEY)
    dup = d.duplicated("permno", keep=False).to_numpy()
    if dup.any():
        a, b = d[dup].iloc[0], d[dup].iloc[1]
        diff = [c for c in EVENT_KEY[1:] if not (a[c] == b[c] or (pd.isna(a[c]) and pd.isna(b[c])))]
        raise DataError(f"PERMNO {int(a['permno'])} has conflicting delisting records{what}: line {int(a['line'])} "
                        f"and line {int(b['line'])} differ in {', '.join(c.upper() for c in diff)}",
                        file=str(path), line=int(b["line"]), rule="duplicate_delisting")
    return d.reset_index(drop=True)


def parse_delist_file(raw: pd.DataFrame, cols: dict, path: Path, offset: int, counts: dict) -> pd.DataFrame:
    """Events of a delisting file (rows with a DLSTCD); the date is required."""
    for need in ("permno", "dlstdt", "dlstcd"):
        if need not in cols:
            raise DataError(f"missing column {need.upper()} (have: {', '.join(map(str, raw.columns))})",
                            file=str(path), rule="missing_column", column=need.upper())
    kw = dict(path=path, offset=offset)
    v = _values(raw, cols, path, offset, counts, len(raw))
    d = pd.DataFrame({"permno": _permno(raw[cols["permno"]], column=cols["permno"], **kw),
                      "dlstdt": _dates(raw[cols["dlstdt"]], column=cols["dlstdt"], required=False, **kw), **v,
                      "in_ret": False, "file": str(path), "line": np.arange(len(raw)) + offset})
    d = d[~np.isnan(v["dlstcd"])]
    nodate = d["dlstdt"].isna().to_numpy()
    if nodate.any():
        r = d.iloc[int(np.flatnonzero(nodate)[0])]
        raise DataError("delisting code without DLSTDT", file=str(path), line=int(r["line"]),
                        column=cols["dlstdt"], rule="bad_date")
    return _one_per_permno(d[EVENT_COLUMNS], path, "")


def embedded_events(raw: pd.DataFrame, cols: dict, permnos: np.ndarray, dates: np.ndarray, path: Path, offset: int,
                    counts: dict, report: list[str]) -> pd.DataFrame:
    """Events carried by rows of a merged stock file (module docstring)."""
    n = len(raw)
    v = _values(raw, cols, path, offset, counts, n)
    code = v["dlstcd"]
    has_code = ~np.isnan(code)
    active = (has_code & (code < 200)) | np.isin(v["code"], ACTIVE_CODES)
    carries = np.where(has_code, code >= 200, ~np.isnan(v["dlret"]) | np.isin(v["code"], DELISTED_MISSING_CODES))
    carries &= ~(has_code & (code < 200))
    rows = np.flatnonzero(carries)
    if "dlstdt" in cols:
        dl_dates = _dates(raw[cols["dlstdt"]], path=path, offset=offset, column=cols["dlstdt"], required=False)
        date = np.where(np.isnat(dl_dates), dates, dl_dates)
    else:
        date = dates
    d = pd.DataFrame({"permno": permnos[rows], "dlstdt": date[rows], **{k: x[rows] for k, x in v.items()},
                      "in_ret": False, "file": str(path), "line": rows + offset})[EVENT_COLUMNS]
    d = d.drop_duplicates(EVENT_KEY)  # the same event on rows of one date (a row per distribution event)
    key = ["permno", "dlstcd", "dlret", "dlretx", "dlprc", "code"]
    repeated = d.duplicated(key, keep=False)
    if repeated.any():  # the same event on rows of several dates: the last of them dates it
        report.append(f"{path.name}: {int(d.loc[repeated, 'permno'].nunique())} PERMNO(s) repeat one delisting "
                      "on rows of several dates: dated by the last of them")
        d = d.sort_values(["permno", "dlstdt", "line"], kind="stable").drop_duplicates(key, keep="last")
    if len(d) and "dlstdt" not in cols:
        report.append(f"{path.name}: no DLSTDT column: {len(d)} delisting(s) dated by the row that carries them")
    n_active = int(pd.Series(permnos[active]).nunique()) if active.any() else 0
    if n_active:
        report.append(f"{path.name}: {n_active} PERMNO(s) marked active (DLSTCD 1xx or DLRET A / -88): not delisted")
    if len(d) and "dlstcd" not in cols:
        report.append(f"{path.name}: no DLSTCD column: the kind of each delisting (performance or not) is unknown, "
                      "so a missing DLRET is not filled")
    return _one_per_permno(d, path, " in the stock file")


def ciz_events(flags: pd.Series, permnos: np.ndarray, dates: np.ndarray, path: Path, offset: int,
               report: list[str]) -> pd.DataFrame:
    """CIZ delisting rows (DlyDelFlg / MthDelFlg not N): return already in DlyRet / MthRet when the flag is Y."""
    f = flags.astype("string").str.strip().str.upper().fillna("")
    ev = (f != "") & (f != "N")
    rows = np.flatnonzero(ev.to_numpy(dtype=bool))
    fl = f.to_numpy(dtype=object)[rows]
    d = pd.DataFrame({"permno": permnos[rows], "dlstdt": dates[rows], "dlstcd": np.nan, "dlret": np.nan,
                      "dlretx": np.nan, "dlprc": np.nan, "code": fl, "in_ret": fl == "Y", "file": str(path),
                      "line": rows + offset})[EVENT_COLUMNS]
    other = pd.Series(fl[fl != "Y"]).value_counts()
    if len(other):
        report.append(f"{path.name}: {int(other.sum())} CIZ delisting(s) flagged "
                      f"{', '.join(f'{k} ({v})' for k, v in other.items())}: the delisting return is not in the "
                      "period's return (missing)")
    return _one_per_permno(d, path, " in the stock file")


def merge_delistings(panel: pd.DataFrame, dl: pd.DataFrame, cfg: CrspConfig, freq: str, *,
                     report: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attach delisting events to their row (module docstring); returns the panel and the event table."""
    for c, v in (("dlstcd", np.nan), ("dlret", np.nan), ("dlret_filled", False), ("delist_row", False),
                 ("delist", False), ("dlret_in_ret", False)):
        panel[c] = v
    ev = dl[(dl["dlstcd"] >= 200) | dl["dlstcd"].isna()].copy() if len(dl) else dl.copy()
    known = set(panel["permno"].unique().tolist())
    outside = ev[~ev["permno"].isin(known)]
    if len(outside):
        report.append(f"delistings: {len(outside)} event(s) for PERMNOs without stock rows ignored")
    ev = ev[ev["permno"].isin(known)].sort_values("permno").reset_index(drop=True)
    cols = ["permno", "dlstdt", "dlstcd", "dlret", "dlret_raw", "dlretx", "dlprc", "dlret_filled", "performance",
            "exchcd", "row_added", "code", "in_ret"]
    if ev.empty:
        panel["tret"] = panel["ret"]
        return panel, pd.DataFrame(columns=cols)
    ev["dlret_raw"] = ev["dlret"].astype(float)
    ev["dlstdt"] = pd.to_datetime(ev["dlstdt"])
    key = ev["dlstdt"].dt.to_period("M") if freq == "monthly" else ev["dlstdt"]

    def row_index(p: pd.DataFrame) -> pd.Series:
        pk = p["date"].dt.to_period("M") if freq == "monthly" else p["date"]
        idx = pd.Series(p.index.to_numpy(), index=pd.MultiIndex.from_arrays([p["permno"], pk]))
        return idx[~idx.index.duplicated(keep="last")]

    ev["row"] = row_index(panel).reindex(pd.MultiIndex.from_arrays([ev["permno"], key])).to_numpy()
    # exchange at delisting: last EXCHCD on or before DLSTDT
    last = panel[["permno", "date", "exchcd"]].dropna(subset=["exchcd"]).sort_values("date")
    probe = ev[["permno", "dlstdt"]].rename(columns={"dlstdt": "date"}).reset_index().sort_values("date")
    ex = pd.merge_asof(probe, last, on="date", by="permno", direction="backward")
    ex = ex.set_index("index")["exchcd"].reindex(ev.index)
    if ex.isna().any():  # delisting dated before the first row: use the first row's exchange
        ex = ex.fillna(ev["permno"].map(panel.groupby("permno")["exchcd"].first()))
    ev["exchcd"] = ex.to_numpy()
    ev["performance"] = is_performance_delisting(ev["dlstcd"])
    fill = np.where(ev["exchcd"].to_numpy() == 3, cfg.delisting_fill_nasdaq, cfg.delisting_fill_nyse_amex)
    need = ev["performance"].to_numpy() & np.isnan(ev["dlret_raw"].to_numpy()) & ~ev["in_ret"].to_numpy(dtype=bool)
    ev["dlret"] = np.where(need, fill, ev["dlret_raw"].to_numpy())
    ev["dlret_filled"] = need
    if need.any():
        unknown = need & ~np.isin(ev["exchcd"].to_numpy(), [1, 2, 3])
        report.append(f"delistings: {int(need.sum())} missing performance DLRET(s) filled "
                      f"({cfg.delisting_fill_nyse_amex:+.0%} NYSE/AMEX, {cfg.delisting_fill_nasdaq:+.0%} Nasdaq)"
                      + (f"; {int(unknown.sum())} with no exchange code got the NYSE/AMEX value" if unknown.any() else ""))
    legacy = ~ev["in_ret"].to_numpy(dtype=bool) & ~ev["code"].isin(["M", "G"]).to_numpy()
    missing = legacy & np.isnan(ev["dlret"].to_numpy())
    if missing.any():
        report.append(f"delistings: {int(missing.sum())} DLRET(s) missing and not filled (not a performance "
                      "delisting, or no DLSTCD): the return on the delisting date is RET alone")
    added = ev["row"].isna().to_numpy()
    ev["row_added"] = added
    if added.any():
        new = []
        for e in ev[added].itertuples():
            prior = panel[(panel["permno"] == e.permno) & (panel["date"] <= e.dlstdt)]
            base = (prior.iloc[-1] if len(prior) else panel[panel["permno"] == e.permno].iloc[0]).copy()
            base["date"] = e.dlstdt if freq == "daily" else (e.dlstdt + pd.offsets.MonthEnd(0))
            for c in ("ret", "retx", "vol", "adj_vol", "dollar_vol"):
                base[c] = np.nan
            dlprc = abs(e.dlprc) if np.isfinite(e.dlprc) and e.dlprc != 0 else np.nan
            base["prc"] = dlprc
            base["adj_prc"] = dlprc / base["cfacpr"] if np.isfinite(dlprc) else np.nan
            base["mktcap"] = dlprc * base["shrout"] * 1000.0
            base["bidask"] = False
            base["delist_row"] = True
            new.append(base)
        panel = pd.concat([panel, pd.DataFrame(new)], ignore_index=True)
        panel = panel.sort_values(["permno", "date"], kind="stable").reset_index(drop=True)
        report.append(f"delistings: {int(added.sum())} event(s) without a stock row on DLSTDT: row added")
        ev["row"] = row_index(panel).reindex(pd.MultiIndex.from_arrays([ev["permno"], key])).to_numpy()
    rows = ev["row"].to_numpy(dtype=np.int64)
    in_ret = ev["in_ret"].to_numpy(dtype=bool)
    panel.loc[rows, "dlstcd"] = ev["dlstcd"].to_numpy()
    panel.loc[rows, "dlret"] = np.where(in_ret, np.nan, ev["dlret"].to_numpy())
    panel.loc[rows, "dlret_filled"] = ev["dlret_filled"].to_numpy()
    panel.loc[rows, "delist"] = True
    panel.loc[rows, "dlret_in_ret"] = in_ret
    for c in ("dlret_filled", "delist_row", "bidask", "eligible", "delist", "dlret_in_ret"):
        panel[c] = panel[c].astype(bool)
    panel["tret"] = compound_returns(panel["ret"].to_numpy(), panel["dlret"].to_numpy())
    return panel, ev[cols].reset_index(drop=True)
