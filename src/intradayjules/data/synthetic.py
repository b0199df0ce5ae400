"""A synthetic intraday market with liquidity tiers: the embedded default data set.

Each symbol belongs to a tier with these parameters (``TIER_PARAMS``):

==========  ===========  ================  ===========  ================  =====================
tier        ADV (USD)    half-spread (bps) daily vol    trades per bar    price range (USD)
==========  ===========  ================  ===========  ================  =====================
liquid      1e9          0.5 (1 bp full)   1.2 %        always trades     80 - 400
mid         5e7          5   (10 bp full)  2.0 %        6 (Poisson mean)  20 - 150
illiquid    2e6          30  (60 bp full)  3.0 %        1.3               5 - 40
==========  ===========  ================  ===========  ================  =====================

The model, per symbol and bar (calendar sessions of the exchange, so half days have fewer bars):

* The efficient (mid) price follows a log random walk whose bar variance follows GARCH(1,1)
  (alpha 0.05, beta 0.90) around ``daily_vol**2 / bars_per_day``, times an intraday U-shape; an
  overnight gap with 30 % of the daily vol separates sessions.
* Volume follows a U-shaped intraday profile ``1 + 2 (2x - 1)^2`` (x = position in the session), with
  lognormal day (sigma 0.3) and bar (sigma 0.5) noise, scaled so the expected daily dollar volume is
  the tier's ADV (each symbol's ADV is the tier ADV times exp(N(0, 0.15)) clipped to [0.74, 1.35]).
* The number of trades in a bar is Poisson with mean ``trades_per_bar`` times the same U-shape. A bar
  with no trade is stale: volume 0 and every price equal to the last traded close. Illiquid names end
  up with about 25 % stale bars (documented range 10-40 %), mid names about 1 %, liquid names none.
* Trade prices bounce between bid and ask (Roll 1984): a printed price is ``mid * exp(q * h)`` with
  ``q = +-1`` at random and ``h`` the half-spread. Close-to-close returns of illiquid names are then
  strongly negatively autocorrelated (about -h^2 autocovariance), so a naive mean-reversion rule looks
  profitable before costs and loses after them: the trap a cost-blind agent falls into.
* **Planted edge** (positive control, ``SyntheticConfig.edge_bps`` > 0, off by default): in the symbols of
  ``edge_tiers`` (liquid by default) every bar from the third of a session on gets ``edge_bps`` added to
  its mid log return in the direction of the previous bar's printed return (``plant_edge``): a
  short-horizon momentum of known size. A policy that holds ``sign(last printed return)`` earns
  ``edge_bps`` per bar gross in expectation (the noise has mean zero whatever its variance); what is left
  after costs is computed in ``pipeline/controls.py`` (``expected_edge``). With ``edge_bps = 0`` the
  market is identical, draw for draw, to the one without the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import SyntheticConfig
from ..errors import ConfigError
from .bars import LoadReport, add_staleness, canonical
from .loaders import Bars
from .sessions import _calendar, schedule

TIER_PARAMS = {
    "liquid": {"adv": 1e9, "half_spread_bps": 0.5, "daily_vol": 0.012, "trades_per_bar": np.inf,
               "price": (80.0, 400.0)},
    "mid": {"adv": 5e7, "half_spread_bps": 5.0, "daily_vol": 0.020, "trades_per_bar": 6.0,
            "price": (20.0, 150.0)},
    "illiquid": {"adv": 2e6, "half_spread_bps": 30.0, "daily_vol": 0.030, "trades_per_bar": 1.3,
                 "price": (5.0, 40.0)},
}
PREFIX = {"liquid": "LQ", "mid": "MD", "illiquid": "IL"}
GARCH_ALPHA, GARCH_BETA = 0.05, 0.90


@dataclass
class SyntheticMarket:
    bars: Bars
    universe: pd.DataFrame  # symbol, tier, adv_usd, half_spread_bps, spread_bps, daily_vol

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write ``bars.parquet`` (canonical table) and ``universe.parquet`` into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"bars": out / "bars.parquet", "universe": out / "universe.parquet"}
        for key, frame in (("bars", self.bars.frame), ("universe", self.universe)):
            tmp = paths[key].with_suffix(".parquet.tmp")
            frame.to_parquet(tmp, index=False, compression="zstd")
            tmp.replace(paths[key])
        return paths


def tier_assignment(n: int) -> list[str]:
    """Split n symbols into liquid / mid / illiquid groups as evenly as possible (6 -> 2/2/2)."""
    groups = np.array_split(np.arange(n), 3)
    return [t for t, g in zip(("liquid", "mid", "illiquid"), groups) for _ in g]


def _sessions(cfg: SyntheticConfig, calendar: str) -> pd.DataFrame:
    """The ``cfg.days`` sessions of ``calendar`` from the first on or after ``cfg.start``; a
    ``ConfigError`` naming the setting when the calendar does not hold that many."""
    cal = _calendar(calendar)
    start = pd.Timestamp(cfg.start)
    last_known = cal.sessions[-1]
    if start > last_known:
        raise ConfigError([f"data.synthetic.start: {cfg.start} is after the last session the {calendar} "
                           f"calendar knows ({last_known.date()})"])
    first = cal.date_to_session(start, direction="next")
    idx = cal.sessions.get_loc(first)
    available = len(cal.sessions) - idx
    if cfg.days > available:
        raise ConfigError([f"data.synthetic.days: {cfg.days} sessions from {first.date()} run past the last "
                           f"session the {calendar} calendar knows ({last_known.date()}); at most {available} "
                           "fit: lower days or move data.synthetic.start earlier"])
    last = cal.sessions[idx + cfg.days - 1]
    return schedule(calendar, first, last)


def u_shape(x: np.ndarray) -> np.ndarray:
    return 1.0 + 2.0 * (2.0 * x - 1.0) ** 2


def plant_edge(r: np.ndarray, gap: np.ndarray, pos: np.ndarray, traded: np.ndarray, q_close: np.ndarray,
               h: float, edge: float) -> np.ndarray:
    """Bar mid log returns with the planted edge: ``r_k + edge * sign(l_{k-1})`` for every bar with
    session position ``pos_k >= 2``, where ``l_{k-1}`` is the printed log return of the previous bar
    (``log c_{k-1} - log c_{k-2}``, both in the session; ``c`` the printed close with its bid-ask bounce,
    carried over bars without a trade, before rounding to 1/100 cent). Sequential: the edge of bar k moves
    the price that bar k+1's signal is computed from. ``edge`` is a fraction (bps * 1e-4)."""
    out = r.copy()
    lmid = 0.0
    lc = np.empty(len(r))  # printed log close (relative to the start; only differences are used)
    for k in range(len(r)):
        if pos[k] >= 2:
            prev = lc[k - 1] - lc[k - 2]
            out[k] += edge * (1.0 if prev > 0 else -1.0 if prev < 0 else 0.0)
        lmid += out[k] + gap[k]
        lc[k] = lmid + q_close[k] * h if traded[k] else lc[k - 1]
    return out


def generate(cfg: SyntheticConfig | None = None, calendar: str = "XNYS") -> SyntheticMarket:
    """Generate bars and the universe table. Same config -> identical output."""
    cfg = cfg or SyntheticConfig()
    bar = pd.Timedelta(cfg.bar)
    sched = _sessions(cfg, calendar)
    opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
    closes = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")
    counts = ((closes - opens) // bar.value).astype(int)
    n = int(counts.sum())
    sess_id = np.repeat(np.arange(len(sched)), counts)
    pos = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    ts = opens[sess_id] + pos * bar.value
    full_day = int(counts.max())
    x = (pos + 0.5) / full_day  # position in a full session (half days end early)
    u = u_shape(x)
    first_bar = pos == 0

    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.n_symbols + 1)
    tiers = tier_assignment(cfg.n_symbols)
    frames, rows = [], []
    counters = {t: 0 for t in TIER_PARAMS}
    for i, tier in enumerate(tiers):
        p = TIER_PARAMS[tier]
        rng = np.random.default_rng(seeds[i])
        counters[tier] += 1
        symbol = f"{PREFIX[tier]}{counters[tier]:02d}"
        adv = p["adv"] * float(np.exp(np.clip(rng.normal(0.0, 0.15), -0.3, 0.3)))
        h = p["half_spread_bps"] * 1e-4
        price0 = float(np.exp(rng.uniform(np.log(p["price"][0]), np.log(p["price"][1]))))

        # mid price: GARCH(1,1) bar returns with intraday U-shaped vol, overnight gaps
        var_bar = p["daily_vol"] ** 2 / full_day
        z = rng.standard_normal(n)
        shape = np.sqrt(u / u.mean())
        r = np.empty(n)
        s2 = var_bar
        omega = var_bar * (1 - GARCH_ALPHA - GARCH_BETA)
        for k in range(n):
            r[k] = np.sqrt(s2) * z[k]
            s2 = omega + GARCH_ALPHA * r[k] ** 2 + GARCH_BETA * s2
        r = r * shape - 0.5 * (r * shape) ** 2  # no drift in the price level
        gap = np.where(first_bar, rng.standard_normal(n) * 0.3 * p["daily_vol"], 0.0)

        # trades and volume (draws only: prices come after the planted edge)
        lam = p["trades_per_bar"] * u / u.mean()
        if np.isinf(p["trades_per_bar"]):
            trades = np.full(n, 1_000)
            p_trade = np.ones(n)
        else:
            trades = rng.poisson(lam)
            p_trade = 1 - np.exp(-lam)
        traded = trades > 0
        traded[0] = True  # a series starts with a print
        day_noise = np.exp(rng.normal(-0.045, 0.3, len(sched)))[sess_id]
        bar_noise = np.exp(rng.normal(-0.125, 0.5, n))
        q_open = rng.choice([-1.0, 1.0], n)
        q_close = rng.choice([-1.0, 1.0], n)
        if cfg.edge_bps > 0 and tier in cfg.edge_tiers:
            r = plant_edge(r, gap, pos, traded, q_close, h, cfg.edge_bps * 1e-4)
        log_mid_end = np.log(price0) + np.cumsum(r + gap)
        log_mid_start = log_mid_end - r  # after the overnight gap, before the bar's move
        exp_dollar = adv * u / np.bincount(sess_id, weights=u)[sess_id] * day_noise * bar_noise / p_trade
        mid_end = np.exp(log_mid_end)
        shares = np.where(traded, np.maximum(np.round(exp_dollar / mid_end), 1.0), 0.0)

        # printed prices with bid-ask bounce
        o = np.exp(log_mid_start + q_open * h)
        c = np.exp(log_mid_end + q_close * h)
        excursion = np.abs(rng.standard_normal(n)) * np.sqrt(var_bar) * shape * 0.5
        hi = np.maximum(np.maximum(o, c), np.exp(np.maximum(log_mid_start, log_mid_end) + excursion + h))
        lo = np.minimum(np.minimum(o, c), np.exp(np.minimum(log_mid_start, log_mid_end) - excursion - h))
        single = trades == 1  # one print: open = high = low = close
        o = np.where(single, c, o)
        hi = np.where(single, c, hi)
        lo = np.where(single, c, lo)
        # stale bars repeat the last traded close
        last_idx = np.maximum.accumulate(np.where(traded, np.arange(n), 0))
        carried = c[last_idx]
        o, hi, lo, c = (np.where(traded, a, carried) for a in (o, hi, lo, c))
        o, hi, lo, c = (np.round(a, 4) for a in (o, hi, lo, c))
        hi = np.maximum(hi, np.maximum(o, c))
        lo = np.minimum(lo, np.minimum(o, c))

        frames.append(pd.DataFrame({
            "timestamp": pd.to_datetime(ts, utc=True), "symbol": symbol,
            "open": o, "high": hi, "low": lo, "close": c, "volume": shares,
            "session": sched.index.to_numpy()[sess_id],
        }))
        rows.append((symbol, tier, adv, p["half_spread_bps"], 2 * p["half_spread_bps"], p["daily_vol"]))

    df = pd.concat(frames, ignore_index=True).sort_values(["symbol", "timestamp"], kind="stable")
    df = add_staleness(df.reset_index(drop=True))
    universe = pd.DataFrame(rows, columns=["symbol", "tier", "adv_usd", "half_spread_bps", "spread_bps", "daily_vol"])
    universe = universe.sort_values("symbol").reset_index(drop=True)
    report = LoadReport(files=[f"synthetic(seed={cfg.seed}, symbols={cfg.n_symbols}, days={cfg.days})"],
                        rows_read=len(df))
    return SyntheticMarket(Bars(canonical(df), report, bar), universe)
