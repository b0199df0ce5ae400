"""The Gymnasium trading environment: single- and multi-asset, vectorised for SB3.

``make_env(cfg, bars, universe, split)`` -> ``TradingEnv``; ``make_vec_env(...)`` -> ``SessionVecEnv``.
``prepare(cfg, bars, universe)`` does the pandas work once (features, alignment, tiers, splits) and can
be passed to both as ``data=`` to build train and evaluation envs from the same arrays.
See docs/environment.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..features.pipeline import compute_features
from ..features.scaler import Scaler
from .episodes import Episode, Panel, build_panel, pick_symbols, session_splits
from .simulator import Simulator
from .trading_env import TradingEnv
from .vector import SessionVecEnv

SPLITS = ("train", "val", "test")


@dataclass
class EnvData:
    panel: Panel
    splits: dict[str, np.ndarray]  # session dates per split
    symbols: list[str]

    @property
    def scaler(self) -> Scaler | None:
        """The feature standardisation the env applies (fitted on the training sessions)."""
        return self.panel.scaler

    def session_indices(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.panel.session_index(self.splits[split])


def _frame(bars) -> pd.DataFrame:
    return bars.frame if hasattr(bars, "frame") else bars


def prepare(cfg, bars, universe: pd.DataFrame | None = None, features: pd.DataFrame | None = None,
            scaler: Scaler | None = None) -> EnvData:
    """Choose symbols, compute features (unless given: same rows as ``bars``), split sessions, align.
    ``scaler``: the standardisation fitted on the training sessions (e.g. the feature store's); fitted
    here when not given."""
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
        available = frame["symbol"].nunique()
        n = 1 if env.mode == "single" else min(env.n_assets, available)
        if env.mode == "multi" and available < env.n_assets:
            warnings.warn(f"env.n_assets is {env.n_assets} but the data has {available} symbol(s): trading "
                          f"{available} (set env.n_assets or env.symbols to silence this)", stacklevel=2)
        symbols = pick_symbols(frame, n, universe, cfg.data.tiers, as_of)
    if env.mode == "single" and len(symbols) != 1:
        raise ValueError(f"env.symbols: env.mode single takes one symbol, got {symbols} (use env.mode: multi "
                         "for several)")
    missing = sorted(set(symbols) - set(frame["symbol"].unique()))
    if missing:
        raise ValueError(f"env.symbols: {missing} not in the data (it has {sorted(frame['symbol'].unique())})")
    if features is None:
        sub = frame[frame["symbol"].isin(symbols)].reset_index(drop=True)
        features = compute_features(sub, cfg.features, calendar=cfg.data.calendar)
        frame = sub
    panel = build_panel(frame, features, symbols, universe=universe, market=cfg.market, tiers=cfg.data.tiers,
                        train_sessions=splits["train"], standardize=env.standardize, clip=env.obs_clip,
                        calendar=cfg.data.calendar, scaler=scaler)
    return EnvData(panel, splits, symbols)


def make_env(cfg, bars, universe: pd.DataFrame | None = None, split: str = "train", *,
             data: EnvData | None = None, features: pd.DataFrame | None = None, info: str = "full") -> TradingEnv:
    """A ``TradingEnv`` over one split's sessions (train: ``env.train_sampling``, else eval_sampling);
    ``info``: ``full`` or ``train`` step infos (``TradingEnv``)."""
    data = data or prepare(cfg, bars, universe, features)
    sampling = cfg.env.train_sampling if split == "train" else cfg.env.eval_sampling
    return TradingEnv(data.panel, data.session_indices(split), cfg.env, cfg.market,
                      lookback=cfg.features.lookback, sampling=sampling, info=info)


def make_vec_env(cfg, bars, universe: pd.DataFrame | None = None, split: str = "train", *,
                 n_envs: int | None = None, seed: int | None = None, data: EnvData | None = None,
                 features: pd.DataFrame | None = None, info: str = "full"):
    """A ``SessionVecEnv`` of ``n_envs`` (default ``env.n_envs``) episodes stepped together."""
    data = data or prepare(cfg, bars, universe, features)
    sampling = cfg.env.train_sampling if split == "train" else cfg.env.eval_sampling
    return SessionVecEnv(data.panel, data.session_indices(split), n_envs or cfg.env.n_envs, cfg.env,
                         cfg.market, lookback=cfg.features.lookback, sampling=sampling,
                         seed=cfg.seed if seed is None else seed, info=info)


__all__ = ["EnvData", "Episode", "Panel", "SPLITS", "SessionVecEnv", "Simulator", "TradingEnv", "build_panel",
           "make_env", "make_vec_env", "pick_symbols", "prepare", "session_splits"]
