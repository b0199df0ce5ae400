"""The algorithm table: ``agent.algo`` -> SB3 class, constructor arguments from the config, replay or not.

| ``agent.algo`` | class                         | learns from               | config                                |
|----------------|-------------------------------|---------------------------|---------------------------------------|
| ``dqn``        | ``agents.dqn_step.DQN`` (1)   | replay buffer (off-policy) | ``agent.*`` (the original system's)  |
| ``qrdqn``      | ``sb3_contrib.QRDQN``         | replay buffer (off-policy) | ``agent.*`` + ``agent.qrdqn``        |
| ``ppo``        | ``stable_baselines3.PPO``     | rollouts (on-policy)       | ``agent.ppo`` + gamma, net_arch      |
| ``a2c``        | ``stable_baselines3.A2C``     | rollouts (on-policy)       | ``agent.a2c`` + gamma, net_arch      |

(1) ``stable_baselines3.DQN`` with its gradient step written out, bit-identical and ~1.8x cheaper
(agents/dqn_step.py); a model of SB3's own class is recognised as ``dqn`` too.

QR-DQN's policy is ``RiskAwareQRDQNPolicy`` (agents/qrdqn.py): its greedy action maximises
``agent.qrdqn.risk_measure`` of the predicted quantiles. ``build_model`` also stamps the model with its
algorithm name (attribute ``intradayjules_algo``, saved in the zip's ``data`` JSON), so
:func:`algo_of_zip` can tell which class loads a file without unpickling anything; zips saved before that
stamp existed are recognised by their policy class (PPO vs A2C: PPO has ``clip_range``).

Example::

    >>> from intradayjules.config import AgentConfig
    >>> ALGOS["ppo"].kwargs(AgentConfig(algo="ppo"))["n_steps"]
    2048
    >>> ALGOS["qrdqn"].off_policy, ALGOS["ppo"].off_policy
    (True, False)
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_contrib import QRDQN
from stable_baselines3 import A2C, PPO
from stable_baselines3 import DQN as SB3DQN
from stable_baselines3.common.base_class import BaseAlgorithm

from ..config import AgentConfig
from . import integrity
from .dqn_step import DQN
from .qrdqn import RiskAwareQRDQNPolicy
from .replay import SampleViewReplayBuffer

ALGO_ATTR = "intradayjules_algo"


@dataclass(frozen=True)
class Algo:
    name: str  # agent.algo
    cls: type[BaseAlgorithm]
    off_policy: bool  # True: replay buffer (saved with checkpoints); False: on-policy rollouts
    kwargs: Callable[[AgentConfig], dict[str, Any]]  # constructor arguments (policy included), no env/seed/device
    also: tuple[type[BaseAlgorithm], ...] = ()  # other classes of models that are this algorithm


# Adam's fused kernel (torch >= 2.4, CPU and CUDA): the same update rule in one kernel over all parameters
# instead of ~10 small ops per tensor; on the [64, 64] MLP it cuts the optimiser's share of a DQN gradient
# step by about two thirds (benchmarks/dqn_throughput.py). SB3's replay buffer, without its second copy of
# each sampled batch (agents/replay.py).
OPTIMIZER_KWARGS: dict[str, Any] = {"fused": True}


def _value_based(a: AgentConfig) -> dict[str, Any]:
    return dict(replay_buffer_class=SampleViewReplayBuffer, learning_rate=a.learning_rate,
                buffer_size=a.buffer_size, learning_starts=a.learning_starts,
                batch_size=a.batch_size, gamma=a.gamma, train_freq=a.train_freq,
                target_update_interval=a.target_update_interval, exploration_fraction=a.exploration_fraction,
                exploration_initial_eps=a.exploration_initial_eps, exploration_final_eps=a.exploration_final_eps)


def _dqn(a: AgentConfig) -> dict[str, Any]:
    return dict(policy="MlpPolicy", policy_kwargs={"net_arch": list(a.net_arch),
                                                   "optimizer_kwargs": dict(OPTIMIZER_KWARGS)}, **_value_based(a))


def _qrdqn(a: AgentConfig) -> dict[str, Any]:
    q = a.qrdqn
    return dict(policy=RiskAwareQRDQNPolicy, **_value_based(a),
                policy_kwargs={"net_arch": list(a.net_arch), "n_quantiles": q.n_quantiles,
                               "risk_measure": q.risk_measure, "cvar_alpha": q.cvar_alpha,
                               "risk_lambda": q.risk_lambda, "optimizer_kwargs": dict(OPTIMIZER_KWARGS)})


def _actor_critic(a: AgentConfig) -> dict[str, Any]:
    return {"net_arch": {"pi": list(a.net_arch), "vf": list(a.net_arch)}}


def _ppo(a: AgentConfig) -> dict[str, Any]:
    p = a.ppo
    return dict(policy="MlpPolicy", policy_kwargs=_actor_critic(a), learning_rate=p.learning_rate, n_steps=p.n_steps,
                batch_size=p.batch_size, n_epochs=p.n_epochs, gamma=a.gamma, gae_lambda=p.gae_lambda,
                clip_range=p.clip_range, ent_coef=p.ent_coef, vf_coef=p.vf_coef, max_grad_norm=p.max_grad_norm,
                normalize_advantage=p.normalize_advantage, target_kl=p.target_kl)


def _a2c(a: AgentConfig) -> dict[str, Any]:
    p = a.a2c
    return dict(policy="MlpPolicy", policy_kwargs=_actor_critic(a), learning_rate=p.learning_rate, n_steps=p.n_steps,
                gamma=a.gamma, gae_lambda=p.gae_lambda, ent_coef=p.ent_coef, vf_coef=p.vf_coef,
                max_grad_norm=p.max_grad_norm, use_rms_prop=p.use_rms_prop,
                normalize_advantage=p.normalize_advantage)


ALGOS: dict[str, Algo] = {
    "dqn": Algo("dqn", DQN, True, _dqn, also=(SB3DQN,)),  # SB3's, gradient step written out: agents/dqn_step.py
    "qrdqn": Algo("qrdqn", QRDQN, True, _qrdqn),
    "ppo": Algo("ppo", PPO, False, _ppo),
    "a2c": Algo("a2c", A2C, False, _a2c),
}


def get_algo(name: str) -> Algo:
    """The table row for ``name`` (``agent.algo``; SB3 class names such as ``QRDQN`` are accepted too)."""
    algo = ALGOS.get(name.lower())
    if algo is None:
        raise ValueError(f"unknown algorithm {name!r}; one of {', '.join(ALGOS)}")
    return algo


def collect_schedule(train_freq: int, n_envs: int) -> tuple[int, int]:
    """Off-policy on ``n_envs`` slots: SB3's ``(train_freq, gradient_steps)`` (train_freq in calls of the
    vectorised env, each ``n_envs`` env steps) that keeps ``agent.train_freq``'s ratio of gradient steps
    per environment step exactly: ``gradient_steps / (train_freq * n_envs) == 1 / agent.train_freq``.

    >>> collect_schedule(4, 1), collect_schedule(4, 8), collect_schedule(4, 6), collect_schedule(3, 8)
    ((4, 1), (1, 2), (2, 3), (3, 8))
    """
    g = math.gcd(int(train_freq), int(n_envs))
    return int(train_freq) // g, int(n_envs) // g


def build_model(agent: AgentConfig, env: Any, device: str) -> BaseAlgorithm:
    """A fresh model of ``agent.algo`` on ``env``, seeded with ``agent.seed``, stamped with its name.
    Off-policy on a vectorised env of N slots: ``collect_schedule`` keeps the gradient steps per env step."""
    algo = get_algo(agent.algo)
    kwargs = algo.kwargs(agent)
    n_envs = int(getattr(env, "num_envs", 1))
    if algo.off_policy and n_envs > 1:
        kwargs["train_freq"], kwargs["gradient_steps"] = collect_schedule(agent.train_freq, n_envs)
    model = algo.cls(env=env, seed=agent.seed, device=device, verbose=0, **kwargs)
    setattr(model, ALGO_ATTR, algo.name)
    return model


def algo_of(model: Any) -> Algo:
    """The table row of a model object (by its class)."""
    for algo in ALGOS.values():
        if type(model) is algo.cls or type(model) in algo.also:
            return algo
    manifest = getattr(model, "manifest", None)  # a policy rebuilt from a bundle (agents/bundle.BundlePolicy)
    if isinstance(manifest, dict):
        for algo in ALGOS.values():
            if algo.cls.__name__ == manifest.get("algorithm"):
                return algo
    raise ValueError(f"{type(model).__name__} is not one of the supported algorithms ({', '.join(ALGOS)})")


def algo_of_zip(path: str | Path) -> Algo:
    """The algorithm of an SB3 zip, read from its ``data`` JSON (no unpickling; module docstring)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a Stable-Baselines3 model zip ({type(e).__name__}: {e})") from None
    if isinstance(data.get(ALGO_ATTR), str):
        return get_algo(data[ALGO_ATTR])
    module = str((data.get("policy_class") or {}).get("__module__", ""))
    if module.endswith("dqn.policies") and "qrdqn" not in module:
        return ALGOS["dqn"]
    if "qrdqn" in module:
        return ALGOS["qrdqn"]
    if module == "stable_baselines3.common.policies":
        return ALGOS["ppo"] if "clip_range" in data else ALGOS["a2c"]
    raise ValueError(f"{path}: cannot tell the algorithm (policy class module {module!r})")


def load_model(path: str | Path, device: str = "cpu", trust_pickle: bool = False, **kwargs: Any) -> BaseAlgorithm:
    """Load an SB3 zip with the class of its algorithm (:func:`algo_of_zip`) after its signature is checked
    (``integrity.verify``: signed by this project under your key, or ``trust_pickle`` for an unsigned file
    you made); ``kwargs`` go to ``load``."""
    integrity.verify(path, "SB3 model", trust_pickle)
    model = algo_of_zip(path).cls.load(str(path), device=device, **kwargs)
    if not hasattr(model, ALGO_ATTR):
        setattr(model, ALGO_ATTR, algo_of(model).name)
    return model
