"""Turn spare machines into a Ray cluster: ``ray start``/``ray stop`` with one consistent environment.

Every process that talks to the cluster (``ray start`` on the head and on each worker, the tune driver,
``ray status``) gets the same settings from :func:`ray_env`:

- ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH=<token file>``: token authentication, always on,
  with *our* token file (default ``~/.intradayjules/ray/auth_token``, or ``$INTRADAYJULES_RAY_TOKEN``),
  never the implicit ``~/.ray/auth_token`` that a bare ``ray.init()`` would write. Copy the file to
  every node (``scp``, mode 600); a node with another token is refused with InvalidAuthToken.
- ``RAY_USAGE_STATS_ENABLED=0``: no usage statistics leave the machine.
- with a node address (``--node-ip``), every listening socket of the node binds to it: Ray 2.60's GCS,
  raylet (node and object manager) and worker gRPC servers bind the wildcard address (all interfaces;
  measured: ``::`` for ``--node-ip-address=127.0.0.2``) and have no option to change that, so the node's
  processes run with a small ``LD_PRELOAD`` library (:data:`SHIM_SOURCE`, built once with the system C
  compiler into the token file's folder, mode 700) that turns a ``bind`` to the wildcard address into a
  ``bind`` to ``$INTRADAYJULES_BIND_IP`` (IPv4-mapped for dual-stack sockets); binds to a specific
  address are left alone. Linux only; elsewhere, or without a C compiler, pinning fails with a clear
  error and ``pin_bind=False`` (``--no-pin-bind``) accepts Ray's all-interface binds.

This module never imports ray: it runs the ``ray`` executable of this interpreter's environment.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from ..errors import IntradayJulesError

TOKEN_ENV = "INTRADAYJULES_RAY_TOKEN"
BIND_IP_ENV = "INTRADAYJULES_BIND_IP"
DEFAULT_PORT = 6379

SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* bind() to the wildcard address -> bind() to $INTRADAYJULES_BIND_IP (intradayjules tune/cluster.py). */
typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real_bind = 0;
    if (!real_bind) real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *ip = getenv("INTRADAYJULES_BIND_IP");
    if (ip && *ip && addr) {
        if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
            struct sockaddr_in a;
            memcpy(&a, addr, sizeof a);
            if (a.sin_addr.s_addr == htonl(INADDR_ANY) && inet_pton(AF_INET, ip, &a.sin_addr) == 1)
                return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
        } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 a;
            struct in_addr v4;
            memcpy(&a, addr, sizeof a);
            if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) {
                if (inet_pton(AF_INET6, ip, &a.sin6_addr) == 1)
                    return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
                if (inet_pton(AF_INET, ip, &v4) == 1) {  /* dual-stack socket: the IPv4-mapped address */
                    memset(&a.sin6_addr, 0, sizeof a.sin6_addr);
                    a.sin6_addr.s6_addr[10] = 0xff;
                    a.sin6_addr.s6_addr[11] = 0xff;
                    memcpy(&a.sin6_addr.s6_addr[12], &v4, 4);
                    return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
                }
            }
        }
    }
    return real_bind(fd, addr, len);
}
"""


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


def bind_shim(folder: Path) -> Path:
    """The compiled :data:`SHIM_SOURCE` in ``folder`` (built on first use; mode 700 folder, checked owner)."""
    if not sys.platform.startswith("linux"):
        raise ClusterError(f"binding Ray to one address needs LD_PRELOAD (Linux); on {sys.platform} pass "
                           "--no-pin-bind to accept Ray's all-interface binds")
    digest = hashlib.sha256(SHIM_SOURCE.encode()).hexdigest()[:16]
    lib = folder / f"bindshim-{digest}.so"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if lib.exists():
        st = lib.stat()
        if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ClusterError(f"{lib} is not owned by you or is writable by others; delete it")
        return lib
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        raise ClusterError("binding Ray to --node-ip needs a C compiler (cc/gcc) once, to build "
                           f"{lib.name}; install one, or pass --no-pin-bind to accept Ray's all-interface binds")
    src = folder / f".bindshim-{digest}-{os.getpid()}.c"
    tmp = folder / f".bindshim-{digest}-{os.getpid()}.so"
    src.write_text(SHIM_SOURCE)
    try:
        out = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src), "-ldl"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise ClusterError(f"building {lib.name} failed ({cc}):\n{(out.stdout + out.stderr)[-2000:]}")
        os.chmod(tmp, 0o700)
        tmp.replace(lib)
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return lib


def ray_env(token_file: str | Path | None = None, base: dict[str, str] | None = None,
            create_token: bool = True, bind_ip: str | None = None) -> dict[str, str]:
    """The environment for every Ray process and driver of this project (see module docstring);
    ``bind_ip``: every listening socket of the processes started with it binds there."""
    env = dict(os.environ if base is None else base)
    path = ensure_token(token_path(token_file), create=create_token)
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(path))
    env.pop("RAY_AUTH_TOKEN", None)  # a stray inline token would override the file
    if bind_ip:
        lib = str(bind_shim(path.parent))
        pre = [p for p in env.get("LD_PRELOAD", "").split() if p and p != lib]
        env.update(LD_PRELOAD=" ".join([lib, *pre]), **{BIND_IP_ENV: bind_ip})
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
            timeout: float = 120.0, auth: bool = True, bind_ip: str | None = None) -> str:
    """Run a non-blocking ``ray`` command with :func:`ray_env` (``auth=False``: only usage stats off,
    for ``ray stop`` which needs no token); its output, or ClusterError."""
    if auth:
        env = ray_env(token_file, create_token=create_token, bind_ip=bind_ip)
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
               log: Path | None = None, bind_ip: str | None = None, foreground: bool = False) -> subprocess.Popen:
    """Start a *blocking* ``ray start ... --block`` as a child process in its own session (stop it with
    :func:`stop_node`). ``foreground``: its output goes to this process's stdout/stderr."""
    if "--block" not in cmd:
        raise ValueError("start_node needs a --block command")
    env = ray_env(token_file, create_token=create_token, bind_ip=bind_ip)
    if foreground:
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
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
