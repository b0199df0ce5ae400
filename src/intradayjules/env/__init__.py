"""The Gymnasium trading environment: single- and multi-asset, vectorised for SB3.

``make_env(cfg, bars, universe, split)`` -> ``TradingEnv``; ``make_vec_env(...)`` -> ``SessionVecEnv``.
``prepare(cfg, bars, universe)`` does the pandas work once (features, alignment, tiers, splits) and can
be passed to both as ``data=`` to build train and evaluation envs from the same arrays.
See docs/environment.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy modules (pandas, numba, gymnasium) load on first use: the CLI imports this
    import numpy as np
    import pandas as pd

    from .episodes import Panel
    from .trading_env import TradingEnv

SPLITS = ("train", "val", "test")
_LAZY = {"Episode": "episodes", "Panel": "episodes", "build_panel": "episodes", "session_splits": "episodes",
         "pick_symbols": "episodes", "Simulator": "simulator", "TradingEnv": "trading_env",
         "SessionVecEnv": "vector"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class EnvData:
    panel: Panel
    splits: dict[str, np.ndarray]  # session dates per split
    symbols: list[str]

    def session_indices(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.panel.session_index(self.splits[split])


def _frame(bars) -> pd.DataFrame:
    return bars.frame if hasattr(bars, "frame") else bars


def compute_env_features(frame: pd.DataFrame, cfg) -> pd.DataFrame:
    """``features.pipeline.compute_features`` when it exists, else the minimal fallback table."""
    try:
        from ..features.pipeline import compute_features
    except ImportError:
        from .fallback_features import fallback_features

        warnings.warn("intradayjules.features.pipeline not available: using env.fallback_features",
                      stacklevel=2)
        return fallback_features(frame)
    return compute_features(frame, cfg.features, calendar=cfg.data.calendar)


def prepare(cfg, bars, universe: pd.DataFrame | None = None, features: pd.DataFrame | None = None) -> EnvData:
    """Choose symbols, compute features (unless given: same rows as ``bars``), split sessions, align."""
    import pandas as pd

    from .episodes import build_panel, pick_symbols, session_splits

    frame = _frame(bars)
    splits = session_splits(frame["session"].unique(), cfg.data.splits, warmup=cfg.data.tiers.adv_window_days)
    if len(splits["train"]) == 0:
        raise ValueError(f"no training sessions after the {cfg.data.tiers.adv_window_days}-session ADV "
                         "warm-up: use more data or change data.splits / data.tiers.adv_window_days")
    env = cfg.env
    if env.symbols:
        symbols = list(env.symbols)
    else:
        as_of = pd.Timestamp(splits["train"][-1]) + pd.Timedelta(days=1)
        n = 1 if env.mode == "single" else env.n_assets
        symbols = pick_symbols(frame, n, universe, cfg.data.tiers, as_of)
    if env.mode == "single" and len(symbols) != 1:
        raise ValueError(f"env.symbols: single mode takes one symbol, got {symbols}")
    if features is None:
        sub = frame[frame["symbol"].isin(symbols)].reset_index(drop=True)
        features = compute_env_features(sub, cfg)
        frame = sub
    panel = build_panel(frame, features, symbols, universe=universe, market=cfg.market, tiers=cfg.data.tiers,
                        train_sessions=splits["train"], standardize=env.standardize, clip=env.obs_clip,
                        calendar=cfg.data.calendar)
    return EnvData(panel, splits, symbols)


def make_env(cfg, bars, universe: pd.DataFrame | None = None, split: str = "train", *,
             data: EnvData | None = None, features: pd.DataFrame | None = None, info: str = "full") -> TradingEnv:
    """A ``TradingEnv`` over one split's sessions (train: ``env.train_sampling``, else eval_sampling);
    ``info``: ``full`` or ``train`` step infos (``TradingEnv``)."""
    from .trading_env import TradingEnv

    data = data or prepare(cfg, bars, universe, features)
    sampling = cfg.env.train_sampling if split == "train" else cfg.env.eval_sampling
    return TradingEnv(data.panel, data.session_indices(split), cfg.env, cfg.market,
                      lookback=cfg.features.lookback, sampling=sampling, info=info)


def make_vec_env(cfg, bars, universe: pd.DataFrame | None = None, split: str = "train", *,
                 n_envs: int | None = None, seed: int | None = None, data: EnvData | None = None,
                 features: pd.DataFrame | None = None, info: str = "full"):
    """A ``SessionVecEnv`` of ``n_envs`` (default ``env.n_envs``) episodes stepped together."""
    from .vector import SessionVecEnv

    data = data or prepare(cfg, bars, universe, features)
    sampling = cfg.env.train_sampling if split == "train" else cfg.env.eval_sampling
    return SessionVecEnv(data.panel, data.session_indices(split), n_envs or cfg.env.n_envs, cfg.env,
                         cfg.market, lookback=cfg.features.lookback, sampling=sampling,
                         seed=cfg.seed if seed is None else seed, info=info)


__all__ = ["EnvData", "Episode", "Panel", "SessionVecEnv", "Simulator", "TradingEnv", "build_panel", "make_env",
           "make_vec_env", "pick_symbols", "prepare", "session_splits"]
