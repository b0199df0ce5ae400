"""Bars in, canonical validated bars out: loaders, validation, sessions, gaps, tiers, data quality, the
synthetic market; CRSP files and point-in-time universes (``crsp``, ``universe``)."""

from pathlib import Path

import pandas as pd

from .bars import CANONICAL_COLUMNS, LoadReport
from .loaders import Bars, bar_source, bars_from_frame, load_bars
from .quality import summarize
from .synthetic import generate
from .tiers import TIERS, liquidity_tiers, tier_as_of, tier_of

__all__ = ["CANONICAL_COLUMNS", "Bars", "LoadReport", "TIERS", "bars_from_frame", "liquidity_tiers",
           "load_bars", "load_data", "summarize", "tier_as_of", "tier_of"]


def load_data(cfg, path=None):
    """Bars for an experiment: ``path`` (or ``data.path``) if given, else the synthetic market.

    Returns ``(bars, universe)``; ``universe`` is the synthetic universe table or None for files.
    """
    src = Path(path) if path is not None else (cfg.data.path if cfg.data.source == "path" else None)
    if src is None:
        market = generate(cfg.data.synthetic, calendar=cfg.data.calendar)
        return market.bars, market.universe
    bars_path, universe_path = bar_source(src)
    if universe_path is not None:
        return load_bars(bars_path, cfg.data), pd.read_parquet(universe_path)
    return load_bars(src, cfg.data), None
