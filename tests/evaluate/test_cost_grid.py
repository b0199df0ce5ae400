"""Cost grid: costs scale exactly with the multiplier for a policy whose trades do not depend on costs,
so net P&L is linear in it and the break-even is gross / costs; the cap changes what fills."""

from __future__ import annotations

import numpy as np
import pytest

from intradayjules.config import ExperimentConfig, SyntheticConfig
from intradayjules.data.synthetic import generate
from intradayjules.env import prepare
from intradayjules.env.fallback_features import fallback_features as features
from intradayjules.evaluate.cost_grid import break_even, cost_grid, parse_grid, scaled


def market(days: int, n_symbols: int):
    return generate(SyntheticConfig(n_symbols=n_symbols, days=days, seed=0))


def config(mode: str, **env) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"data": {"tiers": {"adv_window_days": 5}}, "env": {"mode": mode, **env}})


@pytest.fixture(scope="module")
def single_liquid():
    m = market(days=30, n_symbols=3)
    cfg = config("single", symbols=["LQ01"])
    return cfg, prepare(cfg, m.bars, m.universe, features=features(m.bars.frame))


def test_costs_scale_with_the_multiplier_and_pnl_is_linear(single_liquid):
    cfg, data = single_liquid
    long_all_day = lambda obs, info=None: 2  # noqa: E731 - trades the same whatever it costs
    grid = cost_grid(long_all_day, data, cfg, "test", multipliers=[0.0, 0.5, 1.0, 2.0, 4.0], caps=[0.1],
                     n_resamples=500)
    pts = {p["multiplier"]: p for p in grid["points"]}
    c1, g1 = pts[1.0]["costs_bps"], pts[1.0]["gross_bps"]
    assert pts[0.0]["costs_bps"] == 0.0 and c1 > 0
    for m, p in pts.items():
        assert p["costs_bps"] == pytest.approx(m * c1, rel=1e-9)
        assert p["gross_bps"] == pytest.approx(g1, abs=1e-6)  # same trades, same prices
        assert p["mean_pnl_bps"] == pytest.approx(g1 - m * c1, abs=1e-6)
        assert p["trades"] == pts[1.0]["trades"]
    be = grid["break_even"]["0.1"]
    assert be["linear_from_1x"] == pytest.approx(g1 / c1)
    if 0.0 < g1 / c1 < 4.0:
        assert be["interpolated"] == pytest.approx(g1 / c1, rel=1e-6)
    else:
        assert be["where"] == ("above" if g1 > 4 * c1 else "below")


def test_scaled_changes_every_cost_input_and_leaves_the_original_alone(single_liquid):
    cfg, data = single_liquid
    d2, c2 = scaled(data, cfg, 2.0, 0.05)
    assert np.array_equal(d2.panel.half_spread, 2 * data.panel.half_spread)
    assert (c2.market.impact_coef, c2.market.commission_bps, c2.market.flat_cost_bps,
            c2.market.participation_cap) == (2 * cfg.market.impact_coef, 2 * cfg.market.commission_bps,
                                            2 * cfg.market.flat_cost_bps, 0.05)
    assert cfg.market.participation_cap == 0.10 and d2.panel is not data.panel


def test_a_tighter_cap_leaves_more_of_an_illiquid_order_unfilled():
    m = market(days=30, n_symbols=3)
    cfg = config("single", symbols=["IL01"])
    data = prepare(cfg, m.bars, m.universe, features=features(m.bars.frame))
    flip = lambda obs, info=None: 2 if int((info or {}).get("bar", 0)) % 2 else 0  # noqa: E731
    grid = cost_grid(flip, data, cfg, "test", multipliers=[1.0], caps=[0.05, 0.20], n_resamples=200)
    by_cap = {p["cap"]: p for p in grid["points"]}
    assert by_cap[0.05]["unfilled_notional"] > by_cap[0.20]["unfilled_notional"] > 0


def test_break_even_and_parse_rules():
    pts = [{"multiplier": m, "mean_pnl_bps": y, "costs_bps": 2.0 * m, "gross_bps": 3.0}
           for m, y in ((0.5, 2.0), (1.0, 1.0), (2.0, -1.0), (4.0, -5.0))]
    be = break_even(pts)
    assert be["interpolated"] == pytest.approx(1.5) and be["linear_from_1x"] == pytest.approx(1.5)
    assert break_even([{**p, "mean_pnl_bps": 1.0} for p in pts])["where"] == "above"
    assert parse_grid("4, 1,0.5,2,1") == [0.5, 1.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="'x' is not a number"):
        parse_grid("1,x")
    with pytest.raises(ValueError, match=">= 0"):
        parse_grid("-1")
