from pathlib import Path

import pytest

from intradayjules.config import ExperimentConfig, config_from_dict, dump_config, load_config
from intradayjules.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_loads_and_round_trips(tmp_path):
    cfg = load_config(REPO / "examples/configs/quickstart.yaml")
    assert cfg.name == "quickstart"
    assert cfg.risk.weights.drawdown == 0.30 and cfg.agent.learning_rate == 1e-4
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"env": {"position_size": -1}}, "env.position_size: must be > 0"),
        ({"env": {"cost_bps": 5}}, "env.cost_bps: unknown key"),
        ({"market": {"flat_cost_bps": -1}}, "market.flat_cost_bps: must be >= 0"),
        ({"agent": {"batch_size": "big"}}, "agent.batch_size:"),
        ({"risk": {"weights": {"drawdown": 0.5}}}, "risk.weights: weights must sum to 1"),
        ({"data": {"timezone": "Mars/Olympus"}}, "data.timezone: unknown time zone"),
        ({"data": {"source": "path"}}, "data: source 'path' needs data.path"),
        ({"nonsense": 1}, "nonsense: unknown key"),
    ],
)
def test_errors_name_the_field_path(data, expected):
    with pytest.raises(ConfigError) as e:
        config_from_dict(data, "x.yaml")
    assert any(p.startswith(expected) for p in e.value.problems), e.value.problems
    assert "x.yaml" in str(e.value)


def test_yaml_syntax_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML syntax"):
        load_config(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_use_dotted_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: t\n")
    cfg = load_config(p, {"agent.seed": 7, "env.position_size": 0.5})
    assert cfg.agent.seed == 7 and cfg.env.position_size == 0.5


def test_defaults_match_original_system():
    cfg = ExperimentConfig()
    a = cfg.agent
    assert (a.learning_rate, a.gamma, a.buffer_size, a.learning_starts, a.batch_size,
            a.target_update_interval, a.exploration_final_eps, a.exploration_fraction) == (
        1e-4, 0.99, 100_000, 10_000, 64, 1_000, 0.05, 0.1)
    assert cfg.market.flat_cost_bps == 5.0 and cfg.env.position_size == 0.25
    assert cfg.env.max_daily_drawdown == 0.02 and cfg.features.lookback == 5
    assert (cfg.risk.stop_threshold, cfg.risk.patience, cfg.risk.illiquid_penalty_multiplier) == (0.75, 5, 3.0)
    assert (cfg.tune.sampler_seed, cfg.tune.asha_grace_period, cfg.tune.asha_reduction_factor,
            cfg.tune.pbt_perturbation_interval) == (42, 10, 2, 20)


def test_configuration_reference_is_in_step_with_the_schema():
    """docs/configuration.md is generated from the schema; regenerate with
    `python -m intradayjules.config.reference > docs/configuration.md`."""
    from intradayjules.config.reference import reference

    doc = (REPO / "docs/configuration.md").read_text()
    assert doc == reference(), "docs/configuration.md is out of date: regenerate it"
    for key in ("env.position_size", "risk.weights.drawdown", "tune.n_trials", "tracking.registered_model"):
        assert f"`{key}`" in doc
