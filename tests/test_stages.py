"""stages.json of the main job (pipeline/stages.py): when a run directory is resumed, refused or restarted."""

from __future__ import annotations

import json

import pytest

from intradayjules.config import ExperimentConfig, apply_overrides
from intradayjules.pipeline.stages import STAGES_FILE, ResumeError, StageLog, newest_signed_checkpoint


def _cfg(tmp_path, **over) -> ExperimentConfig:
    return apply_overrides(ExperimentConfig(name="st", workdir=tmp_path / "runs"), over)


def test_unfinished_run_resumes_only_with_the_same_config(tmp_path):
    cfg = _cfg(tmp_path)
    out = tmp_path / "runs" / "st"
    log = StageLog.open(out, cfg)
    assert not log.resumed
    log.record("study", study="s", trials={"0": {"agent.learning_rate": 0.001}})
    # killed here: the same config resumes with the study's record
    again = StageLog.open(out, cfg)
    assert again.resumed and again.done("study")["trials"] == {"0": {"agent.learning_rate": 0.001}}
    # another config is refused, naming the field and both values; the log is left as it was
    with pytest.raises(ResumeError, match=r"agent\.total_timesteps was 100000 and is now 5000") as e:
        StageLog.open(out, _cfg(tmp_path, **{"agent.total_timesteps": 5000}))
    assert "stages.json" in str(e.value) and "study" in str(e.value)
    assert "study" in json.loads((out / STAGES_FILE).read_text())["stages"]


def test_finished_run_starts_fresh_and_drops_old_checkpoints(tmp_path):
    cfg = _cfg(tmp_path)
    out = tmp_path / "runs" / "st"
    log = StageLog.open(out, cfg)
    log.record("study", study="s", trials={})
    ckpts = out / "model" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / "dqn_3000_steps.zip").write_bytes(b"old")
    log.finish()
    fresh = StageLog.open(out, _cfg(tmp_path, **{"agent.total_timesteps": 5000}))  # a new config is fine now
    assert not fresh.resumed and fresh.stages == {} and not ckpts.exists()


def test_nothing_completed_restarts_and_unsigned_checkpoints_are_skipped(tmp_path):
    from intradayjules.agents.integrity import sign

    out = tmp_path / "runs" / "st"
    StageLog.open(out, _cfg(tmp_path))  # started, killed before any stage completed
    assert not StageLog.open(out, _cfg(tmp_path, **{"seed": 3})).resumed  # nothing to resume: no refusal
    ckpts = out / "model" / "checkpoints"
    ckpts.mkdir(parents=True)
    for steps in (1000, 2000):
        (ckpts / f"dqn_{steps}_steps.zip").write_bytes(b"x" * steps)
    sign(ckpts / "dqn_1000_steps.zip")  # 2000 was written, the kill came before its signature
    assert newest_signed_checkpoint(out / "model") == ckpts / "dqn_1000_steps.zip"
