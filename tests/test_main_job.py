"""The main job end to end (slow): quickstart on a small budget, report rendered in headless Chromium."""

import json
import re
import shutil
import subprocess
from html import escape as html_escape
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from intradayjules.agents.references import REFERENCE_NAMES
from intradayjules.cli import app
from intradayjules.evaluate.evaluation import REQUIRED_KEYS
from intradayjules.evaluate.report import SECTIONS

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
SMALL = """
name: e2e
data: {synthetic: {n_symbols: 6, days: 45, seed: 0}}
env: {mode: multi}
agent: {total_timesteps: 3000, learning_starts: 500, buffer_size: 5000, checkpoint_freq: 100000}
risk: {eval_freq: 1000, eval_episodes: 2}
tune:
  n_trials: 4
  workers: 2
  pruner: median
  trial_timesteps: 2000
  reports_per_trial: 4
  search_space:
    agent.learning_rate: {type: float, low: 0.0001, high: 0.001, log: true}
    agent.net_arch: {type: categorical, choices: [[32, 32], [64, 64]]}
"""


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    cfg = work / "small.yaml"
    cfg.write_text(SMALL)
    import os

    old = os.getcwd()
    os.chdir(work)
    try:
        first = runner.invoke(app, ["run", "--config", str(cfg)])
        second = runner.invoke(app, ["run", "--config", str(cfg)])
    finally:
        os.chdir(old)
    return work, first, second


@pytest.mark.slow
def test_quickstart_small_budget_end_to_end(e2e):
    work, first, second = e2e
    assert first.exit_code == 0, first.output
    run_dir = work / "runs" / "e2e"
    summary = json.loads((run_dir / "summary.json").read_text())
    # evaluation JSON with every key
    ev = json.loads(Path(summary["evaluation"]).read_text())
    assert set(REQUIRED_KEYS) <= set(ev), set(REQUIRED_KEYS) - set(ev)
    assert set(ev["costs"]) >= {"spread", "impact", "commission"}
    # the first run's model became the champion (the first version); the rerun trains the same model
    # (same seed, same best trial), which cannot beat the champion on paired daily P&L: it is registered
    # as version 2 with alias challenger, and the reason (an interval of exactly 0) is in the summary
    reg = summary["registered"]
    assert (reg["version"], reg["alias"]) == ("2", "challenger"), reg
    assert reg["promotion"].startswith("challenger: vs champion v1 +0.0 bps/day [+0.0, +0.0]"), reg
    assert "v1 champion: first version" in " ".join(first.output.split())
    os_env = {"MLFLOW_TRACKING_URI": summary["tracking_uri"]}
    import os

    old = {k: os.environ.get(k) for k in os_env}
    os.environ.update(os_env)
    try:
        from intradayjules.track import resolve_model_uri

        path = resolve_model_uri("models:/intradayjules-dqn@champion")
        assert Path(path).exists()
        res = runner.invoke(app, ["evaluate", "--model", "models:/intradayjules-dqn@champion", "--config",
                                  str(work / "small.yaml"), "--json"])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output[res.output.index("{"):])
    assert payload["sharpe"] == pytest.approx(ev["sharpe"], nan_ok=True)
    assert set(payload["policies"]) == {"model", *REFERENCE_NAMES}  # --json holds every policy
    assert set(payload["comparisons"]) == set(REFERENCE_NAMES)
    # the verdict printed by run, at the top of the report, and in the summary
    verdict = summary["verdict"]
    assert verdict.startswith("Model vs flat: ") and f"Verdict: {verdict}" in " ".join(first.output.split())
    # records of every policy, loadable by pandas
    for name in ("model", "baseline", *REFERENCE_NAMES):
        daily = pd.read_parquet(run_dir / "eval" / name / "daily.parquet")
        trades = pd.read_parquet(run_dir / "eval" / name / "trades.parquet")
        assert len(daily) == ev["sessions"] and {"net_bps", "gross_bps", "cost_bps", "partial"} <= set(daily.columns)
        assert name == "flat" or len(trades) > 0, name
    # the report: every section, every reference, the CIs, DSR and PBO, the verdict first
    html = (run_dir / "report.html").read_text()
    ids = re.findall(r'<section id="([a-z]+)">', html)
    assert ids == list(SECTIONS)
    assert html.index("Verdict:") < html.index('<section id="equity">') and html_escape(verdict) in html
    for name in ("baseline", *REFERENCE_NAMES):
        assert f"<td>model vs {name}</td>" in html
    assert "95 % CI" in html and "deflated Sharpe ratio (DSR)" in html and "PBO (CSCV)" in html
    n_trials = summary["selection"]["n_trials"]
    assert f"the best of {n_trials} trials" in verdict and "PBO = " in verdict
    assert html.count("data:image/png;base64,") >= 8
    assert "http://" not in html and "https://" not in html  # self-contained
    # the trials' validation P&L matrix is stored with the study and read back
    assert summary["selection"]["n_trials"] >= 2 and summary["selection"]["trial_sessions"] > 2  # every validation session
    # the model's MLflow run holds the records, the report and the statistics
    from mlflow.tracking import MlflowClient

    client = MlflowClient(summary["tracking_uri"])
    run_id = summary["registered"]["run_id"]
    metrics = client.get_run(run_id).data.metrics
    assert {"dsr/p_value", "pbo/pbo", "compare/flat/ci_low", "compare/buy_hold/p_value", "sharpe/model/se_hac"} <= set(metrics)
    assert metrics["pbo/pbo"] == pytest.approx(summary["selection"]["pbo"])
    arts = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert {"evaluation/report.html", "evaluation/report_data.json", "evaluation/verdict.txt"} <= arts
    assert "evaluation/records/momentum/trades.parquet" in {
        a.path for a in client.list_artifacts(run_id, "evaluation/records/momentum")}


@pytest.mark.slow
def test_rerun_reuses_features_and_study(e2e):
    work, first, second = e2e
    assert second.exit_code == 0, second.output
    assert "feature store hit" in second.output
    assert "feature store miss" in first.output
    t1 = float(re.search(r"tune\s+\d+ complete, \d+ pruned, \d+ failed in (\d+) s", first.output).group(1))
    t2 = float(re.search(r"tune\s+\d+ complete, \d+ pruned, \d+ failed in (\d+) s", second.output).group(1))
    assert t2 < t1  # the finished study is resumed, not rerun


@pytest.mark.slow
def test_report_command_regenerates(e2e):
    work, _, _ = e2e
    run_dir = work / "runs" / "e2e"
    (run_dir / "report.html").unlink()
    res = runner.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    page = (run_dir / "report.html").read_text()
    assert '<section id="tuning">' in page and '<section id="selection">' in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
def test_report_renders_in_headless_chromium(e2e, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    work, _, _ = e2e
    html = (work / "runs" / "e2e" / "report.html").read_text()
    probe = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
             "document.body.setAttribute('data-plots',imgs.filter(i=>i.complete&&i.naturalWidth>100).length);"
             "document.body.setAttribute('data-images',imgs.length);"
             "document.body.setAttribute('data-sections',document.querySelectorAll('section').length);"
             "document.body.setAttribute('data-requests',performance.getEntriesByType('resource')"
             ".filter(e=>!e.name.startsWith('data:')).length);});</script>")
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe + "</body>"))  # a copy: the report itself is untouched
    out = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = out.stdout
    m = re.search(r'data-plots="(\d+)"', dom)
    assert m, (out.stderr[-2000:], dom[:500])
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    assert int(m.group(1)) == images >= 8  # every plot decoded
    assert int(re.search(r'data-sections="(\d+)"', dom).group(1)) == len(SECTIONS)
    assert int(re.search(r'data-requests="(\d+)"', dom).group(1)) == 0  # nothing fetched


@pytest.mark.slow
def test_run_with_ray_backend(tmp_path, monkeypatch):
    """The same command tunes with Ray Tune (a local Ray started and stopped by the run)."""
    pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTRADAYJULES_RAY_TOKEN", str(tmp_path / "ray_token"))
    cfg = tmp_path / "small.yaml"
    cfg.write_text(SMALL.replace("name: e2e", "name: e2e-ray"))
    res = runner.invoke(app, ["run", "--config", str(cfg), "--backend", "ray", "--no-track"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "runs" / "e2e-ray" / "summary.json").read_text())
    assert summary["registered"] is None  # --no-track: nothing registered
    data = json.loads((tmp_path / "runs" / "e2e-ray" / "report_data.json").read_text())
    assert data["tuning"]["backend"] == "ray" and len(data["tuning"]["trials"]) == 4
    # the Ray trials' validation P&L is found by their trial ids: DSR and PBO over all of them
    kept = [t for t in data["tuning"]["trials"] if t["state"] in ("complete", "pruned")]
    assert data["assessment"]["n_trials"] == len(kept) >= 2 and data["assessment"]["pbo"] is not None
    assert not (tmp_path / "runs" / "mlflow.db").exists()


@pytest.mark.slow
def test_mlflow_records_baseline_report_and_dataset(e2e):
    """Issue 18: the baseline is a tracked run, the report is on the model's run, both name their data."""
    work, first, _ = e2e
    assert first.exit_code == 0, first.output
    summary = json.loads((work / "runs" / "e2e" / "summary.json").read_text())
    from intradayjules.track import Tracker, TrackingTarget

    tracker = Tracker(TrackingTarget(uri=summary["tracking_uri"], artifact_location=None))
    runs = {}
    for r in tracker.client.search_runs([tracker.experiment_id], max_results=1000):
        runs.setdefault(r.info.run_name, []).append(r)
    model = tracker.client.get_run(summary["registered"]["run_id"])
    baseline = runs["e2e-baseline"][0]  # the second job trains its own baseline run too
    assert baseline.data.tags["intradayjules.role"] == "baseline"
    assert any(k.startswith("eval/") for k in baseline.data.metrics)        # metrics by step
    assert "test/total_return" in baseline.data.metrics                     # its test statistics
    model_files = {k for k in model.data.tags if k.startswith("intradayjules.sha256/report/")}
    assert {"intradayjules.sha256/report/report.html", "intradayjules.sha256/report/summary.json"} <= model_files
    for run in (model, baseline):
        (ds,) = run.inputs.dataset_inputs
        assert ds.dataset.digest == run.data.tags["intradayjules.data_fingerprint"]
        assert ds.dataset.name == "synthetic"
    exp = tracker.client.get_experiment(tracker.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
