"""Bars in, canonical validated bars out: loaders, validation, sessions, tiers, synthetic market."""

from .bars import CANONICAL_COLUMNS, LoadReport
from .loaders import Bars, bar_source, bars_from_frame, load_bars
from .tiers import TIERS, liquidity_tiers, tier_as_of, tier_of

__all__ = ["CANONICAL_COLUMNS", "Bars", "LoadReport", "TIERS", "bars_from_frame", "liquidity_tiers",
           "load_bars", "load_data", "summarize", "tier_as_of", "tier_of"]


def load_data(cfg, path=None):
    """Bars for an experiment: ``path`` (or ``data.path``) if given, else the synthetic market.

    Returns ``(bars, universe)``; ``universe`` is the synthetic universe table or None for files.
    """
    from pathlib import Path

    from .synthetic import generate

    src = Path(path) if path is not None else (cfg.data.path if cfg.data.source == "path" else None)
    if src is None:
        market = generate(cfg.data.synthetic, calendar=cfg.data.calendar)
        return market.bars, market.universe
    bars_path, universe_path = bar_source(src)
    if universe_path is not None:
        import pandas as pd

        return load_bars(bars_path, cfg.data), pd.read_parquet(universe_path)
    return load_bars(src, cfg.data), None


def summarize(bars, tier_cfg=None):
    """Per-symbol table: bars, days, session coverage, stale share, median daily dollar volume, tier
    (as of the day after the data ends, from the trailing window)."""
    import numpy as np
    import pandas as pd

    from .tiers import daily_dollar_volume

    f = bars.frame
    daily = daily_dollar_volume(f)
    nxt = f["session"].max() + pd.Timedelta(days=1)
    tiers = tier_as_of(f, nxt, tier_cfg).set_index("symbol")
    bar = bars.bar or pd.Timedelta("5min")
    rows = []
    for sym, g in daily.groupby("symbol", sort=True):
        from .sessions import schedule

        rows.append({
            "symbol": sym,
            "bars": int(g["bars"].sum()),
            "days": int(len(g)),
            "stale_share": float(g["stale_bars"].sum() / max(g["bars"].sum(), 1)),
            "median_daily_dollar_volume": float(np.median(g["dollar_volume"])),
            "adv": float(tiers.loc[sym, "adv"]),
            "tier": str(tiers.loc[sym, "tier"]),
        })
    out = pd.DataFrame(rows)
    # session coverage: bars present / bars the calendar's sessions hold between first and last day
    cov = []
    for sym, g in f.groupby("symbol", sort=True):
        from .sessions import schedule

        sched = schedule("XNYS", g["session"].iloc[0], g["session"].iloc[-1])
        expected = int(((sched["close"] - sched["open"]) // bar).sum())
        cov.append(len(g) / expected if expected else float("nan"))
    out["coverage"] = cov
    return out
