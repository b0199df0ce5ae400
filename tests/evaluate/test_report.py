"""The tear-sheet report: every section, every reference, the CIs, DSR and PBO, the verdict first; one
self-contained file whose every plot decodes in headless Chromium with no external request."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from intradayjules.agents.references import REFERENCE_NAMES, reference_policy
from intradayjules.env import make_env
from intradayjules.evaluate.report import SECTIONS, render_report, suite_data, write_report_data
from intradayjules.config import ExperimentConfig
from intradayjules.evaluate.suite import evaluate_suite


def small_config(tmp) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "name": "t", "workdir": str(tmp / "runs"), "data": {"synthetic": {"n_symbols": 6, "days": 45, "seed": 0}},
        "features": {"store_dir": str(tmp / "store")}, "env": {"mode": "multi"}, "tracking": {"enabled": False}})


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from intradayjules.pipeline.prepare import prepare

    tmp = tmp_path_factory.mktemp("report")
    cfg = small_config(tmp)
    prepared = prepare(cfg)
    env = make_env(cfg, None, split="test", data=prepared.env_data)
    rng = np.random.default_rng(0)
    trials = pd.DataFrame(rng.normal(0, 10, (18, 5)), index=pd.bdate_range("2025-01-02", periods=18),
                          columns=[str(i) for i in range(5)])
    suite = evaluate_suite({"model": reference_policy("momentum", env, seed=1)}, prepared.env_data, cfg, "test",
                           references=[n for n in REFERENCE_NAMES if n != "momentum"], trial_pnl=trials,
                           selected="3", descriptions={"model": "momentum standing in for a model"},
                           n_resamples=2000)
    run_dir = tmp / "run"
    records = suite.write(run_dir / "eval")
    data = {"name": "t", "summary": "a test", **suite_data(suite, records, run_dir),
            "training": [{"timesteps": 1000, "risk/composite": 0.3, "eval/objective": -1.0},
                         {"timesteps": 2000, "risk/composite": 0.2, "eval/objective": 0.5}],
            "tuning": {"trials": [{"number": i, "state": s, "value": v} for i, (s, v) in
                                  enumerate([("complete", 1.0), ("pruned", -2.0), ("complete", 0.5), ("failed", None),
                                             ("complete", 2.0)])],
                       "importances": {"agent.learning_rate": 0.7, "risk.illiquid_penalty_multiplier": 0.3},
                       "best_params": {"agent.learning_rate": 1e-4}, "wall_s": 12.0, "best_value": 2.0},
            "lineage": {"data_fingerprint": "abc"}}
    write_report_data(run_dir, data)
    return suite, run_dir, render_report(run_dir)


def test_report_has_every_section_reference_and_statistic(report):
    suite, run_dir, path = report
    page = path.read_text()
    ids = re.findall(r'<section id="([a-z]+)">', page)
    assert ids == list(SECTIONS) and ids[0] == "verdict"
    assert page.index("Verdict:") < page.index('<section id="equity">')
    assert html.escape(suite.verdict) in page
    for name in REFERENCE_NAMES:
        if name != "momentum":
            assert f"<td>model vs {name}</td>" in page, name  # one comparison row per reference
    assert "95 % CI" in page and "p (bootstrap)" in page
    assert "deflated Sharpe ratio (DSR)" in page and "PBO (CSCV)" in page
    assert "the best of 5 trials" in page and "18 validation session" in page
    assert "Ranking by mean daily net P&amp;L" in page
    assert 'id="costs"' in page and "buy_hold_liquid" in page and "Largest fills" in page
    assert "http://" not in page and "https://" not in page
    # equity, drawdown, distribution, PBO logits, training x2, tuning history, importances
    assert page.count("data:image/png;base64,") == 8


def test_report_regenerates_from_its_data(report):
    _, run_dir, path = report
    first = path.read_text()
    path.unlink()
    assert render_report(run_dir).read_text() == first  # deterministic, from report_data.json and the records
    data = json.loads((run_dir / "report_data.json").read_text())
    assert set(data["policies"]) == {"model", *[n for n in REFERENCE_NAMES if n != "momentum"]}


def test_report_without_tuning_or_records_says_so(report, tmp_path):
    _, run_dir, _ = report
    data = json.loads((run_dir / "report_data.json").read_text())
    data["assessment"]["dsr"] = data["assessment"]["pbo"] = None
    data["assessment"]["selection_note"] = "no tuning trials with validation P&L"
    data["tuning"], data["training"] = {}, []
    write_report_data(tmp_path, data)  # the records' relative paths do not exist under tmp_path
    page = render_report(tmp_path).read_text()
    assert "no tuning in this run" in page and "no tuning trials with validation P&amp;L" in page
    assert "no trades files found" in page and "no trades file" in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


PROBE = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
         "const b=document.body;b.setAttribute('data-plots',imgs.filter(i=>i.complete&&i.naturalWidth>100).length);"
         "b.setAttribute('data-images',imgs.length);"
         "b.setAttribute('data-sections',document.querySelectorAll('section').length);"
         "b.setAttribute('data-requests',performance.getEntriesByType('resource')"
         ".filter(e=>!e.name.startsWith('data:')).length);});</script>")


def chromium_probe(html: str, tmp_path) -> dict[str, int]:
    """Load the page (a copy with a probe script) in headless Chromium: decoded plots, images, sections and
    resource requests other than data URIs."""
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"))
    out = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    got = {k: re.search(rf'data-{k}="(\d+)"', out.stdout) for k in ("plots", "images", "sections", "requests")}
    assert all(got.values()), (out.stderr[-2000:], out.stdout[:500])
    return {k: int(m.group(1)) for k, m in got.items()}


def test_report_renders_in_headless_chromium(report, tmp_path):
    _, _, path = report
    got = chromium_probe(path.read_text(), tmp_path)
    assert got["plots"] == got["images"] == 8
    assert got["sections"] == len(SECTIONS) and got["requests"] == 0


def test_seed_comparison_is_in_the_comparison_section(report, tmp_path):
    """A run with agent.n_seeds > 1 shows the training set-up over its seeds: per-seed values and each contrast
    with its two-level interval, from ``pipeline.compare.comparison_table`` (numbers checked by hand)."""
    import json
    import shutil

    from intradayjules.pipeline.compare import RunRecord, comparison_table

    _, run_dir, _ = report
    days = pd.bdate_range("2025-03-03", periods=6)

    def rec(arm, seed, values):
        d = pd.DataFrame({"pnl": values, "notional": 1.0, "notional_illiquid": 0.0, "ordered": 1.0,
                          "ordered_illiquid": 0.0, "trades": 1.0}, index=days)
        return RunRecord(arm, seed, d)

    arms = {"model": [rec("model", 0, [1.0] * 6), rec("model", 1, [3.0] * 6)],
            "baseline": [rec("baseline", 0, [0.0] * 6), rec("baseline", 1, [-2.0] * 6)]}
    table = comparison_table(arms, n_resamples=500)
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    data = json.loads((dst / "report_data.json").read_text())
    data["comparison"] = table
    write_report_data(dst, data)
    page = render_report(dst).read_text()
    ids = re.findall(r'<section id="([a-z]+)">', page)
    assert ids == list(SECTIONS)  # inside the comparison section, not a new one
    part = page[page.index('<section id="comparison">'):page.index('<section id="selection">')]
    assert "The training set-up over 2 seeds" in part
    assert "<td>model</td><td>2</td><td>1.414</td><td>1, 3</td>" in part  # mean 2, sd sqrt(2)
    assert "<td>model - baseline</td><td>3</td>" in part  # 2 - (-1)
    without = render_report(run_dir).read_text()
    assert "The training set-up over" not in without
