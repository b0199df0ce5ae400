"""Risk profiles: the one table of values a profile gives to the risk section.

A profile fills every ``RiskConfig`` field of ``RISK_PROFILES[profile]`` that the configuration does not
set explicitly (an explicit value always wins). Weights are drawdown/ulcer/impact/staleness/liquidity.
Penalties are reward-shaping coefficients (risk/shaping.py); ``off`` = no shaping, no early stop.

==============  =========================  ======  ========  ========  =====  ======  ==========
profile         weights (dd/ulc/imp/st/liq) stop    patience  dd pen.   ulcer  impact  illiquid x
==============  =========================  ======  ========  ========  =====  ======  ==========
off             .30/.25/.25/.20/0           0.75    5 (off)   0         0      0       1
conservative    .25/.20/.20/.15/.20         0.60    3         2         2      1       5
balanced        .30/.25/.25/.20/0           0.75    5         1         1      0.5     3
aggressive      .30/.25/.25/.20/0           0.90    8         0.5       0.5    0.25    2
==============  =========================  ======  ========  ========  =====  ======  ==========
"""

from __future__ import annotations

from typing import Any

PROFILE_NAMES = ("off", "conservative", "balanced", "aggressive")

RISK_PROFILES: dict[str, dict[str, Any]] = {
    "off": {"weights": (0.30, 0.25, 0.25, 0.20, 0.0), "stop_threshold": 0.75, "patience": 5,
            "early_stop": False, "drawdown_penalty": 0.0, "ulcer_penalty": 0.0, "impact_penalty": 0.0,
            "illiquid_penalty_multiplier": 1.0},
    "conservative": {"weights": (0.25, 0.20, 0.20, 0.15, 0.20), "stop_threshold": 0.60, "patience": 3,
                     "early_stop": True, "drawdown_penalty": 2.0, "ulcer_penalty": 2.0,
                     "impact_penalty": 1.0, "illiquid_penalty_multiplier": 5.0},
    "balanced": {"weights": (0.30, 0.25, 0.25, 0.20, 0.0), "stop_threshold": 0.75, "patience": 5,
                 "early_stop": True, "drawdown_penalty": 1.0, "ulcer_penalty": 1.0, "impact_penalty": 0.5,
                 "illiquid_penalty_multiplier": 3.0},
    "aggressive": {"weights": (0.30, 0.25, 0.25, 0.20, 0.0), "stop_threshold": 0.90, "patience": 8,
                   "early_stop": True, "drawdown_penalty": 0.5, "ulcer_penalty": 0.5, "impact_penalty": 0.25,
                   "illiquid_penalty_multiplier": 2.0},
}
assert tuple(RISK_PROFILES) == PROFILE_NAMES
