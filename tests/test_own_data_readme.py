"""The README's own-data command on 1-, 2- and 30-symbol data (issue 18; slow: each is a whole main job
on a small budget). Multi mode trades the symbols the data has, up to env.n_assets, and says so."""

import json

import pytest
from typer.testing import CliRunner

from intradayjules.cli import app
from intradayjules.config import SyntheticConfig
from intradayjules.data.synthetic import generate

runner = CliRunner()
SMALL = ["--no-track", "--trials", "2", "--workers", "1", "--timesteps", "2500", "--set", "tune.trial_timesteps=1500",
         "--set", "tune.reports_per_trial=2", "--set", "agent.learning_starts=500", "--set", "risk.eval_freq=1000",
         "--set", "risk.eval_episodes=2", "--set", "agent.buffer_size=5000"]


def _run(tmp_path, data, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the command as a user runs it, from their own directory
    res = runner.invoke(app, ["run", "--config", "quickstart", "--data", str(data), "--json", *SMALL])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1]), res


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2])
def test_readme_command_on_few_symbols(tmp_path, monkeypatch, n):
    market = generate(SyntheticConfig(n_symbols=6, days=45, seed=3))
    frame = market.bars.frame
    keep = sorted(frame["symbol"].unique())[:n]
    data = tmp_path / "bars.csv"
    sub = frame[frame["symbol"].isin(keep)][["timestamp", "symbol", "open", "high", "low", "close", "volume"]]
    sub.to_csv(data, index=False)
    summary, res = _run(tmp_path, data, monkeypatch)
    assert f"env.n_assets is 6 but the data has {n} symbol" in res.output
    run_dir = tmp_path / "runs" / "quickstart"
    lineage = json.loads((run_dir / "model" / "lineage.json").read_text())
    assert sorted(lineage["symbols"].split(",")) == keep
    cfg_text = (run_dir / "model" / "config.yaml").read_text()
    assert "source: path" in cfg_text and str(data.resolve()) in cfg_text  # the data it really used
    assert summary["report"].endswith("report.html")


@pytest.mark.slow
@pytest.mark.realdata
def test_readme_command_on_the_30_symbol_real_set(tmp_path, monkeypatch, shared_data_dir):
    assert len(list(shared_data_dir.glob("*.csv")) + list(shared_data_dir.glob("*.parquet"))) >= 30
    summary, res = _run(tmp_path, shared_data_dir, monkeypatch)
    lineage = json.loads((tmp_path / "runs" / "quickstart" / "model" / "lineage.json").read_text())
    assert len(lineage["symbols"].split(",")) == 6  # env.n_assets of the 30
    assert lineage["data_source"] == str(shared_data_dir) or lineage["data_source"] == str(shared_data_dir.resolve())
    assert summary["report"].endswith("report.html") and "env.n_assets" not in res.output
