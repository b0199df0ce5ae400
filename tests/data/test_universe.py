"""Point-in-time universes: membership rules, tiers as of d, top-N without look-ahead, membership files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intradayjules.config import CrspConfig, TierConfig
from intradayjules.data.crsp import read_crsp
from intradayjules.data.universe import (DelistingEvent, apply_delisting, crsp_universe, delisting_events, exits,
                                         membership_universe, read_membership)
from intradayjules.errors import DataError

HEAD = "PERMNO,date,SHRCD,EXCHCD,TICKER,COMNAM,PRC,VOL,RET,RETX,SHROUT,CFACPR,CFACSHR\n"
DHEAD = "PERMNO,DLSTDT,DLSTCD,DLRET,DLRETX,DLPRC\n"
DAYS = ["20200102", "20200103", "20200106", "20200107", "20200108"]


def crsp_dir(tmp_path, rows: list[str], delist: list[str] | None = None):
    d = tmp_path / "crsp"
    d.mkdir(exist_ok=True)
    (d / "dsf.csv").write_text(HEAD + "\n".join(rows) + "\n")
    if delist:
        (d / "dsedelist.csv").write_text(DHEAD + "\n".join(delist) + "\n")
    return d


def line(permno, day, prc=10.0, vol=100, ret="0.0", shrout=1000, shrcd=11, exchcd=1, ticker=None):
    return f"{permno},{day},{shrcd},{exchcd},{ticker or f'T{permno}'},N{permno},{prc},{vol},{ret},{ret},{shrout},1,1"


def test_membership_dates_listing_delisting_and_filters(tmp_path):
    rows = [line(1, d) for d in DAYS]                       # alive throughout
    rows += [line(2, d) for d in DAYS[:3]]                  # delists on day 3 (its last row)
    rows += [line(3, d) for d in DAYS[2:]]                  # lists on day 3
    rows += [line(4, d, shrcd=73) for d in DAYS]            # never eligible
    rows += [line(5, DAYS[0]), line(5, DAYS[1]), line(5, DAYS[2], exchcd=4), line(5, DAYS[3], exchcd=4)]
    data = read_crsp(crsp_dir(tmp_path, rows, ["2,20200106,560,-0.5,,"]))
    u = crsp_universe(data)
    assert u.ids("2020-01-02") == []                         # nothing known before the first date
    assert u.ids("2020-01-03") == [1, 2, 5]
    assert u.ids("2020-01-06") == [1, 2, 5]                  # 2 is held on its delisting date; 3 not yet
    assert u.ids("2020-01-07") == [1, 3]                     # 2 gone, 3 joined, 5 left the exchanges
    ex = exits(u, data, "2020-01-06", "2020-01-07")
    assert ex.set_index("permno")["reason"].to_dict() == {2: "delisted", 5: "left"}
    assert u.ids("2020-01-04") == u.ids("2020-01-06")        # a weekend maps to the next date


def test_rows_that_stop_without_delisting_leave_after_max_stale(tmp_path):
    days = pd.bdate_range("2020-01-02", periods=12).strftime("%Y%m%d")
    rows = [line(1, d) for d in days] + [line(2, d) for d in days[:3]]
    data = read_crsp(crsp_dir(tmp_path, rows))
    u = crsp_universe(data, CrspConfig(max_stale_periods=4))
    held = [d for d in u.grid if 2 in u.ids(d)]
    # last row on day index 2 -> member on days 1..6 (index 6 is 4 dates after the last row)
    assert held == list(u.grid[1:7])


def test_adv_and_tier_as_of_d_use_only_earlier_rows(tmp_path):
    # dollar volumes 1000, 3000, 5000, 7000 USD on days 1-4 (price 10, volume 100..700)
    rows = [line(1, d, prc=10, vol=v) for d, v in zip(DAYS[:4], (100, 300, 500, 700))]
    rows.append(line(1, DAYS[4], prc=10, vol=10**9))        # a huge volume on day 5 must not leak
    data = read_crsp(crsp_dir(tmp_path, rows))
    tiers = TierConfig(adv_window_days=2, min_history_days=1, liquid_min_adv=5000, illiquid_max_adv=2500)
    u = crsp_universe(data, tier_cfg=tiers)
    t = u.table.set_index("date")
    assert t.loc["2020-01-03", "adv"] == 1000 and t.loc["2020-01-03", "tier"] == "illiquid"
    assert t.loc["2020-01-06", "adv"] == 2000 and t.loc["2020-01-06", "tier"] == "illiquid"
    assert t.loc["2020-01-07", "adv"] == 4000 and t.loc["2020-01-07", "tier"] == "mid"
    assert t.loc["2020-01-08", "adv"] == 6000 and t.loc["2020-01-08", "tier"] == "liquid"


def test_adv_agrees_with_the_intraday_tier_function(tmp_path):
    """The universe's ADV is the foundation's trailing_adv on the same daily dollar volumes."""
    from intradayjules.data.crsp_synth import CrspSynthParams, write_crsp
    from intradayjules.data.tiers import trailing_adv

    write_crsp(tmp_path / "s", CrspSynthParams(n_firms=20, n_ineligible=0, days=150, seed=3))
    data = read_crsp(tmp_path / "s")
    cfg = TierConfig(adv_window_days=10, min_history_days=3)
    u = crsp_universe(data, tier_cfg=cfg)
    p = data.panel[~data.panel["delist_row"]]
    daily = pd.DataFrame({"symbol": p["permno"].astype(str), "session": p["date"], "dollar_volume": p["dollar_vol"]})
    ref = trailing_adv(daily, cfg).rename(columns={"session": "date"})
    ref["permno"] = ref["symbol"].astype(int)
    m = u.table.merge(ref[["date", "permno", "adv", "tier"]], on=["date", "permno"], suffixes=("", "_ref"))
    assert len(m) == len(u.table) > 1000
    np.testing.assert_allclose(m["adv"], m["adv_ref"], rtol=1e-12, equal_nan=True)
    assert (m["tier"] == m["tier_ref"]).all()


def test_top_n_ranks_at_rebalance_dates_only(tmp_path):
    days = pd.bdate_range("2020-01-29", "2020-02-07").strftime("%Y%m%d")
    rows = []
    for d in days:
        big3 = 3000 if d < "20200204" else 100        # 3 shrinks after Feb 3: kept until the next rebalance
        rows += [line(1, d, shrout=2000), line(2, d, shrout=1000), line(3, d, shrout=big3)]
    data = read_crsp(crsp_dir(tmp_path, rows))
    u = crsp_universe(data, top_n=2, rebalance="monthly")
    assert u.ids("2020-01-30") == [1, 3]          # first date with candidates is a rebalance date
    assert u.ids("2020-02-03") == [1, 3]          # Feb rebalance: caps of Jan 31 -> 3 (30M) > 2 (10M)
    assert u.ids("2020-02-07") == [1, 3]          # 3 is small now, but no re-ranking until March
    d = crsp_universe(data, top_n=2, rebalance="daily")
    assert d.ids("2020-02-04") == [1, 3] and d.ids("2020-02-05") == [1, 2]   # daily: re-ranked the day after


def _synthetic(tmp_path, name="s", **kw):
    from intradayjules.data.crsp_synth import CrspSynthParams, write_crsp

    write_crsp(tmp_path / name, CrspSynthParams(n_firms=60, n_ineligible=4, days=300, seed=11, **kw))
    return tmp_path / name


def test_top_n_universe_has_no_look_ahead(tmp_path):
    src = _synthetic(tmp_path)
    dsf = pd.read_csv(src / "dsf.csv", dtype=str)
    dl = pd.read_csv(src / "dsedelist.csv", dtype=str)
    dates = sorted(dsf["date"].unique())
    cut = dates[150]
    # rewrite the data from the cut on (the universe on the cut may use rows strictly before it only):
    # prices x 50 for half the names, other names' rows removed, new delistings
    after = dsf["date"] >= cut
    ids = sorted(dsf["PERMNO"].unique())
    boost = dsf["PERMNO"].isin(ids[::2])
    dsf2 = dsf.copy()
    dsf2.loc[after & boost, "PRC"] = (dsf2.loc[after & boost, "PRC"].astype(float) * 50).map("{:.4f}".format)
    dsf2.loc[after & boost, "VOL"] = "999999999"
    dsf2 = dsf2[~(after & dsf2["PERMNO"].isin(ids[1::6]))]
    active = sorted(dl.loc[dl["DLSTCD"] == "100", "PERMNO"])  # alive at the cut: no earlier delisting
    extra = pd.DataFrame({"PERMNO": active[3::5], "DLSTDT": dates[200], "DLSTCD": "552", "DLRET": "-0.9",
                          "DLRETX": "-0.9", "DLPRC": ""})
    dl2 = pd.concat([dl[~dl["PERMNO"].isin(extra["PERMNO"])], extra])
    (tmp_path / "m").mkdir()
    dsf2.to_csv(tmp_path / "m" / "dsf.csv", index=False)
    dl2.to_csv(tmp_path / "m" / "dsedelist.csv", index=False)
    a = read_crsp(src)
    b = read_crsp(tmp_path / "m")
    for top_n, reb in ((15, "monthly"), (15, "daily"), (None, "monthly")):
        ua = crsp_universe(a, top_n=top_n, rebalance=reb)
        ub = crsp_universe(b, top_n=top_n, rebalance=reb)
        d = pd.Timestamp(cut)
        ta = ua.table[ua.table["date"] <= d].reset_index(drop=True)
        tb = ub.table[ub.table["date"] <= d].reset_index(drop=True)
        pd.testing.assert_frame_equal(ta, tb)
        # ... and the change does show up later, so the comparison above can fail
        assert not ua.table[ua.table["date"] > d].reset_index(drop=True).equals(
            ub.table[ub.table["date"] > d].reset_index(drop=True))


def test_changing_data_before_d_changes_the_universe_on_d(tmp_path):
    """Control for the look-ahead test: the state of the day before d does enter d's membership."""
    days = pd.bdate_range("2020-02-03", periods=4).strftime("%Y%m%d")
    rows = [line(p, d, shrout=1000 * p) for d in days for p in (1, 2, 3)]
    a = crsp_universe(read_crsp(crsp_dir(tmp_path, rows)), top_n=1, rebalance="daily")
    rows[3 * 1 + 0] = line(1, days[1], shrout=10**6)   # permno 1 huge on day 2 only
    (tmp_path / "crsp" / "dsf.csv").unlink()
    b = crsp_universe(read_crsp(crsp_dir(tmp_path, rows)), top_n=1, rebalance="daily")
    assert a.ids(days[2]) == [3] and b.ids(days[2]) == [1]
    assert a.ids(days[1]) == b.ids(days[1]) == [3]


def test_membership_file_by_ticker_resolves_reuse_by_date(tmp_path):
    rows = [line(1, d, ticker="XYZ") for d in DAYS[:2]]
    rows += [line(2, d, ticker="XYZ") for d in DAYS[2:]]      # ticker reused by another company
    rows += [line(3, d, ticker="ABC") for d in DAYS]
    data = read_crsp(crsp_dir(tmp_path, rows, ["1,20200103,231,0.2,,"]))
    mf = tmp_path / "members.csv"
    mf.write_text("ticker,start,end\nXYZ,2020-01-01,\nABC,2020-01-06,2020-01-07\n")
    u = membership_universe(mf, data)
    assert u.ids("2020-01-03") == [1]          # XYZ = permno 1 then (and it delists that day)
    assert u.ids("2020-01-06") == [3]          # XYZ is permno 2 from Jan 6, but 2 only lists that day
    assert u.ids("2020-01-07") == [2, 3]
    assert u.ids("2020-01-08") == [2]          # ABC's spell ended
    by_id = tmp_path / "ids.csv"
    by_id.write_text("permno,start,end\n3,20200103,20200106\n")
    assert membership_universe(by_id, data).ids("2020-01-06") == [3]
    assert membership_universe(by_id, data).ids("2020-01-07") == []


def test_membership_file_errors_name_line_and_column(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("permno,start,end\n1,2020-01-01,\n2,2020-02-30,2020-03-01\n")
    with pytest.raises(DataError) as e:
        read_membership(bad)
    assert (e.value.line, e.value.column) == (3, "start")
    bad.write_text("permno,start,end\n1,2020-01-05,2020-01-01\n")
    with pytest.raises(DataError) as e:
        read_membership(bad)
    assert e.value.line == 2 and e.value.rule == "bad_spell"
    bad.write_text("permno,start,end\n-4,2020-01-01,\n")
    with pytest.raises(DataError) as e:
        read_membership(bad)
    assert e.value.line == 2 and e.value.rule == "bad_permno"


def test_apply_delisting_and_events(tmp_path):
    ev = DelistingEvent(1, pd.Timestamp("2020-01-03"), 552, -0.3, True, True)
    assert apply_delisting(1000.0, ev) == pytest.approx(700.0)
    assert apply_delisting(1000.0, float("nan")) == 1000.0
    np.testing.assert_allclose(apply_delisting(np.array([100.0, 200.0]), np.array([-0.5, 0.25])), [50.0, 250.0])
    rows = [line(1, d) for d in DAYS[:2]] + [line(2, d) for d in DAYS]
    data = read_crsp(crsp_dir(tmp_path, rows, ["1,20200103,574,,,", "2,20200108,100,,,"]))
    evs = delisting_events(data)
    assert len(evs) == 1 and evs[0].permno == 1 and evs[0].dlret == pytest.approx(-0.30) and evs[0].filled
    assert delisting_events(data, start="2020-01-06") == []
