"""Risk-aware QR-DQN: sb3-contrib's QR-DQN policy whose greedy action maximises a risk measure.

``RiskAwareQRDQNPolicy`` is ``sb3_contrib.qrdqn.policies.QRDQNPolicy`` with three more constructor
arguments, ``risk_measure`` (``mean`` | ``cvar`` | ``mean_std``), ``cvar_alpha`` and ``risk_lambda``
(agents/risk_measures.py). They go in ``policy_kwargs``, so SB3 saves them in the model zip (the
``policy_kwargs`` entry of its ``data`` JSON) and every ``model.predict`` — the risk callback, evaluation,
the registry's pyfunc model — picks ``argmax_a risk_values(quantiles(obs))[a]``. Exploration is SB3's
epsilon-greedy around that action.

Learning is unchanged: the quantile regression loss and its target (the next action by the mean of the
target network's quantiles) are sb3-contrib's, so the network learns the return distribution of the
risk-neutral greedy policy and the measure only decides which action is taken. With ``mean`` the policy
is exactly sb3-contrib's.
"""

from __future__ import annotations

from typing import Any

import torch
from sb3_contrib.qrdqn.policies import QRDQNPolicy

from .risk_measures import RiskMeasure, risk_action, risk_values


class RiskAwareQRDQNPolicy(QRDQNPolicy):
    def __init__(self, *args: Any, risk_measure: str = "mean", cvar_alpha: float = 1.0, risk_lambda: float = 0.0,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.risk = RiskMeasure(risk_measure, float(cvar_alpha), float(risk_lambda))

    def quantiles(self, obs: torch.Tensor) -> torch.Tensor:
        """``[batch, n_quantiles, n_actions]`` predicted return quantiles (online network)."""
        return self.quantile_net(obs)

    def risk_values(self, obs: torch.Tensor) -> torch.Tensor:
        """``[batch, n_actions]``: the risk measure of each action's predicted return distribution."""
        return risk_values(self.quantiles(obs), self.risk.name, self.risk.alpha, self.risk.lam)

    def _predict(self, obs: Any, deterministic: bool = True) -> torch.Tensor:
        return risk_action(self.quantiles(obs), self.risk.name, self.risk.alpha, self.risk.lam).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(risk_measure=self.risk.name, cvar_alpha=self.risk.alpha, risk_lambda=self.risk.lam)
        return data


def set_risk_measure(model: Any, measure: RiskMeasure) -> Any:
    """Choose actions of a trained QR-DQN ``model`` by ``measure`` from now on (the quantile network is
    unchanged); a later ``model.save`` records the new measure. Returns ``model``."""
    if not isinstance(model.policy, RiskAwareQRDQNPolicy):
        raise TypeError(f"{type(model.policy).__name__} is not a RiskAwareQRDQNPolicy (train with agent.algo: qrdqn)")
    model.policy.risk = measure
    model.policy_kwargs = {**model.policy_kwargs, "risk_measure": measure.name, "cvar_alpha": measure.alpha,
                           "risk_lambda": measure.lam}
    return model
