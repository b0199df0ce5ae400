"""The λ-weighted risk composite, its thresholds and the early-stopping rule.

Normalisation (each metric to [0, 1], ``min(1, max(0, value / scale))``; scales in ``RiskConfig``):

=============  =================================  ==========================  ===============
component      metric (``RiskTracker.snapshot``)   scale (value that maps 1)   default scale
=============  =================================  ==========================  ===============
drawdown       ``max_drawdown`` (fraction)         ``drawdown_scale``          0.02 (2 %, the daily limit)
ulcer          ``mean_ulcer_index`` (fraction)     ``ulcer_scale``             0.01
impact         ``impact_bps`` (bps of notional)    ``impact_scale_bps``        25 bps
staleness      ``stale_share`` (share)             1 (already a share)         -
liquidity      ``illiquid_share`` (share)          1 (already a share)         -
=============  =================================  ==========================  ===============

composite = Σ λ_k · normalised_k with the weights λ of ``RiskConfig.weights`` (validated to sum to 1), so
the composite is in [0, 1]. Profiles (``config.RISK_PROFILES``; an explicit config value always wins):

=================  =========================  ======  ========  ========  =======  =======  ==========
profile            weights dd/ul/imp/st/liq   stop    patience  dd pen.   ul pen.  imp pen  illiquid x
=================  =========================  ======  ========  ========  =======  =======  ==========
off                .30/.25/.25/.20/0          0.75    5 (off)   0         0        0        1
conservative       .25/.20/.20/.15/.20        0.60    3         2         2        1        5
balanced           .30/.25/.25/.20/0          0.75    5         1         1        0.5      3
aggressive         .30/.25/.25/.20/0          0.90    8         0.5       0.5      0.25     2
=================  =========================  ======  ========  ========  =======  =======  ==========

Adaptive threshold (``adaptive_threshold: true``), precisely: the first ``threshold_warmup`` composite
values observed (evaluations) form the warm-up sample W and are judged against the static
``stop_threshold``. From then on the threshold is frozen at
``clip(Q_q(W), threshold_floor, stop_threshold)`` with ``Q_q`` the ``threshold_quantile`` quantile of W
(linear interpolation between order statistics, numpy's default). It can only tighten the static
threshold, never loosen it, and it does not drift with later behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import RiskConfig

COMPONENTS = ("drawdown", "ulcer", "impact", "staleness", "liquidity")


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


def quantile(values: list[float], q: float) -> float:
    """Quantile with linear interpolation between order statistics (numpy's default 'linear')."""
    if not values:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1] (got {q})")
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class RiskComposite:
    """Normalise a ``RiskTracker.snapshot()`` and weight it into one number in [0, 1]."""

    __slots__ = ("cfg", "weights")

    def __init__(self, cfg: RiskConfig | None = None) -> None:
        self.cfg = cfg or RiskConfig()
        w = self.cfg.weights
        self.weights = {"drawdown": w.drawdown, "ulcer": w.ulcer, "impact": w.impact,
                        "staleness": w.staleness, "liquidity": w.liquidity}

    def normalised(self, snap: Mapping[str, float]) -> dict[str, float]:
        """Each component in [0, 1]. ``snap`` needs max_drawdown, mean_ulcer_index, impact_bps,
        stale_share and illiquid_share."""
        c = self.cfg
        try:
            return {
                "drawdown": _clip01(snap["max_drawdown"] / c.drawdown_scale),
                "ulcer": _clip01(snap["mean_ulcer_index"] / c.ulcer_scale),
                "impact": _clip01(snap["impact_bps"] / c.impact_scale_bps),
                "staleness": _clip01(snap["stale_share"]),
                "liquidity": _clip01(snap["illiquid_share"]),
            }
        except KeyError as e:
            raise KeyError(f"risk snapshot lacks {e.args[0]!r} (expected RiskTracker.snapshot())") from None

    def score(self, snap: Mapping[str, float]) -> float:
        """The composite: Σ weight_k · normalised_k, in [0, 1]."""
        n = self.normalised(snap)
        return sum(self.weights[k] * n[k] for k in COMPONENTS)

    def report(self, snap: Mapping[str, float]) -> dict[str, float]:
        """``risk/<component>`` normalised values and ``risk/composite``, for logging."""
        n = self.normalised(snap)
        out = {f"risk/{k}": v for k, v in n.items()}
        out["risk/composite"] = sum(self.weights[k] * n[k] for k in COMPONENTS)
        return out


class AdaptiveThreshold:
    """Stop threshold: static, or adaptive from a warm-up sample (module docstring, precisely)."""

    __slots__ = ("static", "adaptive", "q", "warmup", "floor", "_sample", "value")

    def __init__(self, static: float, *, adaptive: bool = False, quantile_q: float = 0.9,
                 warmup: int = 3, floor: float = 0.25) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 (got {warmup})")
        if floor > static:
            raise ValueError(f"floor ({floor}) must be <= the static threshold ({static})")
        self.static = float(static)
        self.adaptive = adaptive
        self.q = float(quantile_q)
        self.warmup = int(warmup)
        self.floor = float(floor)
        self._sample: list[float] = []
        self.value = self.static

    @classmethod
    def from_config(cls, cfg: RiskConfig) -> "AdaptiveThreshold":
        return cls(cfg.stop_threshold, adaptive=cfg.adaptive_threshold, quantile_q=cfg.threshold_quantile,
                   warmup=cfg.threshold_warmup, floor=cfg.threshold_floor)

    @property
    def warmed_up(self) -> bool:
        return len(self._sample) >= self.warmup

    def observe(self, composite: float) -> float:
        """Record one composite; return the threshold this value is judged against."""
        current = self.value
        if self.adaptive and not self.warmed_up:
            self._sample.append(float(composite))
            if self.warmed_up:
                qv = quantile(self._sample, self.q)
                self.value = min(self.static, max(self.floor, qv))
        return current


class EarlyStopRule:
    """Stop after ``patience`` consecutive evaluations whose composite is above the threshold."""

    __slots__ = ("threshold", "patience", "enabled", "violations", "history")

    def __init__(self, threshold: AdaptiveThreshold, patience: int = 5, enabled: bool = True) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1 (got {patience})")
        self.threshold = threshold
        self.patience = int(patience)
        self.enabled = enabled
        self.violations = 0
        self.history: list[tuple[float, float, bool]] = []  # (composite, threshold, violated)

    @classmethod
    def from_config(cls, cfg: RiskConfig) -> "EarlyStopRule":
        return cls(AdaptiveThreshold.from_config(cfg), cfg.patience, cfg.early_stop)

    def update(self, composite: float) -> bool:
        """Record an evaluation's composite; True when training should stop."""
        thr = self.threshold.observe(composite)
        violated = composite > thr
        self.violations = self.violations + 1 if violated else 0
        self.history.append((float(composite), thr, violated))
        return self.enabled and self.violations >= self.patience
