"""``intradayjules evaluate``: the model and the references in one table, the verdict, --json with every policy."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from intradayjules.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from intradayjules.config import load_config
    from intradayjules.pipeline.prepare import prepare
    from intradayjules.pipeline.train_run import train

    tmp = tmp_path_factory.mktemp("cli_eval")
    cfg_file = tmp / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({
        "name": "ce", "workdir": str(tmp / "runs"), "data": {"synthetic": {"n_symbols": 6, "days": 45, "seed": 0}},
        "features": {"store_dir": str(tmp / "store")}, "env": {"mode": "multi"},
        "agent": {"total_timesteps": 400, "learning_starts": 200, "buffer_size": 1000, "checkpoint_freq": 100000},
        "risk": {"eval_freq": 400, "eval_episodes": 1}, "tracking": {"enabled": False}}))
    cfg = load_config(cfg_file)
    res = train(prepare(cfg), tmp / "runs" / "ce", cfg=cfg, checkpoints=False)
    return cfg_file, res.model_path


def test_json_holds_every_policy_and_the_comparisons(trained):
    cfg_file, model = trained
    r = runner.invoke(app, ["evaluate", "--model", str(model), "--config", str(cfg_file), "--baselines",
                            "flat,buy_hold", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[r.output.index("{"):])
    assert set(d["policies"]) == {"model", "flat", "buy_hold"} and set(d["comparisons"]) == {"flat", "buy_hold"}
    assert d["sharpe"] == d["policies"]["model"]["sharpe"]  # the model's statistics at the top level too
    assert d["verdict"].startswith("Model vs flat: ")
    # model minus flat on paired daily P&L is the model's own mean daily P&L
    assert d["comparisons"]["flat"]["mean_diff"] == pytest.approx(d["policies"]["model"]["mean_daily_return_bps"])
    assert d["policies"]["flat"]["n_trades"] == 0 and d["sharpes"]["flat"]["reason"] == "no variance"
    assert len(d["full_sessions"]) == d["sessions"] and d["excluded_partial_sessions"] == []


def test_table_and_verdict_and_bad_names(trained):
    cfg_file, model = trained
    r = runner.invoke(app, ["evaluate", "--model", str(model), "--config", str(cfg_file)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    for name in ("flat", "buy_hold_liquid", "random", "momentum", "reversal"):
        assert f"│ {name} " in r.output
    assert "95 % CI" in r.output and "Verdict: Model vs flat" in r.output
    bad = runner.invoke(app, ["evaluate", "--model", str(model), "--config", str(cfg_file), "--baselines", "hodl"])
    assert bad.exit_code == 2 and "unknown reference policy 'hodl'" in bad.output
