"""Lineage helpers against independent references: sha256sum, git itself, hand-written expectations."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from intradayjules.config import ExperimentConfig
from intradayjules.track.lineage import (IntegrityError, Lineage, flatten_config, git_state, sha256_file,
                                         verify_sha256)


def test_sha256_matches_sha256sum(tmp_path):
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    p = tmp_path / "blob.bin"
    p.write_bytes(os.urandom(3 * (1 << 20) + 17))  # spans several 1 MiB blocks plus a remainder
    ref = subprocess.run(["sha256sum", str(p)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert sha256_file(p) == ref


def test_verify_refuses_one_flipped_byte(tmp_path):
    p = tmp_path / "m.zip"
    p.write_bytes(b"model-bytes" * 1000)
    digest = sha256_file(p)
    verify_sha256(p, digest)
    data = bytearray(p.read_bytes())
    data[5000] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="m.zip.*integrity"):
        verify_sha256(p, digest)


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_git_state_commit_and_dirty_flag(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "one")
    commit, dirty = git_state(repo / "a.py")
    assert commit == _git(repo, "rev-parse", "HEAD") and len(commit) == 40
    assert dirty is False
    (repo / "a.py").write_text("x = 2\n")
    assert git_state(repo) == (commit, True)
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    assert git_state(outside) == (None, None)


def test_flatten_config_hand_example():
    nested = {"a": {"b": 1, "c": [1, 2], "d": {"e": 0.5}}, "f": None, "g": "x", "h": {}}
    assert flatten_config(nested) == {"a.b": "1", "a.c": "[1,2]", "a.d.e": "0.5", "f": "None", "g": "x",
                                      "h": "{}"}


def test_flatten_config_covers_every_leaf_of_the_experiment_config():
    cfg = ExperimentConfig()
    flat = flatten_config(cfg)
    assert flat["agent.learning_rate"] == "0.0001"
    assert flat["risk.weights.drawdown"] == "0.3"
    assert flat["features.ema_windows"] == "[10,20,50]"
    assert flat["tracking.registered_model"] == "intradayjules-dqn"

    def leaves(d, prefix=""):  # an independent walk of the dumped config
        n = 0
        for k, v in d.items():
            n += leaves(v, prefix + k + ".") if isinstance(v, dict) and v else 1
        return n

    assert len(flat) == leaves(cfg.model_dump(mode="json"))
    assert all(len(k) <= 250 and len(v) <= 6000 for k, v in flat.items())  # MLflow param limits


def test_lineage_tags_round_trip():
    cfg = ExperimentConfig(name="lin")
    lin = Lineage.collect(cfg, data_fingerprint="fp1", feature_store_key="key1", feature_version="3", run="r")
    tags = lin.tags()
    assert tags["intradayjules.data_fingerprint"] == "fp1"
    assert tags["intradayjules.git_commit"] == lin.git_commit
    assert tags["intradayjules.package_version"] == "0.1.0"
    back = Lineage.from_tags(tags, config=lin.config)
    assert (back.data_fingerprint, back.feature_store_key, back.feature_version, back.git_commit, back.git_dirty,
            back.extra) == ("fp1", "key1", "3", lin.git_commit, lin.git_dirty, {"run": "r"})
    other = Lineage.collect(ExperimentConfig(name="lin2"), data_fingerprint="fp1")
    assert other.tags()["intradayjules.config_sha256"] != tags["intradayjules.config_sha256"]
