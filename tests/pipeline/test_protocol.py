"""The research protocol's pipeline pieces: the tuning trial inside the test-block guard (both ways), the
folds a trial averages over, per-fold pruning steps, selection statistics, daily records against the
evaluation statistics, reference policies, and a tiny walk-forward run whose artifacts show that no
choice saw a test block (slow)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import ExperimentConfig, apply_overrides
from intradayjules.env import HeldOutAccessError
from intradayjules.evaluate.evaluation import evaluate_policy
from intradayjules.evaluate.overfitting import deflated_sharpe_from_trials
from intradayjules.evaluate.seeds import difference
from intradayjules.pipeline import trial as trial_mod
from intradayjules.pipeline.compare import RunRecord, comparison_table, concat_folds, daily_record, realistic
from intradayjules.pipeline.prepare import prepare
from intradayjules.pipeline.trial import load_pnl_matrix
from intradayjules.pipeline.walk_forward import fold_selection, run_walk_forward


def wf_config(tmp_path, **over) -> ExperimentConfig:
    base = {"name": "wf", "workdir": str(tmp_path / "runs"), "features": {"store_dir": str(tmp_path / "store")},
            "data": {"synthetic": {"n_symbols": 6, "days": 45, "seed": 0}, "tiers": {"adv_window_days": 10},
                     "splits": {"mode": "walk_forward", "folds": 3}},
            "env": {"mode": "multi", "reward_scale": 1e4},
            "agent": {"total_timesteps": 600, "learning_starts": 200, "buffer_size": 2000, "n_seeds": 2},
            "risk": {"eval_freq": 300, "eval_episodes": 2},
            "tune": {"n_trials": 2, "workers": 1, "trial_timesteps": 400, "reports_per_trial": 2,
                     "objective_folds": 2, "pruner": "none", "study_name": "wf-study",
                     "search_space": {"agent.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3,
                                                              "log": True}}},
            "tracking": {"enabled": False}}
    cfg = ExperimentConfig.model_validate(base)
    return apply_overrides(cfg, over) if over else cfg


@pytest.fixture(scope="module")
def wf_prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wf")
    cfg = wf_config(tmp)
    return cfg, prepare(cfg)


def test_trial_folds():
    fixed = ExperimentConfig()
    assert trial_mod.trial_folds(fixed) == [0]
    wf = ExperimentConfig.model_validate({"data": {"splits": {"mode": "walk_forward", "folds": 4, "fold": 2}},
                                          "tune": {"objective_folds": 2}})
    assert trial_mod.trial_folds(wf) == [1, 2]
    last = ExperimentConfig.model_validate({"data": {"splits": {"mode": "walk_forward", "folds": 3}},
                                            "tune": {"objective_folds": 5}})
    assert trial_mod.trial_folds(last) == [0, 1, 2]
    from intradayjules.config import config_from_dict
    from intradayjules.errors import ConfigError

    with pytest.raises(ConfigError, match="objective_folds > 1 needs data.splits.mode: walk_forward"):
        config_from_dict({"tune": {"objective_folds": 2}})


class Reporter:
    checkpoint_every = None

    def __init__(self):
        self.steps = []

    def report(self, step, value):
        self.steps.append(step)
        return False

    def restore_dir(self):
        return None


def test_the_trial_runs_inside_the_guard_and_reports_per_fold(wf_prepared, monkeypatch, tmp_path):
    cfg, prepared = wf_prepared
    cfg = apply_overrides(cfg, {"tune.study_name": "guard-study"})
    seen = []

    def fake_train(prep, run_dir, *, cfg, hooks=(), **kw):
        # inside the trial: validation and training are fine, the test block raises
        prep.env_data.session_indices("val")
        prep.env_data.session_indices("train")
        try:
            prep.env_data.session_indices("test")
            seen.append(("test", "allowed"))
        except HeldOutAccessError:
            seen.append(("test", "refused", prep.env_data.fold))
        val_days = pd.DatetimeIndex(prep.env_data.splits["val"])
        for i in range(2):
            for h in hooks:
                h(SimpleNamespace(model=None, num_timesteps=i, last_daily_bps=pd.Series(1.0 + i, index=val_days)),
                  {"eval/objective": float(prep.env_data.fold)})
        return SimpleNamespace(evaluations=[{"eval/objective": float(prep.env_data.fold)}], model_path=None)

    monkeypatch.setattr(trial_mod, "train", fake_train)
    monkeypatch.setattr(trial_mod, "_PREPARED", {})
    monkeypatch.setattr(trial_mod, "prepared_for", lambda c, p=None: prepared)
    rep = Reporter()
    value = trial_mod.dqn_trial({"agent.learning_rate": 3e-4}, cfg, rep)
    # folds 1 and 2 (objective_folds 2, the last fold is tuned), one seed each: the mean of 1 and 2
    assert value == pytest.approx(1.5)
    assert seen == [("test", "refused", 1), ("test", "refused", 2)]
    assert rep.steps == [1, 2, 3, 4]  # fold 1 reports steps 1-2, fold 2 steps 3-4
    # and outside the trial the test block is available again
    assert len(prepared.env_data.session_indices("test")) > 0
    m = load_pnl_matrix(cfg, "guard-study")
    assert list(m.columns) == [trial_mod.trial_key({"agent.learning_rate": 3e-4}, rep)]
    val = set()
    for f in (1, 2):
        val |= {str(np.datetime_as_string(d, unit="D")) for d in prepared.env_data.folds[f]["val"]}
    # the matrix holds both objective folds' validation sessions, and only those, from each fold's latest
    # evaluation (the second: 2.0)
    assert {d.strftime("%Y-%m-%d") for d in m.index} == val
    assert (m.iloc[:, 0] == 2.0).all()


def test_fold_selection_is_the_assessment_statistics():
    rng = np.random.default_rng(0)
    m = pd.DataFrame(rng.normal(0, 1, (40, 5)), columns=list("abcde"))
    m["c"] += 0.8
    s = fold_selection(m, "c", 5)
    ref = deflated_sharpe_from_trials(m, selected="c")
    assert s["dsr"]["dsr"] == pytest.approx(ref.dsr) and s["dsr"]["selected"] == "c"
    assert s["pbo"]["n_trials"] == 5 and s["n_trials_tried"] == 5
    one_session = fold_selection(m.iloc[:1], "c", 5)
    assert "dsr" not in one_session and "2" in one_session["reason"]


def test_daily_record_agrees_with_the_evaluation_statistics(wf_prepared):
    cfg, prepared = wf_prepared
    ecfg = realistic(cfg)
    rng = np.random.default_rng(1)
    policy = lambda obs, info=None: int(rng.integers(0, 19))  # noqa: E731
    stats, res = evaluate_policy(policy, prepared.env_data, ecfg, "test")
    rec = RunRecord("random", 0, daily_record(res), stats)
    s = rec.summary()
    assert s["illiquid_order_share"] == pytest.approx(stats["illiquid_order_share"])
    assert s["illiquid_trade_share"] == pytest.approx(stats["illiquid_trade_share"])
    assert rec.daily["trades"].sum() == stats["n_trades"]
    ret = (1 + rec.daily["pnl"] / 1e4).to_numpy()
    assert np.allclose(ret - 1, res.daily_returns())


def _rec(arm, seed, sessions, values):
    d = pd.DataFrame({"pnl": values, "notional": 1.0, "notional_illiquid": 0.0, "ordered": 1.0,
                      "ordered_illiquid": 0.0, "trades": 1.0}, index=sessions)
    return RunRecord(arm, seed, d)


def test_concat_folds_and_comparison_table():
    f0 = [_rec("m", k, ["d1", "d2"], [1.0 + k, 2.0]) for k in range(2)]
    f1 = [_rec("m", k, ["d3", "d4"], [3.0, 4.0 - k]) for k in range(2)]
    oos = concat_folds([f0, f1])
    assert list(oos[1].daily.index) == ["d1", "d2", "d3", "d4"] and list(oos[1].daily["pnl"]) == [2, 2, 3, 3]
    ref = concat_folds([[_rec("flat", 0, ["d1", "d2"], [0.0, 0.0])], [_rec("flat", 0, ["d3", "d4"], [0.0, 1.0])]])[0]
    t = comparison_table({"m": oos}, {"flat": ref}, n_resamples=1000)
    c = t["contrasts"][0]
    direct = difference(np.vstack([r.daily["pnl"] for r in oos]), ref.daily["pnl"].to_numpy()[None],
                        name_a="m", name_b="flat", n_resamples=1000)
    assert (c["mean_diff_bps"], c["ci_low"], c["ci_high"]) == (direct.estimate, direct.ci_low, direct.ci_high)
    assert t["arms"]["m"]["per_seed"] == [2.5, 2.5]  # [1, 2, 3, 4] and [2, 2, 3, 3]
    with pytest.raises(ValueError, match="same seeds"):
        concat_folds([f0, f1[:1]])


@pytest.mark.slow
def test_tiny_walk_forward_run_never_chooses_on_a_test_block(tmp_path):
    cfg = wf_config(tmp_path)
    res = run_walk_forward(cfg, study="tiny", out=tmp_path / "out")
    folds = res.folds
    assert [f.fold for f in folds] == [0, 1, 2]
    prepared = prepare(cfg)
    tests = [prepared.env_data.folds[i]["test"] for i in range(3)]
    days = lambda a: [str(np.datetime_as_string(d, unit="D")) for d in a]  # noqa: E731
    # the OOS record is the three test blocks in order, once each
    assert res.oos["sessions"] == days(np.concatenate(tests))
    for i, f in enumerate(folds):
        # tuning of fold i saw validation sessions of folds i-1 and i only: all before fold i's test block
        m = load_pnl_matrix(cfg, f"tiny-fold{i}")
        assert m.shape[1] == f.n_trials["complete"] >= 1
        assert max(m.index) < pd.Timestamp(days(tests[i])[0])
        allowed = set()
        for j in range(max(0, i - 1), i + 1):
            allowed |= set(days(prepared.env_data.folds[j]["val"]))
        assert {d.strftime("%Y-%m-%d") for d in m.index} <= allowed
        # retrained on fold i's window with fold i's split: its config says so
        cfg_text = (tmp_path / "out" / f"fold{i}" / "model-seed0" / "config.yaml").read_text()
        assert f"fold: {i}" in cfg_text
        assert len(f.models) == 2 and all(r.daily.index.tolist() == days(tests[i]) for r in f.models)
    written = json.loads((tmp_path / "out" / "walk_forward.json").read_text())
    assert written["oos"]["n_sessions"] == sum(len(t) for t in tests)
    csv = pd.read_csv(tmp_path / "out" / "oos_pnl.csv")
    assert list(csv.columns[:4]) == ["session", "fold", "seed0", "seed1"] and len(csv) == written["oos"]["n_sessions"]
    assert Path(res.paths["png"]).stat().st_size > 1000
