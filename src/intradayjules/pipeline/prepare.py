"""Everything a run needs before the agent starts: bars, features (from the shared store), the scaler,
env arrays.

``prepare(cfg, data_path)`` is called by every run (``train``, ``evaluate``, tuning trials, the main job,
experiments), so they all see the same bars, the same features, the same standardisation and the same
symbols; the bars are loaded once per call. It records the lineage a registry needs: the data
fingerprint and the feature-store key.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from .. import __version__
from ..config import ExperimentConfig, apply_overrides
from ..data import Bars, load_data
from ..data.fingerprint import experiment_fingerprint
from ..env import EnvData, prepare as env_prepare, session_splits
from ..features.pipeline import compute_features, feature_spec
from ..features.scaler import Scaler
from ..features.store import FeatureStore
from ..rundir import check_name


@dataclass
class Prepared:
    cfg: ExperimentConfig
    bars: Bars
    universe: pd.DataFrame | None
    env_data: EnvData
    data_fingerprint: str
    feature_key: str | None
    feature_hit: bool | None
    data_path: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def scaler(self) -> Scaler | None:
        return self.env_data.scaler

    def for_fold(self, i: int) -> "Prepared":
        """The same data with walk-forward fold ``i``'s splits (``data.splits.fold = i`` in ``cfg``) and a
        scaler fitted on that fold's training sessions (from the feature store when the data came from it)."""
        if i == self.env_data.fold:
            return self
        cfg = self.cfg.model_copy(update={"data": self.cfg.data.model_copy(
            update={"splits": self.cfg.data.splits.model_copy(update={"fold": i})})})
        scaler = None
        if self.scaler is not None and self.feature_key is not None:
            train = (self.env_data.folds or [self.env_data.splits])[i]["train"]
            store = FeatureStore(resolve_path(cfg, cfg.features.store_dir))
            scaler = store.scaler(self.feature_key, train, frame=self.env_data.features, by_symbol=True)
        return replace(self, cfg=cfg, env_data=self.env_data.for_fold(i, scaler))

    def lineage(self) -> dict[str, str]:
        spec = json.dumps(feature_spec(self.cfg.features, self.cfg.data.calendar), sort_keys=True, default=str)
        return {"data_fingerprint": self.data_fingerprint, "feature_key": self.feature_key or "",
                "feature_version": hashlib.blake2b(spec.encode(), digest_size=8).hexdigest(),
                "package_version": __version__,
                "data_source": self.data_path or "synthetic", "symbols": ",".join(self.env_data.symbols)}


def resolve_path(cfg: ExperimentConfig, p: Path) -> Path:
    """Relative paths in the config are relative to the current directory; made absolute here."""
    return p if p.is_absolute() else (Path.cwd() / p).resolve()


def run_dir(cfg: ExperimentConfig, name: str | None = None) -> Path:
    d = resolve_path(cfg, cfg.workdir) / check_name(name or cfg.name, "run name (--name)")
    d.mkdir(parents=True, exist_ok=True)
    return d


def with_data_path(cfg: ExperimentConfig, data_path: str | Path | None) -> ExperimentConfig:
    """``cfg`` recording the data a run really uses: with ``--data PATH`` its data section becomes
    ``source: path, path: <absolute PATH>``, so the run's config.yaml, report and MLflow params name the
    bars it trained on and rerunning the recorded config trains on the same data."""
    if data_path is None:
        return cfg
    return apply_overrides(cfg, {"data.source": "path", "data.path": str(Path(data_path).resolve())})


def prepare(cfg: ExperimentConfig, data_path: str | Path | None = None, *, use_store: bool = True) -> Prepared:
    """Load (or synthesise) and validate bars, get features and their training-session scaler from the
    store, build the env arrays. ``Prepared.cfg`` records ``data_path`` (:func:`with_data_path`)."""
    cfg = with_data_path(cfg, data_path)
    timings = {}
    t0 = time.perf_counter()
    bars, universe = load_data(cfg, data_path)
    timings["data_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fingerprint = experiment_fingerprint(cfg, data_path)
    train = session_splits(bars.frame["session"].unique(), cfg.data.splits,
                           warmup=cfg.data.tiers.adv_window_days)["train"]
    key = hit = None
    if use_store:
        store = FeatureStore(resolve_path(cfg, cfg.features.store_dir))
        features, key, hit = store.get_or_build(bars, fingerprint, cfg.features, calendar=cfg.data.calendar)
        features = features.reset_index(drop=True)
        scaler = store.scaler(key, train, frame=features, by_symbol=True) if cfg.env.standardize and len(train) else None
    else:
        features = compute_features(bars.frame, cfg.features, calendar=cfg.data.calendar)
        scaler = Scaler.fit(features, train, by_symbol=True) if cfg.env.standardize and len(train) else None
    timings["features_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    env_data = env_prepare(cfg, bars, universe, features=features, scaler=scaler)
    timings["env_s"] = time.perf_counter() - t0
    return Prepared(cfg, bars, universe, env_data, fingerprint, key, hit,
                    str(data_path) if data_path is not None else (str(cfg.data.path) if cfg.data.path else None),
                    timings)
