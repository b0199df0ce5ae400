"""Walk-forward folds, fold-aware env data and the test-block guard.

The expected layouts are written out by hand from the rule in ``SplitConfig``'s docstring (not computed by
the code under test); the properties (disjoint, ordered test blocks, embargo gaps) are checked on many
random layouts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intradayjules.config import ExperimentConfig, SplitConfig
from intradayjules.env import HeldOutAccessError, fold_splits, make_env, prepare, session_splits, tuning_phase
from intradayjules.env.guard import in_tuning_phase
from intradayjules.errors import ConfigError

from .helpers import features, market

DAYS = pd.bdate_range("2025-01-02", periods=60)


def idx(arr) -> list[int]:
    """Positions of session dates in DAYS."""
    return [int(np.flatnonzero(DAYS.to_numpy(dtype="datetime64[ns]") == d)[0]) for d in arr]


def rng(a, b) -> list[int]:
    return list(range(a, b))


def wf(**kw) -> SplitConfig:
    return SplitConfig(mode="walk_forward", **kw)


def test_default_expanding_layout_by_hand():
    # 60 sessions, warm-up 20 -> 40 usable; fold 0 trains floor(0.6 * 40) = 24; the remaining 16 make
    # (3 + 1) blocks of 4: validation 4, three test blocks of 4 at the end
    folds = fold_splits(DAYS, wf(folds=3), warmup=20)
    assert [idx(f["test"]) for f in folds] == [rng(48, 52), rng(52, 56), rng(56, 60)]
    assert [idx(f["val"]) for f in folds] == [rng(44, 48), rng(48, 52), rng(52, 56)]
    assert [idx(f["train"]) for f in folds] == [rng(20, 44), rng(20, 48), rng(20, 52)]


def test_embargo_rolling_and_explicit_sizes_by_hand():
    # embargo 2: test = (40 - 24 - 2*2) // 4 = 3, val 3; tests at 51..59; fold 0: val 46..48, train ..43
    folds = fold_splits(DAYS, wf(folds=3, embargo=2), warmup=20)
    assert [idx(f["test"]) for f in folds] == [rng(51, 54), rng(54, 57), rng(57, 60)]
    assert [idx(f["val"]) for f in folds] == [rng(46, 49), rng(49, 52), rng(52, 55)]
    assert [idx(f["train"]) for f in folds] == [rng(20, 44), rng(20, 47), rng(20, 50)]
    # rolling window of 10 sessions, explicit val 5 / test 6, no embargo
    folds = fold_splits(DAYS, wf(folds=2, window="rolling", train_sessions=10, val_sessions=5, test_sessions=6),
                        warmup=20)
    assert [idx(f["test"]) for f in folds] == [rng(48, 54), rng(54, 60)]
    assert [idx(f["val"]) for f in folds] == [rng(43, 48), rng(49, 54)]
    assert [idx(f["train"]) for f in folds] == [rng(33, 43), rng(39, 49)]
    # rolling without train_sessions keeps fold 0's training length (24)
    folds = fold_splits(DAYS, wf(folds=3, window="rolling"), warmup=20)
    assert [idx(f["train"]) for f in folds] == [rng(20, 44), rng(24, 48), rng(28, 52)]


def test_session_splits_picks_the_configured_fold_and_fixed_mode_is_unchanged():
    assert idx(session_splits(DAYS, wf(folds=3, fold=1), warmup=20)["test"]) == rng(52, 56)
    assert idx(session_splits(DAYS, wf(folds=3), warmup=20)["test"]) == rng(56, 60)  # None: the last fold
    fixed = session_splits(DAYS, SplitConfig(), warmup=5)  # 60 * 0.6 = 36, + 60 * 0.2 = 12
    assert (idx(fixed["train"]), idx(fixed["val"]), idx(fixed["test"])) == (rng(5, 36), rng(36, 48), rng(48, 60))
    assert len(fold_splits(DAYS, SplitConfig(), warmup=5)) == 1


def test_layouts_that_do_not_fit_name_the_sizes():
    with pytest.raises(ValueError, match=r"3 folds x 10 test sessions \+ 10 validation \+ 2 x 1 embargo.*"
                                         r"need 63 sessions including the 20-session ADV warm-up; the data has 50"):
        fold_splits(DAYS[:50], wf(folds=3, test_sessions=10, embargo=1), warmup=20)


def test_config_rejects_impossible_walk_forward_settings():
    with pytest.raises(ConfigError, match="fold 3 does not exist"):
        _validate({"mode": "walk_forward", "folds": 3, "fold": 3})
    with pytest.raises(ConfigError, match="train_end/val_end apply to mode 'fixed'"):
        _validate({"mode": "walk_forward", "train_end": "2025-02-01"})
    with pytest.raises(ConfigError, match="data.splits.embargo"):
        _validate({"mode": "walk_forward", "embargo": -1})


def _validate(splits: dict):
    from intradayjules.config import config_from_dict

    return config_from_dict({"data": {"splits": splits}})


@settings(max_examples=200, deadline=None)
@given(n=st.integers(30, 200), warmup=st.integers(0, 25), folds=st.integers(1, 6), embargo=st.integers(0, 3),
       test=st.one_of(st.none(), st.integers(1, 12)), val=st.one_of(st.none(), st.integers(1, 12)),
       rolling=st.booleans(), train=st.one_of(st.none(), st.integers(1, 40)))
def test_walk_forward_properties(n, warmup, folds, embargo, test, val, rolling, train):
    days = pd.bdate_range("2024-01-02", periods=n).to_numpy(dtype="datetime64[ns]")
    cfg = wf(folds=folds, embargo=embargo, test_sessions=test, val_sessions=val,
             window="rolling" if rolling else "expanding", train_sessions=train)
    try:
        out = fold_splits(days, cfg, warmup=warmup)
    except ValueError as e:
        assert "need" in str(e) and f"the data has {n}" in str(e)
        return
    pos = {d: i for i, d in enumerate(days)}
    tests = [[pos[d] for d in f["test"]] for f in out]
    assert len(out) == folds
    assert tests[-1][-1] == n - 1  # the test blocks run to the end of the data ...
    for a, b in zip(tests, tests[1:]):
        assert a[-1] + 1 == b[0]  # ... consecutive, never overlapping
    for f in out:
        tr, va, te = ([pos[d] for d in f[k]] for k in ("train", "val", "test"))
        assert tr and va and te
        assert tr[0] >= warmup
        for block in (tr, va, te):
            assert block == list(range(block[0], block[-1] + 1))  # contiguous
        assert va[0] - tr[-1] - 1 == embargo and te[0] - va[-1] - 1 == embargo
        if not rolling:
            assert tr[0] == warmup
    # no fold trains or validates on sessions of its own test block or later
    for i, f in enumerate(out):
        first_test = f["test"][0]
        assert (f["train"] < first_test).all() and (f["val"] < first_test).all()


# ------------------------------------------------------------------------------------ fold-aware data
@pytest.fixture(scope="module")
def wf_data():
    m = market(days=40, n_symbols=3)
    cfg = ExperimentConfig.model_validate({"data": {"tiers": {"adv_window_days": 5},
                                                    "splits": {"mode": "walk_forward", "folds": 3}},
                                           "env": {"mode": "multi", "n_assets": 3}})
    feats = features(m.bars.frame)
    return cfg, m, feats, prepare(cfg, m.bars, m.universe, features=feats)


def test_for_fold_equals_a_panel_built_for_that_fold(wf_data):
    cfg, m, feats, data = wf_data
    assert data.n_folds == 3 and data.fold == 2
    for i in range(3):
        cfg_i = cfg.model_copy(update={"data": cfg.data.model_copy(
            update={"splits": cfg.data.splits.model_copy(update={"fold": i})})})
        direct = prepare(cfg_i, m.bars, m.universe, features=feats)
        via = data.for_fold(i)
        for k in ("train", "val", "test"):
            assert np.array_equal(via.splits[k], direct.splits[k])
        assert via.scaler.sessions == direct.scaler.sessions
        assert np.array_equal(via.panel.feat, direct.panel.feat)
        assert np.array_equal(via.panel.close, direct.panel.close)
    # the folds' standardisations differ (different training sessions), so this is not trivially true
    assert not np.array_equal(data.for_fold(0).panel.feat, data.for_fold(2).panel.feat)


def test_for_fold_refuses_a_scaler_fitted_on_another_fold(wf_data):
    _, _, _, data = wf_data
    with pytest.raises(ValueError, match="fold 1: the scaler was fitted on .* the fold trains on"):
        data.for_fold(1, scaler=data.for_fold(0).scaler)
    with pytest.raises(ValueError, match="fold 5 does not exist"):
        data.for_fold(5)


# ------------------------------------------------------------------------------------- the guard
def test_test_split_raises_inside_tuning_and_works_outside(wf_data):
    cfg, _, _, data = wf_data
    assert len(data.session_indices("test")) > 0  # outside: fine
    with tuning_phase():
        assert in_tuning_phase()
        assert len(data.session_indices("val")) > 0 and len(data.session_indices("train")) > 0
        with pytest.raises(HeldOutAccessError, match="asked for the 'test' split"):
            data.session_indices("test")
        with pytest.raises(HeldOutAccessError):
            make_env(cfg, None, split="test", data=data)
    assert not in_tuning_phase()
    assert len(data.session_indices("test")) > 0  # and fine again afterwards


def test_horizon_refuses_later_folds_blocks(wf_data):
    _, _, _, data = wf_data
    f0, f2 = data.for_fold(0), data.for_fold(2)
    horizon = f0.splits["test"][0]
    with tuning_phase(horizon=horizon):
        f0.session_indices("train")
        f0.session_indices("val")
        # fold 2 trains on sessions that are fold 0's test block: not while choosing for fold 0
        with pytest.raises(HeldOutAccessError, match="on or after"):
            f2.session_indices("train")
    f2.session_indices("train")


def test_the_phase_ends_even_when_the_body_raises():
    with pytest.raises(RuntimeError):
        with tuning_phase():
            raise RuntimeError("boom")
    assert not in_tuning_phase()
