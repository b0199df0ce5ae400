"""CRSP ingestion: every rule of data/crsp.py on small hand-written files, values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import CrspConfig
from intradayjules.data.crsp import compound_returns, is_performance_delisting, read_crsp
from intradayjules.errors import DataError

HEAD = "PERMNO,date,SHRCD,EXCHCD,TICKER,COMNAM,PRC,VOL,RET,RETX,SHROUT,CFACPR,CFACSHR\n"
DHEAD = "PERMNO,DLSTDT,DLSTCD,DLRET,DLRETX,DLPRC\n"


def write(tmp_path, stock: str, delist: str | None = None, name: str = "dsf.csv"):
    d = tmp_path / "crsp"
    d.mkdir(exist_ok=True)
    (d / name).write_text(stock)
    if delist is not None:
        (d / "dsedelist.csv").write_text(delist)
    return d


def row(panel, permno, date):
    r = panel[(panel["permno"] == permno) & (panel["date"] == pd.Timestamp(date))]
    assert len(r) == 1, r
    return r.iloc[0]


def test_negative_price_is_bid_ask_midpoint(tmp_path):
    d = write(tmp_path, HEAD + "1,20200102,11,1,AA,A,-12.5,100,0.01,0.01,2000,1,1\n"
                              "1,20200103,11,1,AA,A,13,100,0.04,0.04,2000,1,1\n")
    p = read_crsp(d).panel
    r = row(p, 1, "2020-01-02")
    assert r["prc"] == 12.5 and bool(r["bidask"])
    assert r["mktcap"] == 12.5 * 2000 * 1000  # SHROUT in thousands
    assert r["dollar_vol"] == 12.5 * 100
    assert not bool(row(p, 1, "2020-01-03")["bidask"])


def test_zero_price_is_missing_not_zero(tmp_path):
    d = write(tmp_path, HEAD + "1,20200102,11,1,AA,A,0,100,C,C,2000,1,1\n")
    r = read_crsp(d).panel.iloc[0]
    assert math.isnan(r["prc"]) and math.isnan(r["mktcap"])


@pytest.mark.parametrize("code", ["-66", "-77", "-88", "-99", "-66.0", "B", "C", "b", ""])
def test_missing_return_codes_become_missing(tmp_path, code):
    d = write(tmp_path, HEAD + f"1,20200102,11,1,AA,A,10,100,{code},{code},2000,1,1\n")
    data = read_crsp(d)
    assert math.isnan(data.panel["ret"].iloc[0]) and math.isnan(data.panel["tret"].iloc[0])
    if code:
        assert any("RET=" in line for line in data.report)


def test_return_below_minus_one_that_is_not_a_code_is_an_error(tmp_path):
    d = write(tmp_path, HEAD + "1,20200102,11,1,AA,A,10,100,0.01,0.01,2000,1,1\n"
                              "1,20200103,11,1,AA,A,10,100,-1.5,-1.5,2000,1,1\n")
    with pytest.raises(DataError) as e:
        read_crsp(d)
    assert e.value.line == 3 and e.value.column == "RET" and e.value.file.endswith("dsf.csv")


def test_letter_in_a_non_return_column_names_file_line_column(tmp_path):
    d = write(tmp_path, HEAD + "1,20200102,11,1,AA,A,10,100,0.01,0.01,2000,1,1\n"
                              "1,20200103,11,1,AA,A,ten,100,0.01,0.01,2000,1,1\n")
    with pytest.raises(DataError) as e:
        read_crsp(d)
    assert (e.value.line, e.value.column) == (3, "PRC")
    assert "dsf.csv:line 3" in str(e.value) and "ten" in str(e.value)


def test_bad_date_and_missing_column(tmp_path):
    d = write(tmp_path, HEAD + "1,2020-13-45,11,1,AA,A,10,100,0.01,0.01,2000,1,1\n")
    with pytest.raises(DataError) as e:
        read_crsp(d)
    assert (e.value.line, e.value.column, e.value.rule) == (2, "date", "bad_date")
    d2 = write(tmp_path, "PERMNO,date,PRC\n1,20200102,10\n", name="other.csv")
    with pytest.raises(DataError) as e:
        read_crsp(d2 / "other.csv")
    assert e.value.rule == "missing_column" and e.value.column == "RET"


def test_adjustment_factors(tmp_path):
    # 2-for-1 split on 2020-01-06: printed price halves, factors go from 2 to 1
    d = write(tmp_path, HEAD + "1,20200102,11,1,AA,A,10.0,1000,C,C,100,2,2\n"
                              "1,20200103,11,1,AA,A,11.0,1000,0.1,0.1,100,2,2\n"
                              "1,20200106,11,1,AA,A,5.5,3000,0.0,0.0,200,1,1\n")
    p = read_crsp(d).panel
    assert row(p, 1, "2020-01-02")["adj_prc"] == 5.0
    assert row(p, 1, "2020-01-03")["adj_prc"] == 5.5 and row(p, 1, "2020-01-06")["adj_prc"] == 5.5
    assert row(p, 1, "2020-01-03")["adj_vol"] == 2000.0 and row(p, 1, "2020-01-06")["adj_vol"] == 3000.0
    # market cap needs no adjustment: 11 * 100k shares = 5.5 * 200k shares
    assert row(p, 1, "2020-01-03")["mktcap"] == row(p, 1, "2020-01-06")["mktcap"] == 1.1e6


def test_no_factor_columns_means_factor_one(tmp_path):
    d = write(tmp_path, "PERMNO,DATE,PRC,RET,VOL,SHROUT,SHRCD,EXCHCD\n1,20200102,10,0.01,5,1,10,1\n")
    data = read_crsp(d)
    assert data.panel["adj_prc"].iloc[0] == 10.0
    assert any("CFACPR" in line for line in data.report)


def test_share_and_exchange_code_filters(tmp_path):
    d = write(tmp_path, HEAD + "1,20200102,11,1,AA,A,10,100,0.01,0.01,2000,1,1\n"
                              "2,20200102,10,3,BB,B,10,100,0.01,0.01,2000,1,1\n"
                              "3,20200102,73,1,CC,C,10,100,0.01,0.01,2000,1,1\n"
                              "4,20200102,11,4,DD,D,10,100,0.01,0.01,2000,1,1\n"
                              "5,20200102,31,2,EE,E,10,100,0.01,0.01,2000,1,1\n")
    el = read_crsp(d).panel.set_index("permno")["eligible"]
    assert el.to_dict() == {1: True, 2: True, 3: False, 4: False, 5: False}
    el2 = read_crsp(d, CrspConfig(share_codes=[73, 11], exchange_codes=[1, 4])).panel.set_index("permno")["eligible"]
    assert el2.to_dict() == {1: True, 2: False, 3: True, 4: True, 5: False}


STOCK = HEAD + ("1,20200102,11,1,AA,A,10,100,C,C,2000,1,1\n"
                "1,20200103,11,1,AA,A,11,100,0.1,0.1,2000,1,1\n"
                "2,20200102,11,3,BB,B,20,100,C,C,2000,1,1\n"
                "2,20200103,11,3,BB,B,20.4,100,0.02,0.02,2000,1,1\n"
                "3,20200102,11,2,CC,C,5,100,C,C,2000,1,1\n"
                "3,20200103,11,2,CC,C,5,100,0.0,0.0,2000,1,1\n"
                "4,20200102,11,1,DD,D,5,100,C,C,2000,1,1\n"
                "4,20200103,11,1,DD,D,5.5,100,0.1,0.1,2000,1,1\n")


def test_delisting_return_compounds_with_ret(tmp_path):
    d = write(tmp_path, STOCK, DHEAD + "1,20200103,552,-0.5,-0.5,5.5\n")
    data = read_crsp(d)
    r = row(data.panel, 1, "2020-01-03")
    assert r["tret"] == pytest.approx(1.1 * 0.5 - 1)  # -0.45, not 0.1 - 0.5 = -0.4
    assert r["dlret"] == -0.5 and not bool(r["dlret_filled"])
    assert row(data.panel, 4, "2020-01-03")["tret"] == pytest.approx(0.1)  # no delisting


def test_shumway_fill_by_exchange_and_flag(tmp_path):
    d = write(tmp_path, STOCK, DHEAD + "1,20200103,552,,,\n"      # NYSE: -30 %
                                       "2,20200103,560,S,S,\n"    # Nasdaq: -55 %
                                       "3,20200103,500,-55,-55,\n"  # AMEX, code 500: -30 %
                                       "4,20200103,231,,,\n")     # merger, missing: stays missing
    data = read_crsp(d)
    p = data.panel
    assert row(p, 1, "2020-01-03")["tret"] == pytest.approx(1.1 * 0.7 - 1)
    assert row(p, 2, "2020-01-03")["tret"] == pytest.approx(1.02 * 0.45 - 1)
    assert row(p, 3, "2020-01-03")["tret"] == pytest.approx(-0.30)
    assert row(p, 4, "2020-01-03")["tret"] == pytest.approx(0.1)
    ev = data.delistings.set_index("permno")
    assert ev["dlret_filled"].to_dict() == {1: True, 2: True, 3: True, 4: False}
    assert math.isnan(ev.loc[4, "dlret"])
    # configurable defaults
    p2 = read_crsp(d, CrspConfig(delisting_fill_nyse_amex=-0.2, delisting_fill_nasdaq=-0.9)).panel
    assert row(p2, 1, "2020-01-03")["tret"] == pytest.approx(1.1 * 0.8 - 1)
    assert row(p2, 2, "2020-01-03")["tret"] == pytest.approx(1.02 * 0.1 - 1)


def test_performance_code_ranges():
    codes = np.array([500, 510, 519, 520, 552, 584, 585, 231, 100, 331])
    assert is_performance_delisting(codes).tolist() == [True, False, False, True, True, True, False, False,
                                                         False, False]


def test_compound_returns_missing_parts():
    out = compound_returns([0.1, np.nan, 0.1, np.nan], [-0.5, -0.3, np.nan, np.nan])
    assert out[0] == pytest.approx(-0.45) and out[1] == pytest.approx(-0.3) and out[2] == pytest.approx(0.1)
    assert np.isnan(out[3])


def test_active_code_100_is_not_a_delisting(tmp_path):
    d = write(tmp_path, STOCK, DHEAD + "1,20200103,100,,,\n")
    data = read_crsp(d)
    assert data.delistings.empty and row(data.panel, 1, "2020-01-03")["tret"] == pytest.approx(0.1)


def test_delisting_without_a_stock_row_adds_one(tmp_path):
    d = write(tmp_path, STOCK, DHEAD + "1,20200108,574,-0.8,-0.8,2.2\n")
    data = read_crsp(d)
    r = row(data.panel, 1, "2020-01-08")
    assert bool(r["delist_row"]) and r["tret"] == pytest.approx(-0.8) and math.isnan(r["ret"])
    assert r["prc"] == 2.2
    assert bool(data.delistings["row_added"].iloc[0])


def test_delisting_columns_inside_the_stock_file(tmp_path):
    head = HEAD.strip() + ",DLSTDT,DLSTCD,DLRET\n"
    d = write(tmp_path, head + "1,20200102,11,1,AA,A,10,100,C,C,2000,1,1,,,\n"
                              "1,20200103,11,1,AA,A,11,100,0.1,0.1,2000,1,1,20200103,552,-0.5\n")
    assert row(read_crsp(d).panel, 1, "2020-01-03")["tret"] == pytest.approx(-0.45)


def test_conflicting_delisting_records_are_an_error(tmp_path):
    d = write(tmp_path, STOCK, DHEAD + "1,20200103,552,-0.5,,\n1,20200103,560,-0.6,,\n")
    with pytest.raises(DataError) as e:
        read_crsp(d)
    assert e.value.rule == "duplicate_delisting" and e.value.line == 3


def test_duplicates_error_lists_lines_and_explicit_rules_resolve(tmp_path):
    text = HEAD + ("1,20200102,11,1,AA,A,10,100,C,C,2000,1,1\n"
                   "1,20200103,11,1,AA,A,11,100,0.1,0.1,2000,1,1\n"
                   "1,20200103,11,1,AA,A,12,100,0.2,0.2,2000,1,1\n")
    d = write(tmp_path, text)
    with pytest.raises(DataError) as e:
        read_crsp(d)
    assert e.value.rule == "duplicate_permno_date" and "dsf.csv:3" in str(e.value) and "dsf.csv:4" in str(e.value)
    assert row(read_crsp(d, CrspConfig(duplicates="keep_first")).panel, 1, "2020-01-03")["ret"] == 0.1
    data = read_crsp(d, CrspConfig(duplicates="keep_last"))
    assert row(data.panel, 1, "2020-01-03")["ret"] == 0.2
    assert any("1 duplicate" in line for line in data.report)


def test_monthly_file_applies_delisting_in_its_month(tmp_path):
    text = ("permno,date,shrcd,exchcd,prc,vol,ret,shrout\n"
            "7,2020-01-31,11,3,10,50,0.05,100\n"
            "7,2020-02-28,11,3,9,50,-0.1,100\n"
            "7,2020-03-31,11,3,8,50,-0.111111,100\n")
    d = write(tmp_path, text, DHEAD + "7,20200317,584,-0.4,-0.4,\n", name="msf.csv")
    data = read_crsp(d)
    assert data.freq == "monthly" and data.periods_per_year == 12
    r = row(data.panel, 7, "2020-03-31")
    assert r["tret"] == pytest.approx((1 - 0.111111) * 0.6 - 1)
    assert r["dollar_vol"] == pytest.approx(8 * 50 * 100 / 21)  # VOL in hundreds, per trading day


def test_ciz_names_map_to_the_same_model(tmp_path):
    text = ("PERMNO,DlyCalDt,DlyPrc,DlyRet,DlyRetx,DlyVol,ShrOut,PrimaryExch,Ticker,SecurityType,"
            "SecuritySubType,ShareType,USIncFlg\n"
            "9,2021-03-01,-20,0.01,0.01,1000,300,Q,ZZ,EQTY,COM,NS,Y\n"
            "9,2021-03-02,21,0.05,0.05,1000,300,Q,ZZ,EQTY,COM,NS,Y\n"
            "8,2021-03-01,20,0.01,0.01,1000,300,N,YY,FUND,ETF,NS,Y\n")
    data = read_crsp(write(tmp_path, text))
    r = row(data.panel, 9, "2021-03-01")
    assert (r["prc"], bool(r["bidask"]), r["exchcd"], r["shrcd"], r["vol"]) == (20, True, 3, 11, 1000)
    assert bool(r["eligible"]) and not bool(row(data.panel, 8, "2021-03-01")["eligible"])
    assert row(data.panel, 9, "2021-03-02")["ret"] == 0.05
    assert data.dlret_in_ret


def test_parquet_equals_csv_and_names_rows(tmp_path):
    csv_dir = write(tmp_path, STOCK, DHEAD + "2,20200103,560,,,\n")
    pq = tmp_path / "pq"
    pq.mkdir()
    pd.read_csv(csv_dir / "dsf.csv", dtype=str).to_parquet(pq / "dsf.parquet")
    pd.read_csv(csv_dir / "dsedelist.csv").to_parquet(pq / "dsedelist.parquet")
    a, b = read_crsp(csv_dir).panel, read_crsp(pq).panel
    cols = ["permno", "date", "prc", "ret", "tret", "eligible", "mktcap"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    bad = pd.read_csv(csv_dir / "dsf.csv", dtype=str)
    bad.loc[3, "VOL"] = "x"
    bad.to_parquet(pq / "dsf.parquet")
    with pytest.raises(DataError) as e:
        read_crsp(pq)
    assert (e.value.line, e.value.column) == (4, "VOL")


def test_ticker_reuse_and_change(tmp_path):
    text = HEAD + ("1,20200102,11,1,OLD,A,10,100,C,C,2000,1,1\n"
                   "1,20200103,11,1,OLD,A,10,100,0,0,2000,1,1\n"
                   "1,20200106,11,1,NEW,A,10,100,0,0,2000,1,1\n"   # ticker change: same PERMNO
                   "2,20200102,11,1,XYZ,B,10,100,C,C,2000,1,1\n"
                   "2,20200103,11,1,XYZ,B,10,100,0,0,2000,1,1\n"
                   "3,20200107,11,3,XYZ,C,10,100,C,C,2000,1,1\n")  # reuse by another company
    data = read_crsp(write(tmp_path, text))
    assert data.permno_for("OLD", "2020-01-03") == 1 and data.permno_for("NEW", "2020-01-06") == 1
    assert data.permno_for("new", "2020-01-03") is None
    assert data.permno_for("XYZ", "2020-01-02") == 2 and data.permno_for("XYZ", "2020-01-07") == 3
    assert data.panel["permno"].nunique() == 3
    spells = data.ticker_spells()
    assert len(spells[spells["ticker"] == "XYZ"]) == 2 and set(spells.loc[spells["permno"] == 1, "ticker"]) == {"OLD", "NEW"}


def test_synthetic_files_read_back_with_their_built_in_layout(tmp_path):
    from intradayjules.data.crsp_synth import CrspSynthParams, write_crsp

    params = CrspSynthParams(n_firms=40, n_ineligible=4, days=260, seed=5)
    paths = write_crsp(tmp_path / "a", params)
    write_crsp(tmp_path / "b", params)
    assert (tmp_path / "a" / "dsf.csv").read_bytes() == (tmp_path / "b" / "dsf.csv").read_bytes()
    import json

    truth = json.loads(paths["truth"].read_text())
    data = read_crsp(tmp_path / "a")
    lay = truth["layout"]
    reuse = lay["ticker_reuse"]
    spells = data.ticker_spells()
    assert set(spells.loc[spells["ticker"] == reuse["ticker"], "permno"]) == {reuse["dead"], reuse["new"]}
    ch = lay["ticker_change"]
    assert set(spells.loc[spells["permno"] == ch["permno"], "ticker"]) == {ch["old"], ch["new"]}
    sp = data.panel[data.panel["permno"] == lay["split"]["permno"]].set_index("date")
    day = pd.Timestamp(lay["split"]["date"])
    before, after = sp.loc[:day].iloc[-2], sp.loc[day]
    assert after["prc"] == pytest.approx(before["prc"] * (1 + after["ret"]) / 2, rel=1e-3)
    assert after["adj_prc"] == pytest.approx(before["adj_prc"] * (1 + after["ret"]), rel=1e-3)
    assert data.panel["bidask"].any()
    assert len(data.delistings) == truth["n_delisted"]


def test_compounding_property_matches_apply_delisting():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from intradayjules.data.universe import apply_delisting

    @settings(max_examples=200, deadline=None)
    @given(st.floats(-1, 5), st.floats(-1, 5))
    def check(r, d):
        out = compound_returns([r], [d])[0]
        assert out >= -1 - 1e-12  # adding instead of compounding can go below -100 %
        assert apply_delisting(1 + r, d) - 1 == pytest.approx(out, abs=1e-12)

    check()
