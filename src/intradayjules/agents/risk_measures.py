"""Risk measures of a return distribution given as quantiles: how QR-DQN picks an action.

QR-DQN predicts, for each action, ``N`` quantiles ``q_1..q_N`` of the return at the midpoints
``tau_i = (2i - 1) / 2N``; each stands for probability ``1/N`` (Dabney et al. 2018). Read as the
discrete distribution with mass ``1/N`` on each ``q_i`` (sorted ascending: ``q_(1) <= ... <= q_(N)``):

* ``mean``:      ``(1/N) sum_i q_i`` (risk-neutral; SB3's QR-DQN uses it).
* ``cvar``:      ``CVaR_alpha = (1/alpha) sum_i w_i q_(i)`` with ``w_i = clip(alpha - (i-1)/N, 0, 1/N)``:
  the mean of the worst ``alpha`` share of outcomes (the atom at the boundary counts in part).
  ``alpha = 1`` is the mean; ``alpha <= 1/N`` is the lowest quantile.
* ``mean_std``:  ``mean - lambda * sd`` with ``sd = sqrt((1/N) sum_i (q_i - mean)^2)`` (population sd).

:func:`risk_values` maps quantiles ``[batch, N, n_actions]`` to one value per action ``[batch, n_actions]``;
the greedy action is its argmax. It is written in TorchScript-compatible torch, and the same function is
called by the Python policy (agents/qrdqn.py) and compiled into the exported module (agents/export.py),
so the two choose identical actions.

Example::

    >>> import torch
    >>> q = torch.tensor([[[-4.0, 1.0], [0.0, 1.0], [1.0, 1.0], [7.0, 1.0]]])  # N=4 quantiles, 2 actions
    >>> risk_values(q, "mean", 1.0, 0.0)        # equal means
    tensor([[1., 1.]])
    >>> risk_values(q, "cvar", 0.5, 0.0)        # worst half: (-4 + 0) / 2 vs 1
    tensor([[-2.,  1.]])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MEASURES = ("mean", "cvar", "mean_std")


@dataclass(frozen=True)
class RiskMeasure:
    """Which measure and its parameter; validated on construction."""

    name: str = "mean"
    alpha: float = 1.0  # cvar
    lam: float = 0.0  # mean_std

    def __post_init__(self) -> None:
        if self.name not in MEASURES:
            raise ValueError(f"risk measure must be one of {MEASURES}, got {self.name!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"cvar alpha must be in (0, 1], got {self.alpha}")
        if self.lam < 0.0:
            raise ValueError(f"mean_std lambda must be >= 0, got {self.lam}")

    @classmethod
    def from_config(cls, qrdqn) -> "RiskMeasure":
        """From ``agent.qrdqn`` (``QRDQNConfig``)."""
        return cls(qrdqn.risk_measure, float(qrdqn.cvar_alpha), float(qrdqn.risk_lambda))


def cvar_weights(n: int, alpha: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Weights ``w_i / alpha`` on the sorted quantiles (module docstring); they sum to 1."""
    i = torch.arange(n, dtype=dtype, device=device)
    return torch.clamp(alpha - i / n, min=0.0, max=1.0 / n) / alpha


def risk_values(quantiles: torch.Tensor, measure: str, alpha: float, lam: float) -> torch.Tensor:
    """``[batch, N, n_actions]`` quantiles -> ``[batch, n_actions]`` values of ``measure``."""
    if measure == "mean":
        return quantiles.mean(dim=1)
    if measure == "cvar":
        ordered, _ = torch.sort(quantiles, dim=1)
        w = cvar_weights(quantiles.shape[1], alpha, quantiles.dtype, quantiles.device)
        return (ordered * w.view(1, -1, 1)).sum(dim=1)
    if measure == "mean_std":
        mean = quantiles.mean(dim=1)
        sd = torch.sqrt(((quantiles - mean.unsqueeze(1)) ** 2).mean(dim=1))
        return mean - lam * sd
    raise ValueError("unknown risk measure " + measure)


def risk_action(quantiles: torch.Tensor, measure: str, alpha: float, lam: float) -> torch.Tensor:
    """The greedy action under ``measure``: ``argmax`` over actions of :func:`risk_values` (``[batch]``)."""
    return torch.argmax(risk_values(quantiles, measure, alpha, lam), dim=1)
