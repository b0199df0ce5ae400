"""Run directories: names that would leave the work dir are refused; one writer at a time, and the second
is told which pid holds the directory."""

import os
import subprocess
import sys
import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from intradayjules import rundir
from intradayjules.cli import app
from intradayjules.errors import ConfigError

runner = CliRunner()


@pytest.mark.parametrize("name", ["../x", "../../x", "a/b", "/abs", ".", "..", ".hidden", "", "x" * 129, "a b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ConfigError, match="used as a directory name"):
        rundir.check_name(name, "run name")


def test_safe_names_pass():
    for name in ("quickstart", "run-1", "a.b_c", "X" * 128):
        assert rundir.check_name(name) == name


def _cfg(tmp_path):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump({"workdir": str(tmp_path / "work" / "runs"), "tracking": {"enabled": False}}))
    return p


def test_cli_names_cannot_escape_the_work_dir(tmp_path):
    cfg = _cfg(tmp_path)
    before = set(tmp_path.rglob("*"))
    r = runner.invoke(app, ["train", "-c", str(cfg), "--name", "../../x", "--no-track"])
    assert r.exit_code != 0 and "run name (--name): '../../x'" in r.output, r.output
    r = runner.invoke(app, ["tune", "-c", str(cfg), "--study", "../x", "--no-progress", "--no-track"])
    assert r.exit_code != 0 and "study name" in r.output and "'../x'" in r.output, r.output
    assert set(tmp_path.rglob("*")) == before  # nothing was created, inside or outside
    assert not (tmp_path / "x").exists() and not (tmp_path / "work" / "x").exists()


HOLDER = textwrap.dedent("""
    import sys, time
    from intradayjules import rundir
    with rundir.lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    d = tmp_path / "runs" / "x"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(rundir.RunDirLocked, match=f"{d} is in use by pid {holder.pid} on "):
            with rundir.lock(d):
                pass
        # the CLI refuses too, before any work (train takes the lock first)
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(yaml.safe_dump({"name": "x", "workdir": str(tmp_path / "runs"), "tracking": {"enabled": False}}))
        r = runner.invoke(app, ["train", "-c", str(cfg), "--no-track"])
        assert r.exit_code != 0 and f"in use by pid {holder.pid}" in r.output, r.output
    finally:
        holder.kill()  # killed, not released: the kernel drops the lock with the process
        holder.wait()
    with rundir.lock(d):  # free again at once, no stale lock
        with rundir.lock(d):  # re-entrant in one process
            pass
        other = subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(60)", "pass"), str(d)], env=env,
                               capture_output=True, text=True, timeout=60)  # ... but not across processes
        assert other.returncode != 0
        assert f"RunDirLocked: run directory {d} is in use by pid {os.getpid()}" in other.stderr
