"""The config package: one override helper, presets shipped in the package, --set on commands."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from intradayjules.cli import app
from intradayjules.config import (ExperimentConfig, apply_overrides, load_config, parse_set_options, preset_names,
                                  preset_path, resolve_config_ref)
from intradayjules.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_apply_overrides_validates_and_keeps_profile_values_derived():
    cfg = ExperimentConfig()
    assert cfg.risk.profile == "balanced" and cfg.risk.drawdown_penalty == 1.0
    off = apply_overrides(cfg, {"risk.profile": "off", "agent.seed": 9})
    assert off.agent.seed == 9 and off.risk.drawdown_penalty == 0.0  # derived from the new profile
    explicit = apply_overrides(cfg, {"risk.drawdown_penalty": 4.0})
    assert apply_overrides(explicit, {"risk.profile": "off"}).risk.drawdown_penalty == 4.0  # explicit wins
    with pytest.raises(ConfigError, match=r"agent\.nope"):
        apply_overrides(cfg, {"agent.nope": 1})
    with pytest.raises(ConfigError, match=r"agent\.gamma"):
        apply_overrides(cfg, {"agent.gamma": 7})
    assert cfg.agent.seed != 9  # the original is untouched


def test_parse_set_options_reads_yaml_values():
    assert parse_set_options(["a.b=3", "c=[x, y]", "d=0.5", "e=true"]) == {"a.b": 3, "c": ["x", "y"], "d": 0.5,
                                                                           "e": True}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set_options(["nothing"])


def test_presets_ship_inside_the_package_and_resolve_by_name(tmp_path, monkeypatch):
    assert {"quickstart", "illiquid_experiment", "illiquid_real", "real_bars"} <= set(preset_names())
    assert "site-packages" in str(preset_path("quickstart")) or "src/intradayjules" in str(preset_path("quickstart"))
    monkeypatch.chdir(tmp_path)  # works from any directory
    (tmp_path / "quickstart").mkdir()  # a folder named like the preset (a run's output) does not shadow it
    assert load_config(resolve_config_ref("quickstart")).name == "quickstart"
    assert (REPO / "examples/configs/quickstart.yaml").read_text() == preset_path("quickstart").read_text()
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        resolve_config_ref("nope")
    own = tmp_path / "mine.yaml"
    own.write_text("name: mine\n")
    assert resolve_config_ref(own) == own


def test_set_on_commands_that_take_a_config():
    shown = runner.invoke(app, ["config", "show", "quickstart", "--set", "agent.seed=123", "--set", "name=zz"])
    assert shown.exit_code == 0, shown.output
    d = yaml.safe_load(shown.output)
    assert d["agent"]["seed"] == 123 and d["name"] == "zz"
    bad = runner.invoke(app, ["config", "validate", "quickstart", "--set", "env.nope=1"])
    assert bad.exit_code == 2 and "env.nope" in bad.output
    for cmd in (["run"], ["train"], ["evaluate"], ["tune"], ["env", "rollout"], ["features", "build"],
                ["experiment", "illiquid"], ["config", "show"]):
        res = runner.invoke(app, [*cmd, "--help"])
        assert "--set" in res.output, cmd
