"""Survivorship report: hand-computed portfolio returns, metrics against empyrical, and recovery of the
bias the synthetic CRSP generator builds in."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from intradayjules.data.crsp import read_crsp
from intradayjules.data.crsp_synth import CrspSynthParams, ann_return, max_drawdown, write_crsp
from intradayjules.evaluate.survivorship import survivorship_report

HEAD = "PERMNO,date,SHRCD,EXCHCD,TICKER,COMNAM,PRC,VOL,RET,RETX,SHROUT,CFACPR,CFACSHR\n"
runner = CliRunner()


def test_metrics_match_empyrical():
    empyrical = pytest.importorskip("empyrical")
    r = np.random.default_rng(1).normal(0.0004, 0.015, size=500)
    assert ann_return(r) == pytest.approx(empyrical.annual_return(pd.Series(r), period="daily"), rel=1e-10)
    assert max_drawdown(r) == pytest.approx(-empyrical.max_drawdown(pd.Series(r)), rel=1e-10)
    m = r[:60] * 4
    assert ann_return(m, 12) == pytest.approx(empyrical.annual_return(pd.Series(m), period="monthly"), rel=1e-10)


def test_hand_computed_pit_and_survivor_returns(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "dsf.csv").write_text(HEAD + "\n".join([
        "1,20200102,11,1,A,A,10,100,C,C,1000,1,1",
        "1,20200103,11,1,A,A,11,100,0.10,0.10,1000,1,1",
        "1,20200106,11,1,A,A,11,100,0.00,0.00,1000,1,1",
        "1,20200107,11,1,A,A,12.1,100,0.10,0.10,1000,1,1",
        "2,20200102,11,3,B,B,10,100,C,C,1000,1,1",
        "2,20200103,11,3,B,B,9,100,-0.10,-0.10,1000,1,1",
        "2,20200106,11,3,B,B,8.1,100,-0.10,-0.10,1000,1,1",   # delists here, DLRET missing -> -55 %
    ]) + "\n")
    (d / "dsedelist.csv").write_text("PERMNO,DLSTDT,DLSTCD,DLRET,DLRETX,DLPRC\n2,20200106,560,,,\n")
    rep = survivorship_report(read_crsp(d))
    r = rep.returns
    assert list(r.index.strftime("%m-%d")) == ["01-03", "01-06", "01-07"]
    assert r["pit"].tolist() == pytest.approx([(0.10 - 0.10) / 2, (0.0 + (0.9 * 0.45 - 1)) / 2, 0.10])
    assert r["survivors"].tolist() == pytest.approx([0.10, 0.0, 0.10])
    pit_growth = (1.0) * (1 + (0.9 * 0.45 - 1) / 2) * 1.10
    assert rep.stats["pit_ann"] == pytest.approx(pit_growth ** (252 / 3) - 1)
    assert rep.stats["pit_mdd"] == pytest.approx(-(0.9 * 0.45 - 1) / 2)
    assert rep.stats["survivors_mdd"] == 0.0
    assert rep.stats["n_filled"] == 1 and rep.stats["n_survivors"] == 1


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("crsp_synth")
    write_crsp(out, CrspSynthParams(seed=7))
    return out


def test_report_recovers_the_generators_bias(synth_dir):
    truth = json.loads((synth_dir / "truth.json").read_text())
    rep = survivorship_report(read_crsp(synth_dir))
    s, real, exp = rep.stats, truth["realised"], truth["expected"]
    # exactly the generator's own books (up to the 4-decimal prices, which do not enter returns)
    for k in ("pit_ann", "survivors_ann", "bias_ann", "pit_mdd", "survivors_mdd", "bias_mdd"):
        assert s[k] == pytest.approx(real[k], abs=1e-9), k
    assert s["periods"] == truth["periods"] and s["n_survivors"] == truth["n_survivors"]
    assert s["n_delistings"] == truth["n_delisted"]
    # and the bias implied by the parameters, within 4 sampling sd
    assert exp["bias_ann"] > 5 * exp["bias_ann_sd"] > 0
    assert abs(s["bias_ann"] - exp["bias_ann"]) < 4 * exp["bias_ann_sd"]
    assert s["bias_mdd"] > 0


def test_no_doomed_firms_means_mergers_make_the_bias_negative(tmp_path):
    write_crsp(tmp_path, CrspSynthParams(seed=3, doomed_frac=0.0, merger_frac=0.3, n_firms=120, days=504))
    truth = json.loads((tmp_path / "truth.json").read_text())
    s = survivorship_report(read_crsp(tmp_path)).stats
    exp = truth["expected"]
    assert exp["bias_ann"] < 0  # takeover premia are earned only by the PIT portfolio
    assert abs(s["bias_ann"] - exp["bias_ann"]) < 4 * exp["bias_ann_sd"]
    assert s["bias_ann"] == pytest.approx(truth["realised"]["bias_ann"], abs=1e-9)


def test_dropping_delisting_returns_understates_the_bias(synth_dir, tmp_path):
    shutil.copy(synth_dir / "dsf.csv", tmp_path / "dsf.csv")
    with_dl = survivorship_report(read_crsp(synth_dir)).stats
    without = survivorship_report(read_crsp(tmp_path)).stats
    assert without["n_delistings"] == 0
    assert without["bias_ann"] < with_dl["bias_ann"] - 0.01


def test_cli_synth_then_report(tmp_path):
    from intradayjules.cli.crsp_cmd import app as crsp_app
    from intradayjules.cli.survivorship_cmd import app

    out = tmp_path / "c"
    res = runner.invoke(crsp_app, ["synth", "--out", str(out), "--firms", "60", "--days", "300", "--seed", "2"])
    assert res.exit_code == 0, res.output
    truth = json.loads((out / "truth.json").read_text())
    js = tmp_path / "stats.json"
    res = runner.invoke(app, ["report", "--crsp", str(out), "--out", str(js)])
    assert res.exit_code == 0, res.output
    stats = json.loads(js.read_text())
    assert stats["bias_ann"] == pytest.approx(truth["realised"]["bias_ann"], abs=1e-9)
    assert "survivors only" in res.output and "built-in bias" in res.output
    printed = runner.invoke(app, ["report", "--crsp", str(out), "--json"])  # --json: one JSON object on stdout
    assert printed.exit_code == 0 and json.loads(printed.stdout)["bias_ann"] == stats["bias_ann"]
    res = runner.invoke(app, ["report", "--crsp", str(out), "--start", "2015-06-01", "--end", "2015-12-31",
                              "--top-n", "20", "--out", str(js)])
    assert res.exit_code == 0, res.output
    stats = json.loads(js.read_text())
    assert stats["start"] >= "2015-06-01" and stats["end"] <= "2015-12-31"
    assert stats["pit_mean_members"] <= 20


def test_cli_report_bad_file_exits_1_naming_the_line(tmp_path):
    from intradayjules.cli.survivorship_cmd import app

    (tmp_path / "dsf.csv").write_text(HEAD + "1,20200102,11,1,A,A,10,100,C,C,1000,1,1\n"
                                      "1,20200103,11,1,A,A,10,100,1.2.3,C,1000,1,1\n")
    res = runner.invoke(app, ["report", "--crsp", str(tmp_path)])
    assert res.exit_code == 1
    assert "line 3" in res.output and "RET" in res.output
    (tmp_path / "dsf.csv").write_text(HEAD + "1,20200102,11,1,A,A,10,100,C,C,1000,1,1\n")
    res = runner.invoke(app, ["report", "--crsp", str(tmp_path)])
    assert res.exit_code == 1 and "empty_universe" in res.output
