"""Synthetic CRSP: files in the public CRSP daily layout with a known survivorship bias built in.

Real CRSP data are licensed and cannot ship; this generator writes what a CRSP export looks like:
``dsf.csv`` (``PERMNO,date,SHRCD,EXCHCD,TICKER,COMNAM,PRC,VOL,RET,RETX,SHROUT,CFACPR,CFACSHR``, dates
YYYYMMDD) and ``dsedelist.csv`` (``PERMNO,DLSTDT,DLSTCD,DLRET,DLRETX,DLPRC``), or the same as Parquet,
plus ``truth.json`` with the parameters and the bias they imply.

The model (all parameters in :class:`CrspSynthParams`), on ``days`` weekdays from ``start``:

* Simple daily returns ``r[i, t] = m[t] + mu_i + sigma_idio * e[i, t]``, market ``m ~ N(mu_market,
  sigma_market)``, ``e ~ N(0, 1)``; rounded to 6 decimals as CRSP prints them. Prices compound them.
* Firm kinds: **survivors** (drift ``mu_survivor``; a share ``ipo_frac`` of them list late),
  **doomed** (drift ``mu_doomed``, delisted for performance at a random date, DLSTCD cycling through 552,
  560, 574, 580, 500, 584; about half have a DLRET drawn from U(-0.9, -0.2), the other half have it
  missing (blank, ``S``, or -55), which the reader fills with the Shumway defaults of ``fill_nyse_amex``
  / ``fill_nasdaq``, so the generator's truth uses the same values) and **merged** (drift
  ``mu_survivor``, DLSTCD 231/233 with DLRET = a takeover premium from U(0.1, 0.4)).
* **Ineligible** names that a correct reader filters out: ``n_ineligible`` with SHRCD 73 (ETF-like)
  or EXCHCD 4 (Arca), drift ``mu_ineligible`` (large, so a broken filter shows).
* CRSP layout details: the first row's RET is ``C``; active names get a DLSTCD 100 record dated on their
  last row; about 2 % of rows of the smaller half print a negative PRC (bid/ask midpoint); one survivor
  splits 2-for-1 (CFACPR and CFACSHR 2 before, 1 after; SHROUT doubles; RET continuous); one survivor
  changes ticker (same PERMNO); one early-dying doomed firm's ticker is reused by a later IPO (a new
  PERMNO).

Membership in the generator's own books equals the reader's point-in-time rule: an eligible firm is held
from the day after its first row to its delisting date inclusive. ``truth.json`` holds
* ``expected``: annualised returns of the equal-weighted PIT and survivors-only portfolios from the
  parameters: each member's expected return ``m[t] + mu_i`` given the market path (the common factor
  cancels in the bias; conditioning on it removes its noise from the check), delisting returns
  compounded on the day; their difference ``bias_ann`` and its sampling sd ``bias_ann_sd`` (the
  idiosyncratic part of the daily difference has variance ``sigma_idio^2 * n_dead / (n_surv * n_pit)``,
  ``n_dead`` = members that are not survivors);
* ``realised``: the same statistics and the max drawdowns from the generated (rounded) returns: what a
  correct reader of the files must reproduce up to rounding.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PERF_CODES = (552, 560, 574, 580, 500, 584)
MERGER_CODES = (231, 233)


@dataclass
class CrspSynthParams:
    n_firms: int = 160
    n_ineligible: int = 10
    days: int = 756
    start: str = "2015-01-02"
    seed: int = 0
    mu_market: float = 0.0003
    sigma_market: float = 0.01
    sigma_idio: float = 0.02
    mu_survivor: float = 0.0003
    mu_doomed: float = -0.0015
    mu_ineligible: float = 0.003
    doomed_frac: float = 0.25
    merger_frac: float = 0.10
    ipo_frac: float = 0.15
    fill_nyse_amex: float = -0.30
    fill_nasdaq: float = -0.55


def _tickers(n: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list(string.ascii_uppercase))
    seen: set[str] = set()
    out = []
    while len(out) < n:
        t = "".join(rng.choice(letters, size=int(rng.integers(3, 5))))
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def ann_return(r: np.ndarray, periods_per_year: int = 252) -> float:
    """Geometric annualised return of simple period returns."""
    r = np.asarray(r, dtype=float)
    return float(np.prod(1.0 + r) ** (periods_per_year / len(r)) - 1.0)


def max_drawdown(r: np.ndarray) -> float:
    """Largest peak-to-trough fall of the wealth path ``cumprod(1 + r)`` started at 1 (>= 0)."""
    w = np.concatenate([[1.0], np.cumprod(1.0 + np.asarray(r, dtype=float))])
    return float(np.max(1.0 - w / np.maximum.accumulate(w)))


def generate_crsp(params: CrspSynthParams | None = None) -> dict:
    """Build the synthetic CRSP tables in memory: ``{"dsf", "delist", "truth"}`` (frames and a dict)."""
    p = params or CrspSynthParams()
    if p.days < 120 or p.n_firms < 10:
        raise ValueError("the synthetic CRSP generator needs days >= 120 and n_firms >= 10")
    rng = np.random.default_rng(p.seed)
    n = p.n_firms + p.n_ineligible
    T = p.days
    dates = pd.bdate_range(p.start, periods=T)
    # ---- lifecycle
    kind = np.array(["survivor"] * n, dtype=object)
    order = rng.permutation(p.n_firms)
    n_doom = int(round(p.doomed_frac * p.n_firms))
    n_merge = int(round(p.merger_frac * p.n_firms))
    kind[order[:n_doom]] = "doomed"
    kind[order[n_doom:n_doom + n_merge]] = "merged"
    kind[p.n_firms:] = "ineligible"
    first = np.zeros(n, dtype=int)
    last = np.full(n, T - 1)
    surv_idx = np.flatnonzero(kind == "survivor")
    n_ipo = int(round(p.ipo_frac * len(surv_idx)))
    ipo = rng.choice(surv_idx, size=n_ipo, replace=False)
    first[ipo] = rng.integers(20, T // 2, size=n_ipo)
    dying = np.flatnonzero((kind == "doomed") | (kind == "merged"))
    last[dying] = rng.integers(60, T - 20, size=len(dying))
    # ticker reuse: the first doomed firm dies early; the first IPO lists after it and takes its ticker
    doomed_idx = np.flatnonzero(kind == "doomed")
    reuse_dead = int(doomed_idx[0]) if len(doomed_idx) else None
    reuse_new = int(ipo[0]) if n_ipo else None
    if reuse_dead is not None and reuse_new is not None:
        last[reuse_dead] = max(30, T // 10)
        first[reuse_new] = max(int(first[reuse_new]), int(last[reuse_dead]) + 20)
    mu = np.where(kind == "doomed", p.mu_doomed, np.where(kind == "ineligible", p.mu_ineligible, p.mu_survivor))
    exch = rng.choice([1, 2, 3], size=n, p=[0.4, 0.1, 0.5])
    shrcd = rng.choice([10, 11], size=n)
    inel = np.flatnonzero(kind == "ineligible")
    shrcd[inel[::2]] = 73
    exch[inel[1::2]] = 4
    # ---- returns and prices
    m = rng.normal(p.mu_market, p.sigma_market, size=T)
    e = rng.normal(size=(n, T))
    r = np.round(np.clip(m[None, :] + mu[:, None] + p.sigma_idio * e, -0.95, None), 6)
    p0 = rng.uniform(5, 100, size=n)
    price = p0[:, None] * np.cumprod(1.0 + r, axis=1)
    shrout = np.round(np.exp(rng.uniform(np.log(5e3), np.log(5e5), size=n)))  # thousands
    turnover = 0.005 * np.exp(rng.normal(0, 0.5, size=(n, T)))
    vol = np.round(shrout[:, None] * 1000 * turnover)
    tick = _tickers(n + 1, rng)
    names = [f"SYNTH CORP {i:03d}" for i in range(n)]
    if reuse_dead is not None and reuse_new is not None:
        tick[reuse_new] = tick[reuse_dead]
    # a ticker change and a split on two long-lived survivors (not the reuse IPO)
    steady = [int(i) for i in surv_idx if first[i] == 0]
    change_firm, split_firm = steady[0], steady[1]
    change_day, split_day = T // 3, T // 2
    # ---- delisting records
    dl_rows, dlret_eff = [], np.full(n, np.nan)
    missing_styles = ("", "S", "-55")
    k_perf = 0
    for i in dying:
        if kind[i] == "doomed":
            code = PERF_CODES[k_perf % len(PERF_CODES)]
            if k_perf % 2 == 0:
                dl = float(np.round(rng.uniform(-0.9, -0.2), 6))
                dl_txt = f"{dl:.6f}"
            else:
                dl = p.fill_nasdaq if exch[i] == 3 else p.fill_nyse_amex
                dl_txt = missing_styles[(k_perf // 2) % 3]
            k_perf += 1
        else:
            code = MERGER_CODES[int(i) % 2]
            dl = float(np.round(rng.uniform(0.1, 0.4), 6))
            dl_txt = f"{dl:.6f}"
        dlret_eff[i] = dl
        dlprc = price[i, last[i]] * (1 + dl)
        dl_rows.append({"PERMNO": 10000 + int(i), "DLSTDT": dates[last[i]].strftime("%Y%m%d"),
                        "DLSTCD": code, "DLRET": dl_txt, "DLRETX": dl_txt,
                        "DLPRC": f"{dlprc:.4f}" if dl_txt and dl_txt not in ("S", "-55") else ""})
    for i in np.flatnonzero(last == T - 1):
        dl_rows.append({"PERMNO": 10000 + int(i), "DLSTDT": dates[T - 1].strftime("%Y%m%d"), "DLSTCD": 100,
                        "DLRET": "", "DLRETX": "", "DLPRC": ""})
    # ---- the stock file, long form
    rows = []
    small = shrout < np.median(shrout)
    for i in range(n):
        t = np.arange(first[i], last[i] + 1)
        prc = price[i, t].copy()
        so = np.full(len(t), shrout[i])
        v = vol[i, t].copy()
        cf = np.ones(len(t))
        if i == split_firm:
            pre = t < split_day
            # from the split on, the printed price halves and SHROUT and VOL double
            prc = np.where(pre, prc, prc / 2)
            so = np.where(pre, so, so * 2)
            v = np.where(pre, v, v * 2)
            cf = np.where(pre, 2.0, 1.0)
        prc_txt = np.round(prc, 4)
        if small[i]:
            neg = rng.random(len(t)) < 0.02
            prc_txt = np.where(neg, -prc_txt, prc_txt)
        ret_txt = np.array([f"{x:.6f}" for x in r[i, t]], dtype=object)
        ret_txt[0] = "C"
        tk = np.array([tick[i]] * len(t), dtype=object)
        if i == change_firm:
            tk[t >= change_day] = tick[n]
        rows.append(pd.DataFrame({
            "PERMNO": 10000 + i, "date": dates[t].strftime("%Y%m%d"), "SHRCD": shrcd[i], "EXCHCD": exch[i],
            "TICKER": tk, "COMNAM": names[i], "PRC": prc_txt, "VOL": v.astype(np.int64), "RET": ret_txt,
            "RETX": ret_txt, "SHROUT": so.astype(np.int64), "CFACPR": cf, "CFACSHR": cf}))
    dsf = pd.concat(rows, ignore_index=True)
    delist = pd.DataFrame(dl_rows).sort_values("PERMNO").reset_index(drop=True)
    truth = _truth(p, kind, first, last, mu, r, dlret_eff, m)
    truth["layout"] = {"ticker_change": {"permno": 10000 + change_firm, "old": tick[change_firm],
                                         "new": tick[n], "date": str(dates[change_day].date())},
                       "split": {"permno": 10000 + split_firm, "date": str(dates[split_day].date())},
                       "ticker_reuse": ({"ticker": tick[reuse_dead], "dead": 10000 + reuse_dead,
                                         "new": 10000 + reuse_new}
                                        if reuse_new is not None and reuse_dead is not None else None)}
    truth["dates"] = {"start": str(dates[0].date()), "end": str(dates[-1].date())}
    return {"dsf": dsf, "delist": delist, "truth": truth}


def _truth(p: CrspSynthParams, kind, first, last, mu, r, dlret_eff, m) -> dict:
    n, T = r.shape
    t_idx = np.arange(T)[None, :]
    eligible = (kind != "ineligible")[:, None]
    member = eligible & (t_idx > first[:, None]) & (t_idx <= last[:, None])
    survivor = (last == T - 1)[:, None] & eligible
    death = t_idx == last[:, None]
    dl = np.where(death & ~np.isnan(dlret_eff)[:, None] & (last[:, None] < T - 1), dlret_eff[:, None], 0.0)
    realised = (1.0 + r) * (1.0 + dl) - 1.0
    exp_r = (1.0 + m[None, :] + mu[:, None]) * (1.0 + dl) - 1.0  # E over idiosyncratic noise only
    active = member.any(axis=0)
    t0 = int(np.flatnonzero(active)[0])
    sl = slice(t0, T)
    n_pit = member.sum(axis=0)[sl]
    n_sv = (member & survivor).sum(axis=0)[sl]

    def ew(x, mask):
        cnt = mask.sum(axis=0)
        return np.where(cnt > 0, (x * mask).sum(axis=0) / np.maximum(cnt, 1), 0.0)[sl]

    out = {}
    for name, x in (("expected", exp_r), ("realised", realised)):
        pit = ew(x, member)
        sv = ew(x, member & survivor)
        out[name] = {"pit_ann": ann_return(pit), "survivors_ann": ann_return(sv),
                     "bias_ann": ann_return(sv) - ann_return(pit)}
        if name == "realised":
            out[name].update(pit_mdd=max_drawdown(pit), survivors_mdd=max_drawdown(sv),
                             bias_mdd=max_drawdown(pit) - max_drawdown(sv))
    var = p.sigma_idio ** 2 * (n_pit - n_sv) / np.maximum(n_sv * n_pit, 1)
    n_days = T - t0
    out["expected"]["bias_ann_sd"] = float(np.sqrt(var.sum()) * 252 / n_days
                                           * (1.0 + out["expected"]["survivors_ann"]))
    out["expected"]["note"] = ("expectation over idiosyncratic noise, given the drawn lifecycles, delisting "
                               "returns and market path; idiosyncratic volatility drag ignored")
    out["periods"] = int(n_days)
    out["n_delisted"] = int(((last < T - 1) & (kind != "ineligible")).sum())
    out["n_survivors"] = int(survivor.sum())
    out["params"] = asdict(p)
    return out


def write_crsp(out: str | Path, params: CrspSynthParams | None = None, fmt: str = "csv") -> dict[str, Path]:
    """Write ``dsf``, ``dsedelist`` (CSV or Parquet) and ``truth.json`` into ``out``; same seed, same files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g = generate_crsp(params)
    paths = {}
    for key, name in (("dsf", "dsf"), ("delist", "dsedelist")):
        if fmt == "parquet":
            path = out / f"{name}.parquet"
            g[key].astype({c: str for c in ("RET", "RETX")} if key == "dsf" else {}).to_parquet(path, index=False)
        else:
            path = out / f"{name}.csv"
            g[key].to_csv(path, index=False)
        paths[key] = path
    paths["truth"] = out / "truth.json"
    paths["truth"].write_text(json.dumps(g["truth"], indent=2, default=float))
    return paths
