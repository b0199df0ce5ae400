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

from ..errors import ConfigError
from ..redact import redact_obj
from .checks import check_bar, check_calendar
from .profiles import PROFILE_NAMES, RISK_PROFILES


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
    n_symbols: int = Field(6, ge=1, le=300, description="symbols, split evenly into liquid/mid/illiquid")
    days: int = Field(60, ge=2, description="exchange sessions to generate")
    bar: str = Field("5min", description="bar length (pandas offset)")
    seed: int = Field(0, description="same seed, same market")
    start: dt.date = Field(dt.date(2025, 1, 2), description="first session on or after this date")
    edge_bps: float = Field(0.0, ge=0, le=100, description="planted edge (positive control): expected mid "
                            "return of a bar, in bps, in the direction of the previous bar's printed return "
                            "(edge_tiers, third bar of a session on); 0: no edge (data/synthetic.py)")
    edge_tiers: list[Literal["liquid", "mid", "illiquid"]] = Field(
        ["liquid"], description="tiers whose symbols carry the planted edge")

    @field_validator("bar")
    @classmethod
    def _bar(cls, v: str) -> str:
        return check_bar(v)


class RepairConfig(Section):
    """Repairs are opt-in and always reported: without them, the same problems are errors."""

    sort: bool = Field(False, description="sort out-of-order rows (reported) instead of failing")
    drop_duplicates: bool = Field(False, description="drop repeated bars, keeping the first (reported)")


class SplitConfig(Section):
    """Which sessions train, validate (early stopping, tuning) and test. Chronological, never shuffled.

    ``fixed``: one split by fractions (or explicit dates). ``walk_forward``: ``folds`` folds over time, each
    ``[train][embargo][val][embargo][test]``; the test blocks are the last ``folds * test_sessions`` sessions,
    consecutive and never overlapping; fold i's validation block ends ``embargo`` sessions before its test
    block, its training window ``embargo`` sessions before that and starts at the first session after the
    ADV warm-up (``expanding``) or ``train_sessions`` earlier (``rolling``). Defaults for the sizes (after
    the warm-up, ``U`` usable sessions): ``test_sessions = floor((U - floor(train_frac * U) - 2 embargo) /
    (folds + 1))``, ``val_sessions = test_sessions``, rolling ``train_sessions`` = fold 0's training length.
    See docs/protocol.md and env/episodes.py ``fold_splits``.
    """

    mode: Literal["fixed", "walk_forward"] = Field(
        "fixed", description="fixed: one train/val/test split; walk_forward: folds over time")
    train_frac: float = Field(0.6, gt=0, lt=1, description="share of sessions for training (the first ones); "
                              "walk_forward: fold 0's share of the usable sessions when sizes are not given")
    val_frac: float = Field(0.2, ge=0, lt=1, description="next share for validation (early stopping, tuning)")
    # Explicit date ranges override the fractions when given (inclusive).
    train_end: dt.date | None = Field(None, description="last training session (overrides train_frac)")
    val_end: dt.date | None = Field(None, description="last validation session (overrides val_frac)")
    folds: int = Field(3, ge=1, description="walk_forward: number of folds (test blocks)")
    window: Literal["expanding", "rolling"] = Field(
        "expanding", description="walk_forward: training window grows from the start, or keeps train_sessions")
    train_sessions: int | None = Field(None, ge=1, description="walk_forward rolling: sessions per training "
                                       "window (None: fold 0's training length)")
    val_sessions: int | None = Field(None, ge=1, description="walk_forward: sessions per validation block "
                                     "(None: test_sessions)")
    test_sessions: int | None = Field(None, ge=1, description="walk_forward: sessions per test block (None: "
                                      "(U - floor(train_frac U) - 2 embargo) // (folds + 1), U = sessions after "
                                      "the ADV warm-up)")
    embargo: int = Field(0, ge=0, description="walk_forward: sessions left out between train and val and "
                         "between val and test")
    fold: int | None = Field(None, ge=0, description="walk_forward: the fold a run trains and evaluates on "
                             "(None: the last)")

    @model_validator(mode="after")
    def _fractions(self) -> "SplitConfig":
        if self.train_frac + self.val_frac >= 1:
            raise ValueError("train_frac + val_frac must be < 1 (something must be left to test)")
        if self.mode == "walk_forward":
            if self.train_end is not None or self.val_end is not None:
                raise ValueError("train_end/val_end apply to mode 'fixed'; walk_forward sizes blocks in sessions")
            if self.fold is not None and self.fold >= self.folds:
                raise ValueError(f"fold {self.fold} does not exist: folds are 0..{self.folds - 1}")
        return self


class DataConfig(Section):
    source: Literal["synthetic", "path"] = Field("synthetic", description="the embedded synthetic market, or files")
    path: Path | None = Field(None, description="CSV/Parquet file or directory (source: path)")
    timezone: str = Field("America/New_York", description="time zone of naive timestamps in the files")
    calendar: str = Field("XNYS", description="exchange_calendars code for sessions, holidays, half days")
    bar: str | None = Field(None, description="resample to this bar (e.g. '5min'); None keeps the input")
    extended_hours: bool = Field(False, description="keep pre- and post-market bars")
    fill_gaps: bool = Field(True, description="insert missing in-session bars as stale (price carried, volume 0)")
    max_fill_sessions: int = Field(1, ge=0, description="fill at most this many whole missing sessions in a row; "
                                   "a longer hole splits the symbol's history (docs/data.md)")
    regime_window: int = Field(20, ge=2, description="data validate: sessions on each side of a regime-shift check")
    regime_factor: float = Field(5.0, gt=1, description="data validate: warn when daily volume or traded-bar "
                                 "share shifts by more than this factor")
    symbols: list[str] | None = Field(None, description="load only these symbols (None: all)")
    members: Path | None = Field(
        None, description="point-in-time membership spells (CSV/Parquet: ticker or symbol, start, end; inclusive, "
        "empty end = still a member; aliases as `survivorship report --members`): the env refuses orders in a "
        "symbol on sessions outside its spells (env/membership.py); None: every symbol is always a member")
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

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, v: str) -> str:
        return check_calendar(v)

    @field_validator("bar")
    @classmethod
    def _bar(cls, v: str | None) -> str | None:
        return v if v is None else check_bar(v)

    @model_validator(mode="after")
    def _path_needed(self) -> "DataConfig":
        if self.source == "path" and self.path is None:
            raise ValueError("source 'path' needs data.path")
        return self


class CrspConfig(Section):
    """CRSP daily/monthly stock files: filters and delisting-return rules (see docs/crsp.md)."""

    share_codes: list[int] = Field([10, 11], description="SHRCD kept (10, 11: ordinary common shares)")
    exchange_codes: list[int] = Field([1, 2, 3], description="EXCHCD kept (1 NYSE, 2 AMEX, 3 Nasdaq)")
    # Missing DLRET for performance delistings (500, 520-584), after Shumway (1997) and
    # Shumway & Warther (1999): by exchange of listing.
    delisting_fill_nyse_amex: float = Field(-0.30, ge=-1, le=0)
    delisting_fill_nasdaq: float = Field(-0.55, ge=-1, le=0)
    # Two rows for one PERMNO-date: "error" lists them; keep_first/keep_last keep that row in file
    # order (after sorting by PERMNO and date, stable) and report how many were dropped.
    duplicates: Literal["error", "keep_last", "keep_first"] = Field(
        "error", description="duplicate PERMNO-dates: fail (listing them) or keep one, in file order")
    freq: Literal["auto", "daily", "monthly"] = Field(
        "auto", description="auto: monthly when the median gap between a PERMNO's dates is over 20 days")
    # Point-in-time universe (data/universe.py)
    top_n: int | None = Field(None, ge=1, description="keep the N largest by market cap at each rebalance")
    rebalance: Literal["monthly", "daily"] = Field("monthly", description="top-N re-ranking dates")
    max_stale_periods: int = Field(
        10, ge=1, description="a name whose last row is more than this many dates old leaves the universe")


# ----------------------------------------------------------------------------------------- features
class FeaturesConfig(Section):
    """Indicator windows (in bars unless named ``_days``) and the feature store (see docs/features.md)."""

    rsi_window: int = Field(14, ge=2)
    ema_windows: list[int] = Field([10, 20, 50], description="EMA spans in bars (close deviation from each)")
    return_horizons: list[int] = Field([1, 12], description="log-return horizons in bars")
    vol_window: int = Field(12, ge=2)
    liquidity_window: int = Field(12, ge=2, description="bars for dollar volume / Amihud / spread / stale share")
    adv_days: int = Field(20, ge=1)
    price_levels: bool = Field(False, description="also emit raw EMA and VWAP levels (USD), not only deviations")
    lookback: int = Field(5, ge=1, description="bars of features in one observation")
    store_dir: Path = Field(Path("runs/feature_store"), description="feature store root (shared by workers)")

    @field_validator("ema_windows", "return_horizons")
    @classmethod
    def _positive_unique(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("must not be empty")
        if any(w < 1 for w in v):
            raise ValueError("every window must be >= 1")
        if len(set(v)) != len(v):
            raise ValueError("windows must be unique")
        return v


# ------------------------------------------------------------------------------------------- market
class MarketConfig(Section):
    """The one cost and fill model (``intradayjules.market``, see docs/environment.md).

    Orders decided on bar t fill at bar t+1's open. ``realistic``: half-spread + square-root impact
    ``impact_coef * sigma_daily * sqrt(notional / ADV)`` of notional + commission, at most
    ``participation_cap`` of the fill bar's volume, nothing on a zero-volume bar. ``flat``: the original
    system's ``flat_cost_bps`` of notional, always filled in full.
    """

    model: Literal["realistic", "flat"] = Field(
        "realistic", description="realistic: spread + sqrt impact + cap + commission; flat: flat_cost_bps only")
    flat_cost_bps: float = Field(5.0, ge=0, description="flat model: cost in bps of traded notional")
    commission_bps: float = Field(0.5, ge=0, description="bps of traded notional")
    impact_coef: float = Field(1.0, ge=0, description="Y in Y * sigma_daily * sqrt(Q/ADV)")
    participation_cap: float = Field(0.10, gt=0, le=1, description="max share of the fill bar's volume")
    unfilled: Literal["cancel", "carry"] = Field(
        "cancel", description="what happens to the part the cap leaves: dropped, or resubmitted next bar")
    half_spread_source: Literal["universe", "tier", "estimate"] = Field(
        "universe", description="universe table's half_spread_bps when it has one (else tier), tier "
        "table below, or a Roll estimate from previous sessions' bars (tier value when undefined)")
    tier_half_spread_bps: dict[str, float] = Field({"liquid": 0.5, "mid": 5.0, "illiquid": 25.0},
                                                   description="half-spread by tier, bps")
    sigma_window_days: int = Field(20, ge=2, description="previous sessions in the daily-vol estimate")
    default_sigma_daily: float = Field(0.02, gt=0, description="daily vol before 5 daily returns of history")


# ---------------------------------------------------------------------------------------------- env
class EnvConfig(Section):
    """The Gymnasium trading environment (``intradayjules.env``, see docs/environment.md)."""

    mode: Literal["single", "multi"] = "single"
    symbols: list[str] | None = Field(None, description="None: single = first liquid symbol; multi = "
                                      "n_assets symbols taken round-robin across tiers")
    n_assets: int = Field(6, ge=1, description="multi mode without explicit symbols")
    initial_cash: float = Field(1_000_000.0, gt=0)
    position_size: float = Field(0.25, gt=0, le=1, description="fraction of equity per position")
    max_gross_exposure: float = Field(1.0, gt=0, description="multi: orders beyond it are refused")
    max_daily_drawdown: float = Field(0.02, gt=0, lt=1)
    reward_scale: float = Field(1.0, gt=0, description="reward = scale * equity change / initial cash")
    episode: Literal["session"] = "session"
    episode_bars: int | None = Field(None, ge=1, description="None: whole session; N: N decisions from a "
                                     "random bar (training) or the open (evaluation), then flattened")
    train_sampling: Literal["random", "sequential"] = "random"
    eval_sampling: Literal["random", "sequential"] = "sequential"
    standardize: bool = Field(True, description="z-score features with training-session mean/std")
    obs_clip: float = Field(10.0, gt=0, description="feature observations are clipped to +-obs_clip")
    n_envs: int = Field(1, ge=1, description="sessions DQN/QR-DQN training collects from at once (docs/training.md)")
    pretrade_limits: bool = Field(False, description="apply the paper loop's pre-trade limits to the env's orders in "
                                  "evaluation and backtests (risk/pretrade_env.py; training envs ignore it)")


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
    """Risk metrics, composite, reward shaping, early stopping and limits (see risk/ and docs).

    ``profile`` fills every field of ``RISK_PROFILES[profile]`` that the configuration does not set
    explicitly; an explicit value always wins. Normalisation scales: a metric equal to its scale
    normalises to 1 (clipped to [0, 1]). Adaptive threshold (``adaptive_threshold: true``): the stop
    threshold used after ``threshold_warmup`` evaluations is
    ``clip(quantile(first threshold_warmup composites, threshold_quantile), threshold_floor, stop_threshold)``.
    """

    profile: Literal[PROFILE_NAMES] = "balanced"  # type: ignore[valid-type]
    weights: RiskWeights = RiskWeights()
    stop_threshold: float = Field(0.75, gt=0, description="composite above this is a violation")
    patience: int = Field(5, ge=1, description="consecutive violating evaluations that stop training")
    early_stop: bool = True
    illiquid_penalty_multiplier: float = Field(3.0, ge=1, description="reward-only cost multiplier, illiquid")
    drawdown_penalty: float = Field(1.0, ge=0, description="reward penalty per unit of drawdown growth")
    ulcer_penalty: float = Field(1.0, ge=0, description="reward penalty per unit of squared drawdown, per step")
    impact_penalty: float = Field(0.5, ge=0, description="extra reward penalty per USD of impact cost")
    illiquid_penalty_basis: Literal["filled", "ordered"] = Field(
        "ordered", description="illiquid penalty on the cost of what filled, or of the whole order "
        "(the unfilled part priced as if it had filled in full; risk/shaping.py)")
    mask_illiquid: bool = False
    ulcer_window: int = Field(78, ge=2, description="steps in the rolling ulcer window (78 = one 5-min day)")
    drawdown_scale: float = Field(0.02, gt=0, description="drawdown (fraction) that normalises to 1")
    ulcer_scale: float = Field(0.01, gt=0, description="ulcer index (fraction) that normalises to 1")
    impact_scale_bps: float = Field(25.0, gt=0, description="impact cost (bps of notional) that normalises to 1")
    adaptive_threshold: bool = False
    threshold_quantile: float = Field(0.9, gt=0, lt=1)
    threshold_warmup: int = Field(3, ge=1, description="evaluations in the adaptive-threshold warm-up")
    threshold_floor: float = Field(0.25, gt=0, description="adaptive threshold never goes below this")
    eval_freq: int = Field(5_000, ge=1)
    eval_episodes: int = Field(5, ge=1)
    daily_drawdown_limit: float = Field(0.02, gt=0)
    hourly_turnover_limit: float = Field(5.0, gt=0)
    daily_turnover_limit: float = Field(20.0, gt=0)

    @model_validator(mode="after")
    def _apply_profile(self) -> "RiskConfig":
        for key, value in RISK_PROFILES[self.profile].items():
            if key in self.model_fields_set:
                continue
            if key == "weights":
                d, u, i, s, liq = value
                value = RiskWeights(drawdown=d, ulcer=u, impact=i, staleness=s, liquidity=liq)
            self.__dict__[key] = value  # not via setattr: keeps the field "not explicitly set"
        if self.threshold_floor > self.stop_threshold:
            raise ValueError("threshold_floor must be <= stop_threshold")
        return self


# -------------------------------------------------------------------------------------------- agent
ALGOS = ("dqn", "qrdqn", "ppo", "a2c")
RISK_MEASURES = ("mean", "cvar", "mean_std")


class QRDQNConfig(Section):
    """QR-DQN (sb3-contrib): a distribution of returns per action, as ``n_quantiles`` equally weighted
    quantiles; the replay, target and exploration settings are the ``agent`` ones shared with DQN.

    Actions are chosen by a risk measure of the predicted quantiles (agents/risk_measures.py): ``mean``
    (risk-neutral, SB3's choice), ``cvar`` (mean of the worst ``cvar_alpha`` share of outcomes) or
    ``mean_std`` (mean - ``risk_lambda`` * standard deviation). Saved with the model and the export."""

    n_quantiles: int = Field(50, ge=2, le=1000, description="quantiles per action (sb3-contrib default 200)")
    risk_measure: Literal[RISK_MEASURES] = Field(  # type: ignore[valid-type]
        "mean", description="action selection: mean, cvar (lower tail) or mean_std (mean - lambda * sd)")
    cvar_alpha: float = Field(0.25, gt=0, le=1, description="cvar: share of the worst outcomes averaged (1 = mean)")
    risk_lambda: float = Field(0.5, ge=0, description="mean_std: penalty per unit of return standard deviation")


class PPOConfig(Section):
    """PPO (SB3; defaults are SB3's). One training env, so a rollout is ``n_steps`` environment steps."""

    learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate")
    n_steps: int = Field(2048, ge=2, description="environment steps per rollout (between updates)")
    batch_size: int = Field(64, ge=2, description="minibatch size of the update")
    n_epochs: int = Field(10, ge=1, description="passes over each rollout")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda (bias-variance of the advantage)")
    clip_range: float = Field(0.2, gt=0, lt=1, description="policy ratio clip")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    max_grad_norm: float = Field(0.5, gt=0, description="gradient clipping norm")
    normalize_advantage: bool = Field(True, description="standardise advantages per minibatch")
    target_kl: float | None = Field(None, gt=0, description="stop an update's epochs early above this KL (None: never)")

    @model_validator(mode="after")
    def _batch_fits(self) -> "PPOConfig":
        if self.batch_size > self.n_steps:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= n_steps ({self.n_steps}): "
                             "a minibatch is drawn from one rollout")
        return self


class A2CConfig(Section):
    """A2C (SB3; defaults are SB3's): an update every ``n_steps`` environment steps, RMSprop."""

    learning_rate: float = Field(7e-4, gt=0, description="learning rate")
    n_steps: int = Field(5, ge=2, description="environment steps per update")
    gae_lambda: float = Field(1.0, ge=0, le=1, description="GAE lambda (1: plain n-step returns)")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    max_grad_norm: float = Field(0.5, gt=0, description="gradient clipping norm")
    use_rms_prop: bool = Field(True, description="RMSprop (True) or Adam")
    normalize_advantage: bool = Field(False, description="standardise advantages per update")


class AgentConfig(Section):
    """The learning algorithm. Steps are environment steps (bars).

    ``algo`` picks one of Stable-Baselines3's DQN, PPO, A2C or sb3-contrib's QR-DQN (agents/algos.py).
    ``learning_rate`` through ``exploration_fraction`` configure the value-based pair (DQN and QR-DQN; the
    defaults are the original system's DQN); ``agent.qrdqn``, ``agent.ppo`` and ``agent.a2c`` hold what is
    specific to each. ``gamma``, ``net_arch``, the budget, device, checkpoints and seed apply to every
    algorithm. A config may carry every section (``experiment agents`` trains each algorithm from one)."""

    algo: Literal[ALGOS] = Field("dqn", description="dqn, qrdqn (sb3-contrib), ppo or a2c")  # type: ignore[valid-type]
    total_timesteps: int = Field(100_000, ge=1, description="environment steps of a training run")
    learning_rate: float = Field(1e-4, gt=0, description="DQN/QR-DQN: Adam learning rate")
    gamma: float = Field(0.99, gt=0, le=1, description="discount per step (every algorithm)")
    buffer_size: int = Field(100_000, ge=1, description="DQN/QR-DQN: replay buffer transitions")
    learning_starts: int = Field(10_000, ge=0, description="DQN/QR-DQN: steps of random play before learning")
    batch_size: int = Field(64, ge=1, description="DQN/QR-DQN: transitions per gradient step")
    target_update_interval: int = Field(1_000, ge=1, description="DQN/QR-DQN: steps between target-network syncs")
    train_freq: int = Field(4, ge=1, description="DQN/QR-DQN: steps between gradient steps")
    exploration_initial_eps: float = Field(1.0, ge=0, le=1, description="DQN/QR-DQN: epsilon at the start")
    exploration_final_eps: float = Field(0.05, ge=0, le=1, description="DQN/QR-DQN: epsilon after the decay")
    exploration_fraction: float = Field(0.1, gt=0, le=1,
                                        description="DQN/QR-DQN: share of training over which epsilon decays")
    net_arch: list[int] = Field([64, 64], description="hidden layer sizes (Q/quantile network; PPO/A2C: "
                                "the policy and the value network each)")
    qrdqn: QRDQNConfig = QRDQNConfig()
    ppo: PPOConfig = PPOConfig()
    a2c: A2CConfig = A2CConfig()
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:N")
    torch_threads: int = Field(1, ge=1, description="torch CPU threads (1 is fastest for small MLPs)")
    checkpoint_freq: int = Field(20_000, ge=1, description="steps between checkpoints (DQN/QR-DQN: with the "
                                 "replay buffer; PPO/A2C: at the next rollout boundary)")
    seed: int = Field(0, description="seed for torch, numpy, the env and the action space")
    n_seeds: int = Field(1, ge=1, description="seeds trained per arm in every comparison a run or experiment "
                         "prints (seed, seed + 1, ...); results are per seed, mean +- sd, and a paired CI")
    seed_workers: int = Field(0, ge=0, description="processes that train those seeds at once, and the "
                              "main job's retraining and baseline (forked; 0 = the local cores, 1 = one after "
                              "another); the results do not depend on it")

    @field_validator("net_arch")
    @classmethod
    def _layers(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError("every hidden layer needs >= 1 unit")
        return v


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
    backend: Literal["optuna", "ray"] = Field("optuna", description="optuna: worker processes; ray: Ray Tune")
    n_trials: int = Field(16, ge=1)
    workers: int = Field(0, ge=0, description="0 = all local cores")
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="Optuna pruner")
    pruner_startup_trials: int = Field(4, ge=0, description="median pruner: trials that finish before any is pruned")
    pruner_warmup_steps: int = Field(2, ge=0, description="median pruner: reports of a trial before it can be pruned")
    sampler: Literal["tpe", "random", "cmaes", "qmc"] = Field(
        "tpe", description="Optuna sampler (both backends): tpe | random | cmaes | qmc (scrambled Sobol)")
    sampler_seed: int = Field(42, description="TPE seed; each trial samples with a seed made from it and its number")
    storage: str | None = Field(None, description="Optuna storage: RDB URL or journal file (None: runs/tune/<study>/"
                                                  "journal.log); its password is redacted in all output")
    study_name: str | None = Field(None, description="None: the config name")
    n_seeds: int = Field(1, ge=1, description="seeds a trial trains (its objective is their mean)")
    objective_folds: int = Field(1, ge=1, description="walk_forward: a trial's objective is the mean over this "
                                 "many folds' validation blocks, ending with the fold being tuned (each fold "
                                 "trained on its own window); never a fold's test block")
    trial_timesteps: int = Field(20_000, ge=1)
    scheduler: Literal["asha", "pbt", "fifo"] = Field("asha", description="Ray Tune scheduler")
    asha_grace_period: int = Field(10, ge=1)
    asha_reduction_factor: int = Field(2, ge=2)
    pbt_perturbation_interval: int = Field(20, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    max_failures: int = Field(0, ge=-1)
    address: str | None = Field(None, description="Ray: None = local, auto, or HOST:PORT of a cluster head")
    search_space: dict[str, ParamSpec] | None = Field(
        None, description="dotted config path -> ParamSpec; None = the default space of agent.algo + risk"
    )
    search_risk_weights: bool = Field(True, description="sample risk.weights on the simplex")
    risk_weight_components: list[str] = Field(
        ["drawdown", "ulcer", "impact", "staleness"],
        description="risk.weights fields sampled on the simplex; the others are set to 0",
    )
    trial_fn: str = Field(
        "intradayjules.pipeline.trial:dqn_trial",
        description="'package.module:function' or '/abs/path/file.py:function'",
    )
    direction: Literal["maximize", "minimize"] = Field("maximize", description="of the trial objective")
    callbacks: list[str] = Field(
        [], description="'module:factory' paths; factory(cfg) -> object with on_trial_start/on_report/on_trial_end"
    )
    checkpoint_num_to_keep: int = Field(4, ge=4, description="Ray checkpoints kept per trial (PBT needs >= 4)")
    reports_per_trial: int = Field(
        20, ge=1, description="evaluations a trial reports; ASHA's grace period and PBT's interval count these"
    )
    data_path: Path | None = Field(None, description="bars the trials train on (None: the data section)")

    @field_validator("risk_weight_components")
    @classmethod
    def _components(cls, v: list[str]) -> list[str]:
        known = set(RiskWeights.model_fields)
        bad = [c for c in v if c not in known]
        if bad:
            raise ValueError(f"unknown risk weight(s) {bad}; known: {sorted(known)}")
        if len(set(v)) != len(v) or len(v) < 2:
            raise ValueError("need at least 2 distinct components")
        return v


# ----------------------------------------------------------------------------------------- tracking
class TrackingConfig(Section):
    """MLflow tracking and registry (docs/tracking.md). URI precedence: ``uri`` > $MLFLOW_TRACKING_URI >
    ``sqlite:///<abs workdir>/mlflow.db`` with artifacts in ``<abs workdir>/mlartifacts``."""

    enabled: bool = Field(True, description="MLflow tracking on (--no-track turns it off)")
    uri: str | None = Field(None, description="None: sqlite under the work dir (or MLFLOW_TRACKING_URI)")
    experiment: str = Field("intradayjules", description="MLflow experiment name")
    registered_model: str = Field("intradayjules-dqn", description="registry name for champion models")
    alias: str = Field("champion", min_length=1, description="alias given to a newly registered best model")
    promotion: Literal["gated", "always"] = Field(
        "gated", description="gated: a new version takes the alias only when the lower bound of the CI of its "
                             "mean daily net P&L minus the current champion's (same test sessions) is > 0, "
                             "else it gets alias 'challenger' (docs/security.md); always: every new version")
    promotion_level: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level of that interval")
    connect_timeout_s: float = Field(5.0, gt=0, description="seconds to wait for a server's /health")
    heartbeat_timeout_s: float | None = Field(
        None, gt=0, description="a RUNNING trial whose heartbeat is older is reaped on resume; None: pid check only")


# ------------------------------------------------------------------------------------------ the whole
class ExperimentConfig(Section):
    name: str = Field("quickstart", description="run name: runs/<name>/, MLflow run name")
    seed: int = Field(0, description="experiment seed (env session sampling, vectorised envs)")
    workdir: Path = Field(Path("runs"), description="where run directories, the feature store and mlflow.db go")
    data: DataConfig = DataConfig()
    crsp: CrspConfig = CrspConfig()
    features: FeaturesConfig = FeaturesConfig()
    market: MarketConfig = MarketConfig()
    env: EnvConfig = EnvConfig()
    risk: RiskConfig = RiskConfig()
    agent: AgentConfig = AgentConfig()
    tune: TuneConfig = TuneConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _objective_folds(self) -> "ExperimentConfig":
        sp = self.data.splits
        if self.tune.objective_folds > 1 and sp.mode != "walk_forward":
            raise ValueError("tune.objective_folds > 1 needs data.splits.mode: walk_forward (a fixed split has "
                             "one validation block)")
        return self

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


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved configuration (defaults filled in) as YAML."""
    return str(yaml.safe_dump(redact_obj(cfg.model_dump(mode="json")), sort_keys=False))  # no passwords (redact.py)
