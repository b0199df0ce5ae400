"""``experiment agents``: algorithms x seeds on the same sessions (walk-forward folds when configured), reported
against every reference policy."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from intradayjules.agents.policy import policy_from_model
from intradayjules.agents.sb3 import load_model
from intradayjules.cli import app
from intradayjules.config import apply_overrides, dump_config
from intradayjules.evaluate.evaluation import evaluate_policy
from intradayjules.pipeline import agents_experiment as exp
from intradayjules.pipeline.prepare import prepare

from .conftest import small_config

AGENT = {"ppo": {"n_steps": 250, "batch_size": 50, "n_epochs": 2}, "a2c": {"n_steps": 10}}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agents-exp")
    cfg = small_config(tmp, agent=AGENT)
    summary = exp.run(cfg, ["dqn", "ppo"], seeds=2, timesteps=1000, out_dir=tmp / "out")
    return cfg, tmp, summary


def test_report_per_algorithm_matches_an_independent_recomputation(result):
    cfg, tmp, summary = result
    written = json.loads((tmp / "out" / "agents_experiment.json").read_text())
    assert set(written["algorithms"]) == {"dqn", "ppo"} and written["config"]["seeds"] == 2
    prepared = prepare(cfg)
    eval_cfg = apply_overrides(cfg, {"market.model": "realistic"})
    n_test = len(prepared.env_data.splits["test"])
    assert summary["references"]["flat"] == {"mean_daily_bps": 0.0, "sessions": n_test}
    from intradayjules.agents.references import REFERENCE_NAMES
    from intradayjules.evaluate.seeds import difference

    assert set(summary["references"]) == set(REFERENCE_NAMES)
    for algo in ("dqn", "ppo"):
        entry = summary["algorithms"][algo]
        daily = []
        for s in range(2):  # reload each seed's model and evaluate it again, outside the experiment
            model = load_model(tmp / "out" / "split" / f"{algo}-seed{s}" / "model.zip")
            assert model.seed == cfg.agent.seed + s
            _, res = evaluate_policy(policy_from_model(model), prepared.env_data, eval_cfg, "test")
            daily.append((res.closing_equity() / res.initial_equity - 1.0).to_numpy() * 1e4)
        per_seed = [float(d.mean()) for d in daily]
        m = entry["mean_daily_bps"]
        assert [m["per_seed"][str(s)] for s in range(2)] == pytest.approx(per_seed, rel=1e-9, abs=1e-9)
        assert m["mean"] == pytest.approx(np.mean(per_seed)) and m["sd"] == pytest.approx(np.std(per_seed, ddof=1))
        vs = entry["vs_flat"]
        # flat earns 0 on every session: the paired difference is the seed-averaged P&L itself
        assert vs["n"] == n_test and vs["mean_diff"] == pytest.approx(np.mean(np.mean(daily, axis=0)))
        assert vs["ci_low"] <= vs["mean_diff"] <= vs["ci_high"]
        assert vs["per_seed"]["1"]["mean_diff"] == pytest.approx(per_seed[1])
        # the two-level interval (seeds and sessions resampled) against an independent call, for buy_hold
        bh = entry["vs_buy_hold"]
        ref = np.full((1, n_test), np.nan)
        _, rb = evaluate_policy(_buy_hold(cfg, prepared), prepared.env_data, eval_cfg, "test")
        ref[0] = (rb.closing_equity() / rb.initial_equity - 1.0).to_numpy() * 1e4
        want = difference(np.vstack(daily), ref, name_a=algo, name_b="buy_hold")
        assert bh["two_level"]["mean_diff"] == pytest.approx(want.estimate)
        assert bh["two_level"]["ci_low"] == pytest.approx(want.ci_low)
        assert bh["two_level"]["ci_high"] == pytest.approx(want.ci_high)
        assert entry["timesteps"] == [1000, 1000]


def _buy_hold(cfg, prepared):
    from intradayjules.agents.references import reference_policy
    from intradayjules.env import make_env

    eval_cfg = apply_overrides(cfg, {"market.model": "realistic"})
    return reference_policy("buy_hold", make_env(eval_cfg, None, split="test", data=prepared.env_data))


def test_walk_forward_configs_run_on_every_fold(tmp_path):
    cfg = small_config(tmp_path, data={"splits": {"mode": "walk_forward", "folds": 2}})
    prepared = prepare(cfg)
    folds = exp.config_folds(prepared)
    assert [f.name for f in folds] == ["fold0", "fold1"]
    tests = [f.env_data.splits["test"] for f in folds]
    assert tests[0][-1] < tests[1][0]  # consecutive, non-overlapping test blocks
    # each fold standardises on its own training sessions
    assert [f.env_data.scaler.sessions[-1] for f in folds] == [
        str(np.datetime_as_string(f.env_data.splits["train"][-1], unit="D")) for f in folds]


def test_folds_plug_in_and_their_test_days_are_concatenated(result, tmp_path):
    cfg, tmp, _ = result
    prepared = prepare(cfg)
    ed = prepared.env_data
    sp = ed.splits
    # a second fold whose test block is the first fold's validation block: disjoint test sessions
    half = len(sp["train"]) // 2
    early = dataclasses.replace(ed, splits={"train": sp["train"][:half], "val": sp["train"][half:],
                                            "test": sp["val"]})
    folds = [exp.Fold("late", ed), exp.Fold("early", early)]
    summary = exp.run(cfg, ["a2c"], seeds=1, timesteps=500, out_dir=tmp_path, folds=folds)
    assert summary["config"]["folds"] == ["late", "early"]
    assert summary["algorithms"]["a2c"]["vs_flat"]["n"] == len(sp["test"]) + len(sp["val"])
    assert (tmp_path / "early" / "a2c-seed0" / "model.zip").exists()


def test_cli_runs_and_rejects_unknown_algorithms(result, tmp_path):
    cfg, _, _ = result
    path = tmp_path / "small.yaml"
    path.write_text(dump_config(cfg))
    runner = CliRunner()
    res = runner.invoke(app, ["experiment", "agents", "-c", str(path), "--algos", "a2c", "--seeds", "1",
                              "--timesteps", "300", "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert "a2c:" in res.output and "vs_flat" in res.output
    assert json.loads((tmp_path / "cli" / "agents_experiment.json").read_text())["config"]["algos"] == ["a2c"]
    bad = runner.invoke(app, ["experiment", "agents", "-c", str(path), "--algos", "dqn,sac", "--seeds", "1"])
    assert bad.exit_code != 0 and "sac" in bad.output
    assert yaml.safe_load(path.read_text())["agent"]["algo"] == "dqn"
