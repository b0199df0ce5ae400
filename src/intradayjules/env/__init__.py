"""The Gymnasium trading environment: single- and multi-asset, vectorised for SB3.

``make_env(cfg, bars, universe, split)`` -> ``TradingEnv``; ``make_vec_env(...)`` -> ``SessionVecEnv``.
``prepare(cfg, bars, universe)`` does the pandas work once (features, alignment, tiers, splits) and can
be passed to both as ``data=`` to build train and evaluation envs from the same arrays.
See docs/environment.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..data.universe import read_membership
from ..features.pipeline import compute_features
from ..features.scaler import Scaler
from .episodes import Episode, Panel, build_panel, fold_splits, pick_symbols, session_splits
from .guard import HeldOutAccessError, check_access, in_tuning_phase, tuning_phase
from .membership import Membership
from .simulator import Simulator
from .trading_env import TradingEnv
from .vector import SessionVecEnv

SPLITS = ("train", "val", "test")


@dataclass
class EnvData:
    """Env arrays and the sessions of each split. ``folds`` holds every fold's splits (one in ``fixed``
    mode, ``data.splits.folds`` in ``walk_forward``); ``splits`` are fold ``fold``'s. ``features``: the
    raw feature table the panel was built from (to fit another fold's scaler)."""

    panel: Panel
    splits: dict[str, np.ndarray]  # session dates per split
    symbols: list[str]
    folds: list[dict[str, np.ndarray]] | None = None
    fold: int = 0
    features: pd.DataFrame | None = field(default=None, repr=False)
    membership: Membership | None = None  # data.members: the point-in-time universe as an action mask

    @property
    def scaler(self) -> Scaler | None:
        """The feature standardisation the env applies (fitted on the training sessions)."""
        return self.panel.scaler

    @property
    def n_folds(self) -> int:
        return len(self.folds) if self.folds else 1

    def session_indices(self, split: str) -> np.ndarray:
        """Panel indices of ``split``'s sessions; inside ``guard.tuning_phase`` a test block raises."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        check_access(split, self.splits[split])
        return self.panel.session_index(self.splits[split])

    def for_fold(self, i: int, scaler: Scaler | None = None) -> "EnvData":
        """The same arrays with fold ``i``'s splits, features standardised on fold ``i``'s training sessions
        (``scaler`` when given, e.g. the feature store's, else fitted on ``features``)."""
        folds = self.folds or [self.splits]
        if not 0 <= i < len(folds):
            raise ValueError(f"fold {i} does not exist: folds are 0..{len(folds) - 1}")
        if i == self.fold and (scaler is None or scaler is self.scaler):
            return self
        splits = folds[i]
        panel = self.panel
        if panel.raw_feat is not None:
            if scaler is None:
                if self.features is None:
                    raise ValueError("for_fold needs a scaler or the feature table to fit one on")
                scaler = Scaler.fit(self.features, splits["train"], by_symbol=True)
            want = [str(np.datetime_as_string(d, unit="D")) for d in splits["train"]]
            if list(scaler.sessions) != want:
                raise ValueError(f"fold {i}: the scaler was fitted on {len(scaler.sessions)} sessions "
                                 f"({_span(scaler.sessions)}), the fold trains on {len(want)} ({_span(want)}): "
                                 "standardisation must use the fold's own training sessions")
            panel = panel.restandardized(scaler)
        return replace(self, panel=panel, splits=splits, fold=i)


def _span(days: list[str]) -> str:
    return f"{days[0]} .. {days[-1]}" if days else "none"


def _frame(bars) -> pd.DataFrame:
    return bars.frame if hasattr(bars, "frame") else bars


def prepare(cfg, bars, universe: pd.DataFrame | None = None, features: pd.DataFrame | None = None,
            scaler: Scaler | None = None) -> EnvData:
    """Choose symbols, compute features (unless given: same rows as ``bars``), split sessions, align.
    ``scaler``: the standardisation fitted on the training sessions (e.g. the feature store's); fitted
    here when not given. Symbols left to choose are picked as of the end of the first fold's training
    window, so every fold trades the same names with no look-ahead."""
    frame = _frame(bars)
    folds = fold_splits(frame["session"].unique(), cfg.data.splits, warmup=cfg.data.tiers.adv_window_days)
    fold = len(folds) - 1 if cfg.data.splits.fold is None else cfg.data.splits.fold
    splits = folds[fold]
    if len(splits["train"]) == 0:
        raise ValueError(f"no training sessions after the {cfg.data.tiers.adv_window_days}-session ADV "
                         "warm-up: use more data or change data.splits / data.tiers.adv_window_days")
    env = cfg.env
    if env.symbols:
        symbols = list(env.symbols)
    else:
        as_of = pd.Timestamp(folds[0]["train"][-1]) + pd.Timedelta(days=1)
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
    return EnvData(panel, splits, symbols, folds, fold, features, membership_of(cfg, panel))


def membership_of(cfg, panel: Panel) -> Membership | None:
    """``data.members`` (spells, ``data.universe.read_membership``) on the panel's sessions and symbols, by
    ticker; None when not set."""
    if cfg.data.members is None:
        return None
    spells = read_membership(cfg.data.members)
    if spells["ticker"].isna().all():
        raise ValueError(f"data.members: {cfg.data.members} has PERMNOs only; the env needs tickers (the bars' "
                         "symbols)")
    return Membership.from_spells(pd.DataFrame({"symbol": spells["ticker"], "start": spells["start"],
                                                "end": spells["end"]}).dropna(subset=["symbol"]), panel)


def make_env(cfg, bars, universe: pd.DataFrame | None = None, split: str = "train", *,
             data: EnvData | None = None, features: pd.DataFrame | None = None, info: str = "full") -> TradingEnv:
    """A ``TradingEnv`` over one split's sessions (train: ``env.train_sampling``, else eval_sampling);
    ``info``: ``full`` or ``train`` step infos (``TradingEnv``)."""
    data = data or prepare(cfg, bars, universe, features)
    sampling = cfg.env.train_sampling if split == "train" else cfg.env.eval_sampling
    return TradingEnv(data.panel, data.session_indices(split), cfg.env, cfg.market,
                      lookback=cfg.features.lookback, sampling=sampling, info=info, membership=data.membership)


def make_vec_env(cfg, bars, universe: pd.DataFrame | None = None, split: str = "train", *,
                 n_envs: int | None = None, seed: int | None = None, data: EnvData | None = None,
                 features: pd.DataFrame | None = None, info: str = "full"):
    """A ``SessionVecEnv`` of ``n_envs`` (default ``env.n_envs``) episodes stepped together."""
    data = data or prepare(cfg, bars, universe, features)
    sampling = cfg.env.train_sampling if split == "train" else cfg.env.eval_sampling
    return SessionVecEnv(data.panel, data.session_indices(split), n_envs or cfg.env.n_envs, cfg.env,
                         cfg.market, lookback=cfg.features.lookback, sampling=sampling,
                         seed=cfg.seed if seed is None else seed, info=info, membership=data.membership)


__all__ = ["EnvData", "Episode", "HeldOutAccessError", "Membership", "Panel", "SPLITS", "SessionVecEnv", "Simulator", "TradingEnv",
           "build_panel", "fold_splits", "in_tuning_phase", "make_env", "make_vec_env", "pick_symbols", "prepare",
           "session_splits", "tuning_phase"]
