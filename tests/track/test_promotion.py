"""Champion gating (track/promotion.py) against a real MLflow sqlite registry.

The market: one symbol whose 5-minute log returns are ``mu + e_t`` (``mu`` = 3 bps, ``e_t ~ N(0, 5 bps)``):
always long earns about ``0.25 * 78 * 3`` ~ 58 bps a day, flat exactly 0. The policies are DQN bundles
whose last layer has zero weights and a one-hot bias, so they always pick one action (0 short, 1 flat,
2 long): their ranking is known before anything runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.agents.algos import build_model
from intradayjules.agents.export import save_model
from intradayjules.agents.policy import policy_from_model
from intradayjules.agents.sb3 import make_training_env
from intradayjules.config import ExperimentConfig, SyntheticConfig, apply_overrides
from intradayjules.data.synthetic import generate
from intradayjules.evaluate.evaluation import evaluate_policy
from intradayjules.evaluate.records import daily_table
from intradayjules.track import get_version, list_versions, load_policy, log_sb3_model
from intradayjules.track.promotion import CHALLENGER_ALIAS, TAG_PROMOTION_REASON, register_gated

FLAT, LONG = 1, 2


@pytest.fixture
def backend() -> str:  # the sqlite store is enough here (the server path is the same client calls)
    return "sqlite"


@pytest.fixture(scope="module")
def drift(tmp_path_factory):
    """(cfg, prepared) on the drifting market (module docstring)."""
    from intradayjules.pipeline.prepare import prepare

    tmp = tmp_path_factory.mktemp("drift")
    market = generate(SyntheticConfig(n_symbols=1, days=30, seed=3))
    f = market.bars.frame.copy()
    r = np.random.default_rng(3).normal(3e-4, 5e-4, len(f))
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    f["open"], f["close"] = open_, close
    f["high"], f["low"] = np.maximum(open_, close) * (1 + 1e-5), np.minimum(open_, close) * (1 - 1e-5)
    f["volume"], f["stale"], f["secs_since_trade"] = np.maximum(f["volume"].to_numpy(), 1e5), False, 0.0
    (tmp / "data").mkdir()
    f.to_parquet(tmp / "data" / "bars.parquet", index=False)
    market.universe.to_parquet(tmp / "data" / "universe.parquet", index=False)
    cfg = ExperimentConfig.model_validate({
        "name": "gate", "workdir": str(tmp / "runs"),
        "data": {"source": "path", "path": str(tmp / "data"), "tiers": {"adv_window_days": 1, "min_history_days": 1}},
        "features": {"store_dir": str(tmp / "store")},
        "market": {"model": "flat", "flat_cost_bps": 1.0},
        "env": {"mode": "single"},
        "risk": {"profile": "off", "early_stop": False},
        "agent": {"net_arch": [8], "learning_starts": 10, "buffer_size": 100},
        "tracking": {"enabled": False}})
    return cfg, prepare(cfg)


def constant_policy_zip(cfg, prepared, action: int, path):
    """A DQN (signed zip + pickle-free bundle) that always picks ``action``."""
    import torch

    model = build_model(cfg.agent, make_training_env(cfg, prepared.env_data), "cpu")
    last = model.q_net.q_net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.nn.functional.one_hot(torch.tensor(action), last.bias.numel()).float())
    return save_model(model, path)


def daily(zip_path, cfg, prepared) -> pd.DataFrame:
    _, res = evaluate_policy(policy_from_model(load_policy(zip_path)), prepared.env_data, cfg, "test")
    return daily_table(res)


def logged_run(tracker, zip_path, name):
    run = tracker.start_run(name)
    log_sb3_model(run, zip_path)
    run.end()
    return run.run_id


def test_better_champion_keeps_alias_and_the_reason_is_recorded(tracker, drift, tmp_path):
    cfg, prepared = drift
    long_zip = constant_policy_zip(cfg, prepared, LONG, tmp_path / "long" / "model.zip")
    flat_zip = constant_policy_zip(cfg, prepared, FLAT, tmp_path / "flat" / "model.zip")
    long_daily, flat_daily = daily(long_zip, cfg, prepared), daily(flat_zip, cfg, prepared)
    # the premise: long really earns on every full test session, flat earns exactly 0
    full = ~long_daily["partial"].to_numpy(dtype=bool)
    assert full.sum() >= 4 and (long_daily["net_bps"][full] > 0).all() and (flat_daily["net_bps"] == 0).all()
    name = tracker.target.registered_model

    v1, first = register_gated(tracker, logged_run(tracker, long_zip, "long"), long_daily, prepared.env_data, cfg)
    assert (v1.version, v1.aliases, first.promote) == ("1", ["champion"], True)
    assert first.reason.startswith("champion: first version")

    run2 = logged_run(tracker, flat_zip, "flat")
    v2, d = register_gated(tracker, run2, flat_daily, prepared.env_data, cfg)
    assert (v2.version, v2.aliases, d.promote, d.alias) == ("2", [CHALLENGER_ALIAS], False, CHALLENGER_ALIAS)
    assert get_version(tracker, name, "@champion").version == "1"  # the champion keeps its alias
    # the comparison is flat - long on the full test sessions: minus the hand-computed mean of long
    want = -float(long_daily["net_bps"][full].mean())
    assert d.comparison.n == int(full.sum()) and d.comparison.mean_diff == pytest.approx(want, rel=1e-9)
    assert d.comparison.ci_high < 0
    assert d.reason.startswith(f"challenger: vs champion v1 {want:+.1f} bps/day [") and "not above 0" in d.reason
    # the reason is recorded on the version and on the model's run
    assert v2.tags[TAG_PROMOTION_REASON] == d.reason
    assert tracker.client.get_run(run2).data.tags[TAG_PROMOTION_REASON] == d.reason


def test_clearly_better_challenger_is_promoted(tracker, drift, tmp_path):
    cfg, prepared = drift
    flat_zip = constant_policy_zip(cfg, prepared, FLAT, tmp_path / "flat" / "model.zip")
    long_zip = constant_policy_zip(cfg, prepared, LONG, tmp_path / "long" / "model.zip")
    name = tracker.target.registered_model
    register_gated(tracker, logged_run(tracker, flat_zip, "flat"), daily(flat_zip, cfg, prepared),
                   prepared.env_data, cfg)
    long_daily = daily(long_zip, cfg, prepared)
    v2, d = register_gated(tracker, logged_run(tracker, long_zip, "long"), long_daily, prepared.env_data, cfg)
    assert d.promote and v2.aliases == ["champion"] and d.comparison.ci_low > 0
    assert "above 0" in d.reason and "not above" not in d.reason
    assert [(v.version, v.aliases) for v in list_versions(tracker, name)] == [("1", []), ("2", ["champion"])]
    # the same model again cannot beat itself: identical daily P&L, interval [0, 0]
    v3, same = register_gated(tracker, logged_run(tracker, long_zip, "long-again"), long_daily, prepared.env_data, cfg)
    assert (same.promote, v3.aliases, same.comparison.identical) == (False, [CHALLENGER_ALIAS], True)
    assert get_version(tracker, name, "@champion").version == "2"


def test_champion_is_evaluated_on_this_runs_sessions(tracker, drift, tmp_path):
    """The champion's P&L comes from rolling it over the challenger's sessions now: a challenger judged on
    the validation split is compared with the champion on the validation split, not on its test record."""
    cfg, prepared = drift
    long_zip = constant_policy_zip(cfg, prepared, LONG, tmp_path / "long" / "model.zip")
    register_gated(tracker, logged_run(tracker, long_zip, "long"), daily(long_zip, cfg, prepared),
                   prepared.env_data, cfg)
    _, res = evaluate_policy(policy_from_model(load_policy(long_zip)), prepared.env_data, cfg, "val")
    val = daily_table(res)
    _, d = register_gated(tracker, logged_run(tracker, long_zip, "long-val"), val, prepared.env_data, cfg, split="val")
    assert d.comparison.identical and d.comparison.n == int((~val["partial"].astype(bool)).sum())


def test_always_and_an_unevaluable_champion(tracker, drift, tmp_path):
    cfg, prepared = drift
    name = tracker.target.registered_model
    long_zip = constant_policy_zip(cfg, prepared, LONG, tmp_path / "long" / "model.zip")
    flat_zip = constant_policy_zip(cfg, prepared, FLAT, tmp_path / "flat" / "model.zip")
    register_gated(tracker, logged_run(tracker, long_zip, "long"), daily(long_zip, cfg, prepared),
                   prepared.env_data, cfg)
    always = apply_overrides(cfg, {"tracking.promotion": "always"})
    v2, d = register_gated(tracker, logged_run(tracker, flat_zip, "flat"), daily(flat_zip, cfg, prepared),
                           prepared.env_data, always)
    assert d.promote and v2.aliases == ["champion"] and "always" in d.reason
    # a champion that does not fit this run's observations (a longer lookback) keeps the alias; the reason says so
    wide = apply_overrides(cfg, {"features.lookback": cfg.features.lookback + 2})
    from intradayjules.pipeline.prepare import prepare

    wide_prep = prepare(wide)
    wide_zip = constant_policy_zip(wide, wide_prep, LONG, tmp_path / "wide" / "model.zip")
    v3, d3 = register_gated(tracker, logged_run(tracker, wide_zip, "wide"), daily(wide_zip, wide, wide_prep),
                            wide_prep.env_data, wide)
    assert (d3.promote, v3.aliases) == (False, [CHALLENGER_ALIAS])
    assert d3.reason.startswith("challenger: champion v2 could not be evaluated")
    assert get_version(tracker, name, "@champion").version == "2"
