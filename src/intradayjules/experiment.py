"""Everything a run needs before the agent starts: bars, features (from the shared store), env arrays.

``prepare(cfg, data_path)`` is called by ``train``, ``evaluate``, tuning trials and the main job, so they
all see the same bars, the same features and the same symbols. It records the lineage a registry needs:
the data fingerprint and the feature-store key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import ExperimentConfig
from .rundir import check_name


@dataclass
class Prepared:
    cfg: ExperimentConfig
    bars: object  # data.Bars
    universe: pd.DataFrame | None
    env_data: object  # env.EnvData
    data_fingerprint: str
    feature_key: str | None
    feature_hit: bool | None
    data_path: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def lineage(self) -> dict[str, str]:
        import hashlib
        import json

        from . import __version__
        from .features.pipeline import feature_spec

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


def prepare(cfg: ExperimentConfig, data_path: str | Path | None = None, *, use_store: bool = True) -> Prepared:
    """Load (or synthesise) and validate bars, get features from the store, build the env arrays."""
    from .data import load_data
    from .data.fingerprint import experiment_fingerprint
    from .env import prepare as env_prepare

    timings = {}
    t0 = time.perf_counter()
    bars, universe = load_data(cfg, data_path)
    timings["data_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fingerprint = experiment_fingerprint(cfg, data_path)
    key = hit = None
    if use_store:
        from .features.store import FeatureStore

        store = FeatureStore(resolve_path(cfg, cfg.features.store_dir))
        features, key, hit = store.get_or_build(bars, fingerprint, cfg.features, calendar=cfg.data.calendar)
        features = features.reset_index(drop=True)
    else:
        from .features.pipeline import compute_features

        features = compute_features(bars.frame, cfg.features, calendar=cfg.data.calendar)
    timings["features_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    env_data = env_prepare(cfg, bars, universe, features=features)
    timings["env_s"] = time.perf_counter() - t0
    return Prepared(cfg, bars, universe, env_data, fingerprint, key, hit,
                    str(data_path) if data_path is not None else (str(cfg.data.path) if cfg.data.path else None),
                    timings)
