"""CLI: config validate/show, data validate/synth, run (data stage)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from intradayjules.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_config_validate_and_show(tmp_path):
    ok = runner.invoke(app, ["config", "validate", str(REPO / "examples/configs/quickstart.yaml")])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  position_size: -1\n")
    res = runner.invoke(app, ["config", "validate", str(bad)])
    assert res.exit_code == 2
    assert "env.position_size: must be > 0" in res.output
    shown = runner.invoke(app, ["config", "show", str(REPO / "examples/configs/quickstart.yaml")])
    assert shown.exit_code == 0 and "learning_rate: 0.0001" in shown.output


def test_data_validate_reports_first_errors_and_exits_1(tmp_path):
    p = tmp_path / "BAD_5min.csv"
    p.write_text("datetime,open,high,low,close,volume\n2025-06-02 09:30:00,10,9,9,10,5\n")
    res = runner.invoke(app, ["data", "validate", str(p)])
    assert res.exit_code == 1
    assert "line 2" in res.output and "high_below" in res.output


def test_synth_is_deterministic_and_validates(tmp_path):
    outs = []
    for name in ("a", "b"):
        res = runner.invoke(app, ["data", "synth", "--symbols", "3", "--days", "4", "--seed", "3",
                                  "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        outs.append(pd.read_parquet(tmp_path / name / "bars.parquet"))
    pd.testing.assert_frame_equal(*outs)
    res = runner.invoke(app, ["data", "validate", str(tmp_path / "a" / "bars.parquet")])
    assert res.exit_code == 0, res.output
    assert "LQ01" in res.output and "IL01" in res.output


def test_console_script_on_shared_data(shared_data_dir):
    exe = Path(sys.executable).with_name("intradayjules")
    res = subprocess.run([str(exe), "data", "validate", str(shared_data_dir)], capture_output=True, text=True,
                         timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    rows = {line.split("│")[1].strip(): line for line in res.stdout.splitlines() if line.count("│") > 5}
    assert rows["SPY"].rstrip(" │").endswith("liquid") and "illiquid" not in rows["SPY"]
    assert "illiquid" in rows["WEBL"]


def test_run_stops_at_validation_on_bad_user_data(tmp_path, monkeypatch):
    """Bad user data stops the main job at validation, naming file and line, before any training
    (the whole job on good data is tests/test_main_job.py)."""
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "X_5min.csv"
    p.write_text("datetime,open,high,low,close,volume\n2025-06-02 09:30:00,10,11,9,10,-5\n")
    res = runner.invoke(app, ["run", "--config", str(REPO / "examples/configs/quickstart.yaml"), "--data", str(p)])
    assert res.exit_code == 1
    assert "X_5min.csv" in res.output and "line 2" in res.output
    assert "data failed" in res.output
    assert not (tmp_path / "runs" / "quickstart" / "model").exists()  # nothing was trained


def test_cli_reference_is_in_step_with_the_commands(tmp_path):
    """docs/cli.md is generated; regenerate with
    `.venv/bin/typer intradayjules.cli utils docs --name intradayjules --output docs/cli.md`."""
    typer_exe = Path(sys.executable).with_name("typer")
    out = tmp_path / "cli.md"
    res = subprocess.run([str(typer_exe), "intradayjules.cli", "utils", "docs", "--name", "intradayjules",
                          "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.read_text() == (REPO / "docs/cli.md").read_text(), "docs/cli.md is out of date: regenerate it"
