"""CRSP as users have it (issue 20): one hand-written fixture per layout WRDS/CRSP produce
(tests/data/fixtures/crsp/README.md), each with a delisting; the survivorship report's numbers are computed
here by hand from the fixture's returns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from intradayjules.config import CrspConfig
from intradayjules.data.crsp import read_crsp
from intradayjules.data.pit import pit_status
from intradayjules.data.universe import apply_delisting, crsp_universe, delisting_events, read_membership
from intradayjules.errors import DataError
from intradayjules.evaluate.survivorship import survivorship_report

FIX = Path(__file__).parent / "fixtures" / "crsp"
runner = CliRunner()


def ann(rets, ppy):
    return float(np.prod(1 + np.asarray(rets))) ** (ppy / len(rets)) - 1


def mdd(rets):
    w = np.cumprod(np.r_[1.0, 1 + np.asarray(rets)])
    return float(np.max(1 - w / np.maximum.accumulate(w)))


def check(stats, pit, surv, ppy):
    assert stats["pit_ann"] == pytest.approx(ann(pit, ppy), rel=1e-9)
    assert stats["survivors_ann"] == pytest.approx(ann(surv, ppy), rel=1e-9)
    assert stats["bias_ann"] == pytest.approx(ann(surv, ppy) - ann(pit, ppy), rel=1e-9)
    assert stats["pit_mdd"] == pytest.approx(mdd(pit), abs=1e-12)
    assert stats["bias_mdd"] == pytest.approx(mdd(pit) - mdd(surv), abs=1e-12)


# Each case: layout, PIT returns, survivor returns, periods/year, (delistings, performance, filled, in RET)
CASES = {
    # daily SIZ: A (NYSE) +10 %, -5 %, +2 %, 0; B (Nasdaq) -20 %, +5 %, then on Jan 7 RET -10 % and DLRET
    # -40 %: (0.9 x 0.6) - 1 = -0.46; C has SHRCD 73 (an ETF): filtered out.
    "siz_daily": ([(0.10 - 0.20) / 2, (-0.05 + 0.05) / 2, (0.02 - 0.46) / 2, 0.0], [0.10, -0.05, 0.02, 0.0], 252,
                  (1, 1, 0, 0)),
    # monthly merged: A +4, +2, -3, +1 %; B -10, +6 %, then the extra Jan row with PRC/RET empty and
    # DLRET -35 %; C +5, -2, +3, 0 %. No DLSTCD: performance unknown, nothing filled.
    "siz_monthly_merged": ([(0.04 - 0.10 + 0.05) / 3, (0.02 + 0.06 - 0.02) / 3, (-0.03 - 0.35 + 0.03) / 3,
                            (0.01 + 0.00) / 2], [(0.04 + 0.05) / 2, 0.0, 0.0, 0.005], 12, (1, 0, 0, 0)),
    # daily extract, no SHRCD/EXCHCD (filters skipped): A +1, +2, +3 %; B -5 %, then RET -10 % and DLSTCD 574
    # with DLRET missing: the Shumway fill, exchange unknown -> NYSE/AMEX -30 %: 0.9 x 0.7 - 1 = -0.37;
    # C 0, +4, -2 %.
    "siz_daily_extract": ([(0.01 - 0.05 + 0.00) / 3, (0.02 - 0.37 + 0.04) / 3, (0.03 - 0.02) / 2],
                          [0.005, 0.03, 0.005], 252, (1, 1, 1, 0)),
    # 64-column msf: A +3, -2 (the March row twice, for two dividends), +5, +1 %; B -8, -15 %, then April RET
    # -20 % with DLSTCD 584 and DLRET 'S' on Nasdaq: -55 %: 0.8 x 0.45 - 1 = -0.64; C +2 % a month.
    "siz_monthly_full": ([(0.03 - 0.08 + 0.02) / 3, (-0.02 - 0.15 + 0.02) / 3, (0.05 - 0.64 + 0.02) / 3,
                          (0.01 + 0.02) / 2], [0.025, 0.0, 0.035, 0.015], 12, (1, 1, 1, 0)),
    # CIZ daily: A +1, -1, +2, 0 %; B -4, -6 %, then its delisting row (Jun 6, the day after the last trade)
    # with DlyRet -50 %; C is an ETF (SecurityType FUND): filtered out.
    "ciz_daily": ([(0.01 - 0.04) / 2, (-0.01 - 0.06) / 2, (0.02 - 0.50) / 2, 0.0], [0.01, -0.01, 0.02, 0.0], 252,
                  (1, 0, 0, 1)),
    # CIZ monthly: A +2, +1, -1, +3 %; B -10, -5 %, then April MthDelFlg Y with MthRet -60 %; C 0, +4, +2, -2 %.
    "ciz_monthly": ([(0.02 - 0.10 + 0.00) / 3, (0.01 - 0.05 + 0.04) / 3, (-0.01 - 0.60 + 0.02) / 3,
                     (0.03 - 0.02) / 2], [0.01, 0.025, 0.005, 0.005], 12, (1, 0, 0, 1)),
}


@pytest.mark.parametrize("layout", list(CASES))
def test_survivorship_report_on_each_layout_matches_hand_computation(layout):
    pit, surv, ppy, (n_dl, n_perf, n_fill, n_in_ret) = CASES[layout]
    rep = survivorship_report(read_crsp(FIX / layout))
    np.testing.assert_allclose(rep.returns["pit"].to_numpy(), pit, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rep.returns["survivors"].to_numpy(), surv, rtol=0, atol=1e-12)
    check(rep.stats, pit, surv, ppy)
    s = rep.stats
    assert (s["n_delistings"], s["n_performance"], s["n_filled"], s["n_delisting_return_in_ret"]) == (
        n_dl, n_perf, n_fill, n_in_ret)
    assert s["bias_ann"] > 0 and s["bias_mdd"] > 0


@pytest.mark.parametrize("layout", list(CASES))
def test_cli_report_on_each_layout(layout, tmp_path):
    from intradayjules.cli.survivorship_cmd import app

    js = tmp_path / "s.json"
    res = runner.invoke(app, ["report", "--crsp", str(FIX / layout), "--out", str(js)])
    assert res.exit_code == 0, res.output
    pit, surv, ppy, (n_dl, *_rest) = CASES[layout]
    st = json.loads(js.read_text())
    assert st["bias_ann"] == pytest.approx(ann(surv, ppy) - ann(pit, ppy), rel=1e-9)
    assert f"delistings in window: {n_dl}" in res.output


def test_merged_monthly_delisting_row_is_read():
    data = read_crsp(FIX / "siz_monthly_merged")
    (e,) = delisting_events(data)
    assert (e.permno, str(e.date.date()), e.code, e.dlret, e.filled, e.in_ret) == (20002, "2020-01-31", None, -0.35,
                                                                                    False, False)
    row = data.panel[(data.panel["permno"] == 20002) & (data.panel["date"] == "2020-01-31")].iloc[0]
    assert np.isnan(row["ret"]) and row["tret"] == pytest.approx(-0.35) and row["delist"]
    assert any("no DLSTDT column" in r for r in data.report)
    assert any("DLRET=A (still active)" in r for r in data.report)
    # 'A' marks the active securities: they are not delisted, and they are the survivors
    assert set(data.delistings["permno"]) == {20002}


def test_daily_extract_without_codes_runs_with_the_filters_skipped_and_said():
    data = read_crsp(FIX / "siz_daily_extract")
    assert data.panel["eligible"].all()
    assert any("no SHRCD column: share-code filter" in r for r in data.report)
    assert any("no EXCHCD" in r and "exchange filter" in r for r in data.report)
    (e,) = delisting_events(data)
    assert e.filled and e.dlret == pytest.approx(-0.30) and e.code == 574
    assert any("no exchange code got the NYSE/AMEX value" in r for r in data.report)


def test_an_empty_universe_says_why(tmp_path):
    d = tmp_path / "etf"
    d.mkdir()
    (d / "dsf.csv").write_text("PERMNO,date,SHRCD,EXCHCD,PRC,RET\n1,20200102,73,1,10,C\n1,20200103,73,1,10,0.0\n"
                               "2,20200102,73,4,10,C\n2,20200103,73,4,10,0.0\n")
    with pytest.raises(DataError) as e:
        survivorship_report(read_crsp(d))
    msg = str(e.value)
    assert e.value.rule == "empty_universe"
    assert "0 of 4 rows pass the share-code filter (SHRCD in [10, 11]); failing values: 73 (4 rows)" in msg
    assert "2 of 4 rows pass the exchange filter" in msg


def test_64_column_file_collapses_repeated_rows_and_fills_the_nasdaq_delisting():
    data = read_crsp(FIX / "siz_monthly_full")
    p = data.panel
    assert len(p[(p["permno"] == 40001) & (p["date"] == "2022-03-31")]) == 1
    assert any("1 repeated PERMNO-date row(s) collapsed" in r for r in data.report)
    (e,) = delisting_events(data)
    assert (e.permno, str(e.date.date()), e.code, e.filled) == (40002, "2022-04-29", 584, True)
    assert e.dlret == pytest.approx(-0.55)
    row = p[(p["permno"] == 40002) & (p["date"] == "2022-04-29")].iloc[0]
    assert row["prc"] == 6.256 and row["bidask"] and row["tret"] == pytest.approx(0.8 * 0.45 - 1)


def test_conflicting_repeated_rows_are_an_error_naming_both_lines(tmp_path):
    d = tmp_path / "conflict"
    shutil.copytree(FIX / "siz_monthly_full", d)
    f = d / "msf_events.csv"
    lines = f.read_text().splitlines()
    assert lines[4].startswith("40001,20220331")  # file line 5: the second March row
    cells = lines[4].split(",")
    cells[49] = "-0.030000"  # its RET
    lines[4] = ",".join(cells)
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        read_crsp(d)
    assert e.value.rule == "duplicate_permno_date" and e.value.line == 5
    assert "lines 4 and 5 differ in RET" in str(e.value)
    # and an explicit rule resolves it
    data = read_crsp(d, CrspConfig(duplicates="keep_first"))
    assert data.panel[(data.panel["permno"] == 40001) & (data.panel["date"] == "2022-03-31")]["ret"].item() == -0.02


def test_two_different_delistings_for_one_permno_in_a_merged_file_name_both_lines(tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    src = (FIX / "siz_monthly_merged" / "msf.csv").read_text().splitlines()
    src[8] = src[8].replace(",,,800,11.448", ",-0.100000,-0.100000,800,11.448")  # Dec row of 20002: DLRET -10 %
    (d / "msf.csv").write_text("\n".join(src) + "\n")
    with pytest.raises(DataError) as e:
        read_crsp(d)
    assert e.value.rule == "duplicate_delisting" and "line 9 and line 10" in str(e.value)


def test_ciz_delisting_row_and_apply_delisting():
    data = read_crsp(FIX / "ciz_daily")
    (e,) = delisting_events(data)
    assert (e.permno, str(e.date.date()), e.in_ret) == (50002, "2023-06-06", True)
    # the return is already in DlyRet: closing applies nothing more
    assert apply_delisting(1000.0, e) == 1000.0
    u = crsp_universe(data)
    assert u.ids("2023-06-06") == [50001, 50002] and u.ids("2023-06-07") == [50001]


def test_membership_spells_with_aliases_and_unmatched_examples():
    spells = read_membership(FIX / "siz_daily" / "members.csv")
    assert list(spells["ticker"]) == ["AAA", "BBB", "CCC", "XYZ"]
    rep = survivorship_report(read_crsp(FIX / "siz_daily"), members=spells)
    # members (no code filters: the list is the filter): A, B, C (+1 % a day); B delists on Jan 7 (-0.46)
    pit = [(0.10 - 0.20 + 0.01) / 3, (-0.05 + 0.05 + 0.01) / 3, (0.02 - 0.46 + 0.01) / 3, (0.00 + 0.01) / 2]
    # survivors: the end date's members (A and C), held whenever listed
    surv = [(0.10 + 0.01) / 2, (-0.05 + 0.01) / 2, (0.02 + 0.01) / 2, (0.00 + 0.01) / 2]
    np.testing.assert_allclose(rep.returns["pit"], pit, atol=1e-12)
    np.testing.assert_allclose(rep.returns["survivors"], surv, atol=1e-12)
    check(rep.stats, pit, surv, 252)
    (note,) = rep.notes
    assert "1 of 4 membership spell(s) match no price data" in note
    assert "line 5: ticker XYZ 2019-01-01..2019-12-31: no PERMNO carries it then (not in the price data)" in note


def test_membership_errors_list_the_files_columns(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("name,joined,left\nAAA,2020-01-01,\n")
    with pytest.raises(DataError) as e:
        read_membership(f)
    assert "the file has: name, joined, left" in str(e.value) and "start_date" in str(e.value)
    f.write_text("symbol,from,to\nAAA,2020-01-01,\n")
    assert read_membership(f)["ticker"].tolist() == ["AAA"]
    f.write_text("permno,mbrstartdt,mbrenddt\n10001,20200101,20200106\n99999,20200101,\n10002,20100101,20101231\n")
    _, notes = __import__("intradayjules.data.universe", fromlist=["x"]).resolve_spells(
        read_membership(f), read_crsp(FIX / "siz_daily"))
    assert "2 of 3" in notes[0] and "line 3: PERMNO 99999 2020-01-01..open: not in the price data" in notes[0]
    assert "line 4: PERMNO 10002 2010-01-01..2010-12-31: its prices run 2020-01-02..2020-01-07" in notes[0]


def test_cli_members_and_prices(tmp_path):
    from intradayjules.cli.survivorship_cmd import app

    js = tmp_path / "s.json"
    res = runner.invoke(app, ["report", "--members", str(FIX / "siz_daily" / "members.csv"),
                              "--prices", str(FIX / "siz_daily"), "--out", str(js)])
    assert res.exit_code == 0, res.output
    assert "match no price data" in res.output and "XYZ" in res.output
    assert json.loads(js.read_text())["universe"] == "membership file"


def test_pit_status_for_a_trading_loop():
    data = read_crsp(FIX / "siz_daily")
    u = crsp_universe(data)
    sessions = pd.to_datetime(["2020-01-03", "2020-01-06", "2020-01-07", "2020-01-08"])
    st = pit_status(u, data, sessions, ["AAA", "BBB", "CCC"], by="ticker")
    assert st.member.tolist() == [[True, True, False]] * 3 + [[True, False, False]]
    assert st.delist[:, 1].tolist() == [False, False, True, False] and st.dlret[2, 1] == pytest.approx(-0.40)
    assert st.leaving(2) == ["BBB"] and st.leaving(3) == ["BBB"] and st.leaving(1) == []
    ciz = read_crsp(FIX / "ciz_daily")
    st2 = pit_status(crsp_universe(ciz), ciz, pd.to_datetime(["2023-06-05", "2023-06-06", "2023-06-07"]),
                     [50001, 50002])
    assert st2.delist[1, 1] and st2.dlret[1, 1] == 0.0  # in DlyRet already
