"""One validated experiment schema, loaded from YAML.

Every section forbids unknown keys, so a typo is an error that names its field path
(``env.cost_bps: extra inputs are not permitted``) instead of a silently ignored setting.
Defaults are the original IntradayJules settings (see docs/configuration.md).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------------------------- data
class TierConfig(Section):
    """Liquidity tiers from trailing average daily dollar volume (ADV), known before the date."""

    adv_window_days: int = Field(20, ge=1, description="sessions in the trailing ADV window")
    min_history_days: int = Field(1, ge=1, description="sessions of history needed for an ADV")
    liquid_min_adv: float = Field(2.5e8, gt=0, description="USD/day; ADV at or above is 'liquid'")
    illiquid_max_adv: float = Field(2.0e7, gt=0, description="USD/day; ADV below is 'illiquid'")

    @model_validator(mode="after")
    def _ordered(self) -> "TierConfig":
        if self.illiquid_max_adv > self.liquid_min_adv:
            raise ValueError("illiquid_max_adv must be <= liquid_min_adv")
        return self


class SyntheticConfig(Section):
    n_symbols: int = Field(6, ge=1, le=300)
    days: int = Field(60, ge=2)
    bar: str = "5min"
    seed: int = 0
    start: dt.date = dt.date(2025, 1, 2)


class RepairConfig(Section):
    """Repairs are opt-in and always reported: without them, the same problems are errors."""

    sort: bool = False
    drop_duplicates: bool = False


class SplitConfig(Section):
    """Which sessions train, validate (early stopping, tuning) and test. Chronological, never shuffled."""

    train_frac: float = Field(0.6, gt=0, lt=1)
    val_frac: float = Field(0.2, ge=0, lt=1)
    # Explicit date ranges override the fractions when given (inclusive).
    train_end: dt.date | None = None
    val_end: dt.date | None = None

    @model_validator(mode="after")
    def _fractions(self) -> "SplitConfig":
        if self.train_frac + self.val_frac >= 1:
            raise ValueError("train_frac + val_frac must be < 1 (something must be left to test)")
        return self


class DataConfig(Section):
    source: Literal["synthetic", "path"] = "synthetic"
    path: Path | None = None
    timezone: str = "America/New_York"
    calendar: str = "XNYS"
    bar: str | None = Field(None, description="resample to this bar (e.g. '5min'); None keeps the input")
    extended_hours: bool = False
    fill_gaps: bool = True
    symbols: list[str] | None = None
    repair: RepairConfig = RepairConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    tiers: TierConfig = TierConfig()
    splits: SplitConfig = SplitConfig()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v

    @model_validator(mode="after")
    def _path_needed(self) -> "DataConfig":
        if self.source == "path" and self.path is None:
            raise ValueError("source 'path' needs data.path")
        return self


class CrspConfig(Section):
    """CRSP daily/monthly stock files: filters and delisting-return rules (see docs/crsp.md)."""

    share_codes: list[int] = [10, 11]
    exchange_codes: list[int] = [1, 2, 3]
    # Missing DLRET for performance delistings (500, 520-584), after Shumway (1997) and
    # Shumway & Warther (1999): by exchange of listing.
    delisting_fill_nyse_amex: float = Field(-0.30, ge=-1, le=0)
    delisting_fill_nasdaq: float = Field(-0.55, ge=-1, le=0)
    duplicates: Literal["error", "keep_last", "keep_first"] = "error"


# ----------------------------------------------------------------------------------------- features
class FeaturesConfig(Section):
    rsi_window: int = Field(14, ge=2)
    ema_windows: list[int] = [10, 20, 50]
    return_horizons: list[int] = [1, 12]
    vol_window: int = Field(12, ge=2)
    liquidity_window: int = Field(12, ge=2, description="bars for Amihud / spread / stale share")
    adv_days: int = Field(20, ge=1)
    lookback: int = Field(5, ge=1, description="bars of features in one observation")
    store_dir: Path = Path("runs/feature_store")


# ------------------------------------------------------------------------------------------- market
class MarketConfig(Section):
    model: Literal["realistic", "flat"] = "realistic"
    flat_cost_bps: float = Field(5.0, ge=0, description="flat model: cost in bps of traded notional")
    commission_bps: float = Field(0.5, ge=0)
    impact_coef: float = Field(1.0, ge=0, description="Y in Y * sigma_daily * sqrt(Q/ADV)")
    participation_cap: float = Field(0.10, gt=0, le=1)
    unfilled: Literal["cancel", "carry"] = "cancel"
    half_spread_source: Literal["universe", "estimate"] = "universe"
    tier_half_spread_bps: dict[str, float] = {"liquid": 0.5, "mid": 5.0, "illiquid": 25.0}


# ---------------------------------------------------------------------------------------------- env
class EnvConfig(Section):
    mode: Literal["single", "multi"] = "single"
    symbols: list[str] | None = None
    initial_cash: float = Field(1_000_000.0, gt=0)
    position_size: float = Field(0.25, gt=0, le=1, description="fraction of equity per position")
    max_gross_exposure: float = Field(1.0, gt=0)
    max_daily_drawdown: float = Field(0.02, gt=0, lt=1)
    reward_scale: float = Field(1.0, gt=0, description="reward = scale * equity change / initial cash")
    episode: Literal["session"] = "session"
    n_envs: int = Field(1, ge=1)


# --------------------------------------------------------------------------------------------- risk
class RiskWeights(Section):
    drawdown: float = Field(0.30, ge=0)
    ulcer: float = Field(0.25, ge=0)
    impact: float = Field(0.25, ge=0)
    staleness: float = Field(0.20, ge=0)
    liquidity: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _simplex(self) -> "RiskWeights":
        total = self.drawdown + self.ulcer + self.impact + self.staleness + self.liquidity
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1 (they sum to {total:.6g})")
        return self


class RiskConfig(Section):
    profile: Literal["off", "conservative", "balanced", "aggressive"] = "balanced"
    weights: RiskWeights = RiskWeights()
    stop_threshold: float = Field(0.75, gt=0)
    patience: int = Field(5, ge=1)
    illiquid_penalty_multiplier: float = Field(3.0, ge=1)
    mask_illiquid: bool = False
    ulcer_window: int = Field(78, ge=2)
    eval_freq: int = Field(5_000, ge=1)
    eval_episodes: int = Field(5, ge=1)
    daily_drawdown_limit: float = Field(0.02, gt=0)
    hourly_turnover_limit: float = Field(5.0, gt=0)
    daily_turnover_limit: float = Field(20.0, gt=0)


# -------------------------------------------------------------------------------------------- agent
class AgentConfig(Section):
    algo: Literal["dqn"] = "dqn"
    total_timesteps: int = Field(100_000, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    buffer_size: int = Field(100_000, ge=1)
    learning_starts: int = Field(10_000, ge=0)
    batch_size: int = Field(64, ge=1)
    target_update_interval: int = Field(1_000, ge=1)
    train_freq: int = Field(4, ge=1)
    exploration_initial_eps: float = Field(1.0, ge=0, le=1)
    exploration_final_eps: float = Field(0.05, ge=0, le=1)
    exploration_fraction: float = Field(0.1, gt=0, le=1)
    net_arch: list[int] = [64, 64]
    device: str = "auto"
    torch_threads: int = Field(1, ge=1)
    checkpoint_freq: int = Field(20_000, ge=1)
    seed: int = 0


# --------------------------------------------------------------------------------------------- tune
class ParamSpec(Section):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> "ParamSpec":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty 'choices'")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"{self.type} needs 'low' and 'high'")
            if self.low > self.high:
                raise ValueError("low must be <= high")
            if self.log and self.low <= 0:
                raise ValueError("log scale needs low > 0")
        return self


class TuneConfig(Section):
    backend: Literal["optuna", "ray"] = "optuna"
    n_trials: int = Field(16, ge=1)
    workers: int = Field(0, ge=0, description="0 = all local cores")
    pruner: Literal["median", "hyperband", "none"] = "median"
    sampler_seed: int = 42
    storage: str | None = None
    study_name: str | None = None
    n_seeds: int = Field(1, ge=1)
    trial_timesteps: int = Field(20_000, ge=1)
    scheduler: Literal["asha", "pbt", "fifo"] = "asha"
    asha_grace_period: int = Field(10, ge=1)
    asha_reduction_factor: int = Field(2, ge=2)
    pbt_perturbation_interval: int = Field(20, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    max_failures: int = Field(0, ge=-1)
    address: str | None = None
    search_space: dict[str, ParamSpec] | None = None
    search_risk_weights: bool = True


# ----------------------------------------------------------------------------------------- tracking
class TrackingConfig(Section):
    enabled: bool = True
    uri: str | None = Field(None, description="None: sqlite under the work dir (or MLFLOW_TRACKING_URI)")
    experiment: str = "intradayjules"
    registered_model: str = "intradayjules-dqn"


# ------------------------------------------------------------------------------------------ the whole
class ExperimentConfig(Section):
    name: str = "quickstart"
    seed: int = 0
    workdir: Path = Path("runs")
    data: DataConfig = DataConfig()
    crsp: CrspConfig = CrspConfig()
    features: FeaturesConfig = FeaturesConfig()
    market: MarketConfig = MarketConfig()
    env: EnvConfig = EnvConfig()
    risk: RiskConfig = RiskConfig()
    agent: AgentConfig = AgentConfig()
    tune: TuneConfig = TuneConfig()
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("must be letters, digits, '_', '.', '-' (used as a directory name)")
        return v


def format_validation_error(err: ValidationError) -> list[str]:
    """``field.path: message`` lines, one per problem, the way a person reads them."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        kind = e.get("type", "")
        ctx = e.get("ctx") or {}
        if kind == "greater_than_equal":
            msg = f"must be >= {ctx.get('ge')}"
        elif kind == "greater_than":
            msg = f"must be > {ctx.get('gt')}"
        elif kind == "less_than_equal":
            msg = f"must be <= {ctx.get('le')}"
        elif kind == "less_than":
            msg = f"must be < {ctx.get('lt')}"
        elif kind == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = msg[:1].lower() + msg[1:]
        if "input" in e and kind not in ("extra_forbidden", "missing"):
            msg += f" (got {e['input']!r})"
        lines.append(f"{path}: {msg}")
    return lines


def config_from_dict(data: dict[str, Any] | None, source: str | None = None) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data or {})
    except ValidationError as e:
        raise ConfigError(format_validation_error(e), source) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load and validate a YAML experiment file. ``overrides`` are dotted keys (``agent.seed``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"file not found: {path}"], str(path))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"YAML syntax: {e}"], str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError(["<root>: must be a mapping of sections"], str(path))
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return config_from_dict(raw, str(path))


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved configuration (defaults filled in) as YAML."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
