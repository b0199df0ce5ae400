"""examples/walkthrough.py (the Python API notebook, Jupytext percent format) runs top to bottom."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "walkthrough.py"


def test_walkthrough_runs_and_reports_both_policies(tmp_path):
    env = {**os.environ, "IJ_WALKTHROUGH_DIR": str(tmp_path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=180,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    text = out.stdout
    # the run directory of the short training run, with its model
    assert (tmp_path / "runs" / "walkthrough" / "model.zip").is_file()
    # 3,000 steps asked; SB3 collects from env.n_envs (16) slots at once, so it stops at the first multiple
    steps = re.search(r"^(\d+) steps in [\d.]+ s", text, re.M)
    assert steps and 3000 <= int(steps.group(1)) < 3000 + 16, text
    # flat never trades: zero return and turnover on the same test sessions as the model (by hand)
    dqn = re.search(r"^dqn\s+sessions (\d+)", text, re.M)
    flat = re.search(r"^flat\s+sessions (\d+)\s+total return \+0\.0000%\s+turnover 0\.00$", text, re.M)
    assert dqn and flat and dqn.group(1) == flat.group(1), text


def test_walkthrough_is_a_jupytext_percent_script():
    text = SCRIPT.read_text()
    assert "format_name: percent" in text
    cells = re.findall(r"^# %%", text, re.M)
    assert len(cells) >= 10
