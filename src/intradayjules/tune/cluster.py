"""Turn spare machines into a Ray cluster: ``ray start``/``ray stop`` with one consistent environment.

Every process that talks to the cluster (``ray start`` on the head and on each worker, the tune driver,
``ray status``) gets the same settings from :func:`ray_env`:

- ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH=<token file>``: token authentication, always on,
  with *our* token file (default ``~/.intradayjules/ray/auth_token``, or ``$INTRADAYJULES_RAY_TOKEN``),
  never the implicit ``~/.ray/auth_token`` that a bare ``ray.init()`` would write. Copy the file to
  every node (``scp``, mode 600); a node with another token is refused with InvalidAuthToken.
- ``RAY_USAGE_STATS_ENABLED=0``: no usage statistics leave the machine.

This module never imports ray: it runs the ``ray`` executable of this interpreter's environment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import IntradayJulesError

TOKEN_ENV = "INTRADAYJULES_RAY_TOKEN"
DEFAULT_PORT = 6379


class ClusterError(IntradayJulesError):
    """A ``ray start/stop/status`` call failed; the message carries the command and Ray's output."""


def token_path(explicit: str | Path | None = None) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(TOKEN_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".intradayjules" / "ray" / "auth_token"


def ensure_token(path: Path, create: bool = True) -> Path:
    """The token file, created (64 hex chars, mode 600) if missing and ``create``."""
    if path.is_file() and path.read_text().strip():
        return path
    if not create:
        raise ClusterError(f"no Ray auth token at {path}: copy it from the head node "
                           f"(or set {TOKEN_ENV} to its path)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


def ray_env(token_file: str | Path | None = None, base: dict[str, str] | None = None,
            create_token: bool = True) -> dict[str, str]:
    """The environment for every Ray process and driver of this project (see module docstring)."""
    env = dict(os.environ if base is None else base)
    path = ensure_token(token_path(token_file), create=create_token)
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(path))
    env.pop("RAY_AUTH_TOKEN", None)  # a stray inline token would override the file
    return env


def apply_ray_env(token_file: str | Path | None = None, create_token: bool = True) -> None:
    """Set :func:`ray_env` in this process (call before ``import ray`` in a driver)."""
    env = ray_env(token_file, create_token=create_token)
    for key in ("RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):
        os.environ[key] = env[key]
    os.environ.pop("RAY_AUTH_TOKEN", None)


def ray_exe() -> str:
    exe = Path(sys.executable).parent / "ray"
    if exe.exists():
        return str(exe)
    found = shutil.which("ray")
    if not found:
        raise ClusterError("the 'ray' command is not installed: pip install 'intradayjules[ray]'")
    return found


def _node_args(node_ip: str | None, num_cpus: int | None, num_gpus: int | None,
               temp_dir: str | None, block: bool) -> list[str]:
    args = ["--disable-usage-stats"]
    if node_ip:
        args.append(f"--node-ip-address={node_ip}")
    if num_cpus is not None:
        args.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:
        args.append(f"--num-gpus={num_gpus}")
    if temp_dir:
        args.append(f"--temp-dir={temp_dir}")
    if block:
        args.append("--block")
    return args


def head_command(port: int = DEFAULT_PORT, node_ip: str | None = None, num_cpus: int | None = None,
                 num_gpus: int | None = None, temp_dir: str | None = None, block: bool = False) -> list[str]:
    return [ray_exe(), "start", "--head", f"--port={port}", "--include-dashboard=false",
            *_node_args(node_ip, num_cpus, num_gpus, temp_dir, block)]


def join_command(address: str, node_ip: str | None = None, num_cpus: int | None = None,
                 num_gpus: int | None = None, temp_dir: str | None = None, block: bool = False) -> list[str]:
    check_address(address)
    return [ray_exe(), "start", f"--address={address}", *_node_args(node_ip, num_cpus, num_gpus, temp_dir, block)]


def check_address(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"address must be HOST:PORT (got {address!r})")
    return address


def run_ray(cmd: list[str], token_file: str | Path | None = None, create_token: bool = False,
            timeout: float = 120.0, auth: bool = True) -> str:
    """Run a non-blocking ``ray`` command with :func:`ray_env` (``auth=False``: only usage stats off,
    for ``ray stop`` which needs no token); its output, or ClusterError."""
    if auth:
        env = ray_env(token_file, create_token=create_token)
    else:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{' '.join(cmd)}: no answer in {timeout:.0f} s") from None
    text = (out.stdout + out.stderr).strip()
    if out.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)} failed (exit {out.returncode}):\n{text[-3000:]}")
    return text


def start_node(cmd: list[str], token_file: str | Path | None = None, create_token: bool = False,
               log: Path | None = None) -> subprocess.Popen:
    """Start a *blocking* ``ray start ... --block`` as a child process (stop it with :func:`stop_node`)."""
    if "--block" not in cmd:
        raise ValueError("start_node needs a --block command")
    env = ray_env(token_file, create_token=create_token)
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def stop_node(proc: subprocess.Popen, timeout: float = 45.0, graceful: bool = True) -> int:
    """Stop a node started by :func:`start_node`.

    ``graceful``: SIGTERM its ``ray start --block``, which drains the node (running tasks get up to 30 s
    to finish) and tears down its raylet, object store and workers; SIGKILL the process group if it
    lingers. ``graceful=False``: SIGKILL the whole process group at once, like a machine that dies.
    """
    import signal

    if not graceful:
        tree = _descendants(proc.pid)  # Ray workers may leave the process group: kill the whole tree
        for pid in [proc.pid, *tree]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return proc.returncode
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out
