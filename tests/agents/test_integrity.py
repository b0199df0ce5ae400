"""Signed pickles: `train --resume` refuses a checkpoint or replay buffer it did not write (the marker a
malicious pickle writes when unpickled never appears), and a signature cannot be forged without the key."""

import hashlib
import json
import os
import shutil

import pytest

from intradayjules.agents import integrity
from intradayjules.agents.dqn import latest_checkpoint, load_model, replay_buffer_for
from intradayjules.pipeline.train_run import train
from intradayjules.errors import IntegrityError


@pytest.fixture(scope="module")
def checkpointed(prepared_small, tmp_path_factory):
    """A run with checkpoints (and its replay buffer) at 1000 steps."""
    run = tmp_path_factory.mktemp("ckpt") / "run"
    train(prepared_small, run, total_timesteps=1000)
    ckpt = latest_checkpoint(run)
    assert ckpt is not None and integrity.signature_state(ckpt) == "valid"
    assert integrity.signature_state(replay_buffer_for(ckpt)) == "valid"
    return run, ckpt


def _copy_run(run, dst):
    shutil.copytree(run, dst)
    return dst, latest_checkpoint(dst)


def test_the_malicious_zip_really_runs_code_when_sb3_loads_it(checkpointed, malicious, tmp_path):
    """Control: the attack file used below does execute on a plain DQN.load (so the refusals matter)."""
    from stable_baselines3 import DQN

    bad = malicious.sb3_zip(checkpointed[1], tmp_path / "evil.zip")
    try:
        DQN.load(str(bad))
    except Exception:  # noqa: BLE001 - the payload returns None where a space was expected
        pass
    assert malicious.marker.exists()


def test_resume_refuses_an_unsigned_checkpoint(prepared_small, checkpointed, malicious, tmp_path):
    run, ckpt = _copy_run(checkpointed[0], tmp_path / "run")
    evil = ckpt.with_name("dqn_5000_steps.zip")  # newest: what `--resume RUN_DIR` picks
    malicious.sb3_zip(ckpt, evil)
    assert latest_checkpoint(run) == evil
    with pytest.raises(IntegrityError, match="has no signature.*--trust-pickle"):
        train(prepared_small, run, total_timesteps=2000, resume_from=evil)
    assert not malicious.marker.exists()


def test_resume_refuses_a_replaced_checkpoint_even_with_trust_pickle(prepared_small, checkpointed, malicious,
                                                                        tmp_path):
    run, ckpt = _copy_run(checkpointed[0], tmp_path / "run")
    malicious.sb3_zip(checkpointed[1], ckpt)  # same name, signature sidecar left in place
    with pytest.raises(IntegrityError, match="does not match its signature"):
        train(prepared_small, run, total_timesteps=2000, resume_from=ckpt, trust_pickle=True)
    # forging the sidecar with a plain sha256 (no key) does not help
    side = integrity.sig_path(ckpt)
    rec = json.loads(side.read_text())
    rec["hmac"] = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    side.write_text(json.dumps(rec))
    with pytest.raises(IntegrityError, match="does not match its signature"):
        train(prepared_small, run, total_timesteps=2000, resume_from=ckpt)
    assert not malicious.marker.exists()


def test_resume_refuses_a_malicious_replay_buffer(prepared_small, checkpointed, malicious, tmp_path):
    run, ckpt = _copy_run(checkpointed[0], tmp_path / "run")
    buf = replay_buffer_for(ckpt)
    malicious.pickle_file(buf)  # its signature no longer matches
    with pytest.raises(IntegrityError, match="replay buffer .* does not match its signature"):
        train(prepared_small, run, total_timesteps=2000, resume_from=ckpt)
    integrity.sig_path(buf).unlink()  # no signature at all
    with pytest.raises(IntegrityError, match="replay buffer .* has no signature"):
        train(prepared_small, run, total_timesteps=2000, resume_from=ckpt)
    assert not malicious.marker.exists()


def test_signed_checkpoint_resumes(prepared_small, checkpointed, tmp_path):
    run, ckpt = _copy_run(checkpointed[0], tmp_path / "run")
    res = train(prepared_small, run, total_timesteps=1500, resume_from=ckpt)
    assert res.timesteps == 1500
    assert integrity.signature_state(res.model_path) == "valid"


def test_trust_pickle_checks_a_sha256_sidecar(checkpointed, tmp_path):
    p = tmp_path / "mine.zip"
    shutil.copyfile(checkpointed[1], p)  # unsigned copy of a benign model
    with pytest.raises(IntegrityError, match="no signature"):
        load_model(p)
    assert load_model(p, trust_pickle=True).num_timesteps == 1000
    (tmp_path / "mine.zip.sha256").write_text("0" * 64 + "  mine.zip\n")
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        load_model(p, trust_pickle=True)


def test_key_file_must_be_private(tmp_path, monkeypatch):
    key = tmp_path / "k"
    monkeypatch.setenv(integrity.KEY_ENV, str(key))
    f = tmp_path / "f.bin"
    f.write_bytes(b"data")
    integrity.sign(f)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert integrity.signature_state(f) == "valid"
    os.chmod(key, 0o644)
    with pytest.raises(IntegrityError, match="readable or writable by others"):
        integrity.signature_state(f)
    os.chmod(key, 0o600)
    # another user's key (simulated by another key file): the signature does not verify
    monkeypatch.setenv(integrity.KEY_ENV, str(tmp_path / "other"))
    g = tmp_path / "g.bin"
    g.write_bytes(b"x")
    integrity.sign(g)  # creates the other key
    assert integrity.signature_state(f) == "invalid"


def test_cli_train_resume_refuses_a_malicious_checkpoint(prepared_small, checkpointed, malicious, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from intradayjules.cli import app

    run, ckpt = _copy_run(checkpointed[0], tmp_path / "run")
    malicious.sb3_zip(ckpt, ckpt.with_name("dqn_9000_steps.zip"))  # the newest: what --resume RUN_DIR takes
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(prepared_small.cfg.model_dump(mode="json")))
    r = CliRunner().invoke(app, ["train", "-c", str(cfg), "--resume", str(run), "--no-track", "--name", "resumed"])
    assert r.exit_code != 0 and "has no signature" in r.output and "--trust-pickle" in r.output, r.output
    assert not malicious.marker.exists()


def test_a_kill_while_the_next_buffer_is_written_leaves_the_newest_checkpoint_resumable(prepared_small,
                                                                                        checkpointed, tmp_path):
    """The buffer of step N is signed before the zip of step N: a torn, unsigned buffer of the next
    checkpoint (its zip never written) is not the newest checkpoint's buffer, and resuming works."""
    run, ckpt = _copy_run(checkpointed[0], tmp_path / "run")
    steps = int(ckpt.stem.split("_")[-2])
    torn = ckpt.parent / f"replay_buffer_{steps + 500}.pkl"
    torn.write_bytes(b"\x80\x04torn")  # the kill's leftover: no signature, no zip of that step
    assert replay_buffer_for(ckpt) == ckpt.parent / f"replay_buffer_{steps}.pkl"
    assert integrity.signature_state(replay_buffer_for(ckpt)) == "valid"
    res = train(prepared_small, run, total_timesteps=steps + 1000, resume_from=ckpt)
    assert res.timesteps == steps + 1000
    assert not torn.exists()  # removed at the next save
