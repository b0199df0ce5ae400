"""Config YAML: aliases, oversized and too-deep documents are refused fast, naming file and line."""

import time

import pytest

from intradayjules.config import load_config
from intradayjules.errors import ConfigError
from intradayjules.safe_yaml import MAX_CONFIG_BYTES, load_yaml

# a few hundred bytes naming 9**9 (387 million) strings once aliases are expanded
BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
) + "\n"


def test_alias_bomb_is_refused_at_once(tmp_path):
    assert len(BOMB) < 700
    p = tmp_path / "bomb.yaml"
    p.write_text(BOMB)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb.yaml:\n  line 1, column 4: YAML anchor &a is not allowed"):
        load_config(p)
    assert time.perf_counter() - t0 < 1.0


def test_a_single_alias_is_refused_too():
    with pytest.raises(ConfigError, match="line 2, column 12: YAML alias \\*x"):
        load_yaml("env: {a: 1}\nagent: {n: *x}\n", "c.yaml")


def test_size_and_depth_caps(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n" + "#" * MAX_CONFIG_BYTES)
    with pytest.raises(ConfigError, match=f"(?s)big.yaml.*at most {MAX_CONFIG_BYTES:,} bytes"):
        load_config(big)
    with pytest.raises(ConfigError, match="nesting deeper than 64"):
        load_yaml("a: " + "[" * 100 + "]" * 100)


def test_plain_configs_still_load(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("name: ok\nagent: {seed: 3, net_arch: [32, 32]}\ntune: {n_trials: 4}\n")
    cfg = load_config(p)
    assert (cfg.name, cfg.agent.seed, cfg.agent.net_arch, cfg.tune.n_trials) == ("ok", 3, [32, 32], 4)
