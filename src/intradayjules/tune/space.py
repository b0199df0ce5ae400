"""The search space: which config fields a trial samples, and how.

Parameters are named by their dotted config path (``agent.learning_rate``, ``agent.ppo.n_steps``). Without
``tune.search_space`` the space is ``DEFAULT_SPACES[agent.algo]`` (one per algorithm of agents/algos.py).
Types: ``float`` (uniform or ``log: true``), ``int`` (uniform or log), ``categorical`` (any YAML values;
lists such as ``net_arch`` choices are encoded as JSON strings for the samplers and decoded back).

Risk weights are sampled on the simplex: one raw parameter ``u_k ~ U(1e-6, 1)`` per component, named
``risk.weights.<k>.raw_u`` (what Optuna, its dashboard and Ray show), ``e_k = -ln u_k`` (an Exp(1)
draw), ``w_k = e_k / sum(e)``. With independent uniform ``u_k`` this is
exactly the flat Dirichlet(1, ..., 1); whatever a sampler does to the ``u_k`` (TPE, PBT mutation) the
weights stay non-negative and sum to 1. Components not listed in ``tune.risk_weight_components`` are 0.

Studies started before the raw parameters had readable names used ``simplex:<k>``: :meth:`suggest` keeps
that name inside a study whose trials already use it (so a resumed TPE keeps its history), and
:meth:`materialize` accepts either name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..config import ExperimentConfig, ParamSpec, RiskWeights, TuneConfig, format_validation_error
from ..errors import ConfigError

SIMPLEX_PREFIX = "simplex:"  # the old raw names (still read: resumed studies, Ray trials restored)
# parameters that change the network's shape: PBT must not perturb them (a donor's weights would not fit)
ARCHITECTURE_PARAMS = ("agent.net_arch", "agent.qrdqn.n_quantiles")
SIMPLEX_LOW = 1e-6


def simplex_name(component: str) -> str:
    """The raw parameter behind risk weight ``component``: ``risk.weights.<component>.raw_u``."""
    return f"risk.weights.{component}.raw_u"


# The default space of each algorithm (``tune.search_space: null``): the hyperparameters the SB3 zoo tunes
# for it, in ranges that fit one-env intraday training, plus the illiquid penalty of the reward shaping.
_NET_ARCH = {"type": "categorical", "choices": [[64, 64], [128, 128], [256, 256], [64, 64, 64]]}
_PENALTY = {"type": "float", "low": 1.0, "high": 6.0}
DEFAULT_SPACE: dict[str, dict[str, Any]] = {  # DQN
    "agent.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    "agent.gamma": {"type": "float", "low": 0.9, "high": 0.9999},
    "agent.buffer_size": {"type": "int", "low": 10_000, "high": 200_000, "log": True},
    "agent.batch_size": {"type": "categorical", "choices": [32, 64, 128, 256]},
    "agent.target_update_interval": {"type": "int", "low": 250, "high": 5_000, "log": True},
    "agent.exploration_fraction": {"type": "float", "low": 0.05, "high": 0.5},
    "agent.net_arch": _NET_ARCH,
    "risk.illiquid_penalty_multiplier": _PENALTY,
}
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "dqn": DEFAULT_SPACE,
    # QR-DQN: DQN's, plus the number of quantiles (the risk measure is a preference, not tuned)
    "qrdqn": {**DEFAULT_SPACE, "agent.qrdqn.n_quantiles": {"type": "categorical", "choices": [25, 50, 100]}},
    "ppo": {
        "agent.ppo.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "agent.gamma": {"type": "float", "low": 0.9, "high": 0.9999},
        "agent.ppo.n_steps": {"type": "categorical", "choices": [256, 512, 1024, 2048]},
        "agent.ppo.batch_size": {"type": "categorical", "choices": [32, 64, 128, 256]},
        "agent.ppo.n_epochs": {"type": "int", "low": 3, "high": 20},
        "agent.ppo.gae_lambda": {"type": "float", "low": 0.8, "high": 1.0},
        "agent.ppo.clip_range": {"type": "categorical", "choices": [0.1, 0.2, 0.3]},
        "agent.ppo.ent_coef": {"type": "float", "low": 1e-6, "high": 0.05, "log": True},
        "agent.net_arch": _NET_ARCH,
        "risk.illiquid_penalty_multiplier": _PENALTY,
    },
    "a2c": {
        "agent.a2c.learning_rate": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
        "agent.gamma": {"type": "float", "low": 0.9, "high": 0.9999},
        "agent.a2c.n_steps": {"type": "categorical", "choices": [5, 8, 16, 32, 64]},
        "agent.a2c.gae_lambda": {"type": "float", "low": 0.8, "high": 1.0},
        "agent.a2c.ent_coef": {"type": "float", "low": 1e-6, "high": 0.05, "log": True},
        "agent.a2c.vf_coef": {"type": "float", "low": 0.2, "high": 1.0},
        "agent.net_arch": _NET_ARCH,
        "risk.illiquid_penalty_multiplier": _PENALTY,
    },
}


def _primitive(x: Any) -> bool:
    return x is None or isinstance(x, (str, int, float, bool))


@dataclass(frozen=True)
class Param:
    name: str
    spec: ParamSpec

    @property
    def encoded_choices(self) -> list[Any]:
        """Choices as samplers see them: primitives unchanged, anything else as a JSON string."""
        ch = self.spec.choices or []
        return list(ch) if all(_primitive(c) for c in ch) else [json.dumps(c) for c in ch]

    def decode(self, raw: Any) -> Any:
        if self.spec.type == "categorical":
            enc = self.encoded_choices
            if raw not in enc:
                raise ConfigError([f"tune.search_space.{self.name}: {raw!r} is not one of {enc}"])
            return self.spec.choices[enc.index(raw)]  # type: ignore[index]
        lo, hi = self.spec.low, self.spec.high  # PBT perturbations may step outside: clip back
        if self.spec.type == "int":
            return int(min(max(round(raw), lo), hi))
        return float(min(max(float(raw), lo), hi))


class SearchSpace:
    """Parameters plus the simplex of risk weights; raw sampler values <-> config values."""

    def __init__(self, params: list[Param], simplex: list[str]):
        self.params = params
        self.simplex = simplex  # risk.weights component names, empty if not searched

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, tune: TuneConfig, algo: str = "dqn") -> "SearchSpace":
        """``tune.search_space``, or the default space of ``algo`` (``agent.algo``) when it is None."""
        if tune.search_space is None and algo not in DEFAULT_SPACES:
            raise ConfigError([f"agent.algo: no default search space for {algo!r}; set tune.search_space"])
        specs = tune.search_space if tune.search_space is not None else {
            k: ParamSpec.model_validate(v) for k, v in DEFAULT_SPACES[algo].items()
        }
        problems = []
        for name in specs:
            msg = _check_path(name)
            if msg:
                problems.append(f"tune.search_space.{name}: {msg}")
            elif tune.search_risk_weights and name.startswith("risk.weights"):
                problems.append(f"tune.search_space.{name}: risk weights are sampled on the simplex "
                                "(tune.search_risk_weights); remove this entry or turn that off")
        if problems:
            raise ConfigError(problems)
        simplex = list(tune.risk_weight_components) if tune.search_risk_weights else []
        return cls([Param(k, v) for k, v in specs.items()], simplex)

    @property
    def raw_names(self) -> list[str]:
        return [p.name for p in self.params] + [simplex_name(c) for c in self.simplex]

    # ------------------------------------------------------------------ sampling
    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample raw values from an Optuna trial (define-by-run); returns ``{raw_name: value}``."""
        raw: dict[str, Any] = {}
        for p in self.params:
            s = p.spec
            if s.type == "float":
                raw[p.name] = trial.suggest_float(p.name, s.low, s.high, log=s.log)
            elif s.type == "int":
                raw[p.name] = trial.suggest_int(p.name, int(s.low), int(s.high), log=s.log)
            else:
                raw[p.name] = trial.suggest_categorical(p.name, p.encoded_choices)
        legacy = bool(self.simplex) and _study_uses_legacy_names(trial, SIMPLEX_PREFIX + self.simplex[0])
        for c in self.simplex:
            name = SIMPLEX_PREFIX + c if legacy else simplex_name(c)
            raw[name] = trial.suggest_float(name, SIMPLEX_LOW, 1.0)
        return raw

    def materialize(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Raw sampler values -> ``{dotted config path: value}`` with weights on the simplex."""
        raw = {**raw, **{simplex_name(c): raw[SIMPLEX_PREFIX + c] for c in self.simplex
                         if simplex_name(c) not in raw and SIMPLEX_PREFIX + c in raw}}
        missing = [n for n in self.raw_names if n not in raw]
        if missing:
            raise ConfigError([f"sampled parameters lack {missing}"])
        params = {p.name: p.decode(raw[p.name]) for p in self.params}
        if self.simplex:
            e = {c: -math.log(min(max(float(raw[simplex_name(c)]), SIMPLEX_LOW), 1.0)) for c in self.simplex}
            total = sum(e.values())
            if total <= 0:  # every u_k == 1: no preference, spread evenly
                e, total = {c: 1.0 for c in self.simplex}, float(len(self.simplex))
            for field in RiskWeights.model_fields:
                params[f"risk.weights.{field}"] = e[field] / total if field in e else 0.0
        return params

    def apply(self, cfg: ExperimentConfig, params: dict[str, Any]) -> ExperimentConfig:
        """A validated copy of ``cfg`` with ``params`` set; errors name the parameter."""
        data = cfg.model_dump(mode="python")
        for key, value in params.items():
            d = data
            parts = key.split(".")
            for part in parts[:-1]:
                d = d[part]
            d[parts[-1]] = value
        if "risk.weights.drawdown" in params:  # renormalise float rounding so the validator's 1e-6 holds
            w = data["risk"]["weights"]
            s = sum(w.values())
            for k in w:
                w[k] = w[k] / s
        try:
            return ExperimentConfig.model_validate(data)
        except ValidationError as e:
            raise ConfigError([f"sampled {line}" for line in format_validation_error(e)]) from None


def _study_uses_legacy_names(trial: Any, legacy_name: str) -> bool:
    """True when an earlier trial of ``trial``'s Optuna study sampled ``legacy_name``."""
    study = getattr(trial, "study", None)
    if study is None:
        return False
    return any(legacy_name in t.params for t in study.get_trials(deepcopy=False) if t.number != trial.number)


def _check_path(name: str) -> str | None:
    """None if ``name`` is a leaf field of ExperimentConfig, else what is wrong with it."""
    model: type[BaseModel] = ExperimentConfig
    parts = name.split(".")
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            where = ".".join(parts[:i]) or "<root>"
            return f"no field {part!r} in {where}"
        ann = fields[part].annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if i == len(parts) - 1:
                return "is a section, not a value"
            model = ann
        elif i != len(parts) - 1:
            return f"{'.'.join(parts[: i + 1])} is a value, not a section"
    return None
