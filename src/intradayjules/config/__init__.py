"""Configuration: one validated schema (``schema``), the risk profiles table (``profiles``), the shipped
presets (``presets``), the one dotted-override helper (``overrides``) and YAML loading (``loader``).

``from intradayjules.config import ExperimentConfig, load_config, apply_overrides`` is the public API.
"""

from __future__ import annotations

from .loader import load_config
from .overrides import apply_overrides, parse_set_options, set_dotted, with_risk_profile
from .presets import DEFAULT_PRESET, preset_names, preset_path, resolve_config_ref
from .profiles import PROFILE_NAMES, RISK_PROFILES
from .schema import (ALGOS, RISK_MEASURES, A2CConfig, AgentConfig, CrspConfig, DataConfig, EnvConfig,
                     ExperimentConfig, FeaturesConfig, MarketConfig, ParamSpec, PPOConfig, QRDQNConfig, RepairConfig,
                     RiskConfig, RiskWeights, Section, SplitConfig, SyntheticConfig, TierConfig, TrackingConfig,
                     TuneConfig, config_from_dict, dump_config, format_validation_error)

__all__ = ["A2CConfig", "ALGOS", "AgentConfig", "CrspConfig", "DEFAULT_PRESET", "DataConfig", "EnvConfig",
           "ExperimentConfig", "FeaturesConfig", "MarketConfig", "PPOConfig", "PROFILE_NAMES", "ParamSpec",
           "QRDQNConfig", "RISK_MEASURES", "RISK_PROFILES", "RepairConfig", "RiskConfig", "RiskWeights", "Section",
           "SplitConfig", "SyntheticConfig", "TierConfig", "TrackingConfig", "TuneConfig", "apply_overrides",
           "config_from_dict", "dump_config", "format_validation_error", "load_config", "parse_set_options",
           "preset_names", "preset_path", "resolve_config_ref", "set_dotted", "with_risk_profile"]
