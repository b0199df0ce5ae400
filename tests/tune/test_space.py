"""Search space, simplex weights, trial-function loading, device selection (fast, no processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from intradayjules.config import ExperimentConfig, ParamSpec, config_from_dict
from intradayjules.errors import ConfigError
from intradayjules.tune.space import DEFAULT_SPACE, SIMPLEX_LOW, SIMPLEX_PREFIX, SearchSpace
from intradayjules.tune.trial import TrialFailed, assign_gpus, check_value, load_callable, trial_device

HERE = Path(__file__).resolve().parent
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(**tune) -> SearchSpace:
    return SearchSpace.from_config(config_from_dict({"tune": tune}).tune)


def test_default_space_covers_the_issue_list_and_samples_valid_configs():
    want = {"agent.learning_rate", "agent.gamma", "agent.buffer_size", "agent.batch_size",
            "agent.target_update_interval", "agent.exploration_fraction", "agent.net_arch",
            "risk.illiquid_penalty_multiplier"}
    assert want <= set(DEFAULT_SPACE)
    space = _space()
    assert space.simplex == ["drawdown", "ulcer", "impact", "staleness"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    cfg = ExperimentConfig()
    archs = set()
    for _ in range(40):
        params = space.materialize(space.suggest(study.ask()))
        c = space.apply(cfg, params)
        assert 1e-5 <= c.agent.learning_rate <= 1e-3
        assert 10_000 <= c.agent.buffer_size <= 200_000 and isinstance(c.agent.buffer_size, int)
        assert c.agent.batch_size in (32, 64, 128, 256)
        assert c.agent.net_arch in ([64, 64], [128, 128], [256, 256], [64, 64, 64])
        archs.add(tuple(c.agent.net_arch))
        w = c.risk.weights
        assert w.liquidity == 0.0
        assert abs(w.drawdown + w.ulcer + w.impact + w.staleness - 1.0) < 1e-9
        assert c.risk.illiquid_penalty_multiplier == params["risk.illiquid_penalty_multiplier"]
    assert len(archs) >= 3  # list-valued choices really are sampled and decoded


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=5, max_size=5))
def test_simplex_weights_always_sum_to_one(us):
    space = _space(risk_weight_components=["drawdown", "ulcer", "impact", "staleness", "liquidity"],
                   search_space={})
    raw = {SIMPLEX_PREFIX + c: u for c, u in zip(space.simplex, us)}
    p = space.materialize(raw)
    w = [p[f"risk.weights.{c}"] for c in space.simplex]
    assert all(x >= 0 for x in w)
    assert abs(sum(w) - 1.0) < 1e-12
    space.apply(ExperimentConfig(), p)  # and the RiskWeights validator accepts them


def test_simplex_from_uniform_draws_is_flat_dirichlet():
    """Independent reference: numpy's Dirichlet(1,1,1,1) sampler; two-sample KS per coordinate."""
    space = _space(search_space={})
    rng = np.random.default_rng(0)
    n = 4000
    u = rng.uniform(SIMPLEX_LOW, 1.0, size=(n, 4))
    ours = np.array([[space.materialize({SIMPLEX_PREFIX + c: row[i] for i, c in enumerate(space.simplex)})
                      [f"risk.weights.{c}"] for c in space.simplex] for row in u])
    ref = rng.dirichlet(np.ones(4), size=n)
    for k in range(4):
        assert stats.ks_2samp(ours[:, k], ref[:, k]).pvalue > 0.001
    # and a wrong construction (plain normalised uniforms) is detected by the same test
    wrong = u / u.sum(axis=1, keepdims=True)
    assert stats.ks_2samp(wrong[:, 0], ref[:, 0]).pvalue < 0.001


def test_user_space_int_log_float_categorical_and_clipping():
    space = _space(search_space={
        "agent.gamma": {"type": "float", "low": 0.95, "high": 0.99},
        "agent.learning_starts": {"type": "int", "low": 100, "high": 1000, "log": True},
        "market.model": {"type": "categorical", "choices": ["realistic", "flat"]},
    }, search_risk_weights=False)
    assert space.simplex == []
    p = space.materialize({"agent.gamma": 1.3, "agent.learning_starts": 5000.7, "market.model": "flat"})
    assert p == {"agent.gamma": 0.99, "agent.learning_starts": 1000, "market.model": "flat"}  # PBT overshoot clipped
    c = space.apply(ExperimentConfig(), p)
    assert c.market.model == "flat" and c.agent.learning_starts == 1000
    assert "risk.weights.drawdown" not in p and c.risk.weights.drawdown == 0.30


def test_bad_space_entries_name_the_key():
    with pytest.raises(ConfigError) as e:
        _space(search_space={"agent.lr": {"type": "float", "low": 1e-5, "high": 1e-3}})
    assert "tune.search_space.agent.lr: no field 'lr' in agent" in str(e.value)
    with pytest.raises(ConfigError) as e:
        _space(search_space={"agent": {"type": "int", "low": 1, "high": 2}})
    assert "is a section" in str(e.value)
    with pytest.raises(ConfigError) as e:
        _space(search_space={"risk.weights.ulcer": {"type": "float", "low": 0, "high": 1}})
    assert "simplex" in str(e.value)
    with pytest.raises(ConfigError) as e:
        bad = {"agent.gamma": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}
        config_from_dict({"tune": {"search_space": bad}})
    assert "log scale needs low > 0" in str(e.value)
    with pytest.raises(ConfigError) as e:
        config_from_dict({"tune": {"risk_weight_components": ["drawdown", "sharpe"]}})
    assert "tune.risk_weight_components" in str(e.value) and "sharpe" in str(e.value)


def test_sampled_value_the_schema_rejects_is_a_clear_error():
    space = _space(search_space={"agent.gamma": {"type": "float", "low": 0.9, "high": 1.5}}, search_risk_weights=False)
    with pytest.raises(ConfigError) as e:
        space.apply(ExperimentConfig(), space.materialize({"agent.gamma": 1.2}))
    assert "sampled agent.gamma: must be <= 1" in str(e.value)


def test_categorical_with_unknown_raw_value_is_rejected():
    space = _space(search_space={"agent.net_arch": ParamSpec(type="categorical", choices=[[8], [16]]).model_dump()},
                   search_risk_weights=False)
    assert space.materialize({"agent.net_arch": "[16]"}) == {"agent.net_arch": [16]}
    with pytest.raises(ConfigError, match="not one of"):
        space.materialize({"agent.net_arch": "[32]"})


def test_tpe_sequence_is_reproducible_from_the_seed():
    space = _space()

    def draws(seed):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        out = []
        for _ in range(12):
            t = study.ask()
            p = space.materialize(space.suggest(t))
            study.tell(t, -abs(np.log10(p["agent.learning_rate"]) + 4))
            out.append(p)
        return out

    assert draws(42) == draws(42)
    assert draws(42) != draws(43)


def test_load_callable_by_module_and_by_file_with_clear_errors():
    assert load_callable("os.path:join")("a", "b") == "a/b"
    fn = load_callable(f"{HERE / 'objectives.py'}:noisy_quadratic")
    assert fn.__name__ == "noisy_quadratic"
    for bad, msg in [("os.path.join", "expected 'module:function'"),
                     ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
                     ("os.path:nope", "has no callable 'nope'"),
                     ("/no/such/file.py:f", "no such file")]:
        with pytest.raises(ConfigError) as e:
            load_callable(bad)
        assert "tune.trial_fn" in str(e.value) and msg in str(e.value)


def test_check_value_and_device_selection():
    assert check_value(np.float32(1.5)) == 1.5
    for v in (float("nan"), float("inf"), "x", None):
        with pytest.raises(TrialFailed):
            check_value(v)
    assert trial_device(0.0, None) == "cpu"
    assert trial_device(0.5, "3") == "cuda:0"  # Ray masks the assigned GPU: it is cuda:0 inside
    with pytest.raises(TrialFailed, match="no GPU"):
        trial_device(0.25, "")
    assert assign_gpus(5, ["0", "1"]) == ["0", "1", "0", "1", "0"]
    assert assign_gpus(2, []) == [None, None]
