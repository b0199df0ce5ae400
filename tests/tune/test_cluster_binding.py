"""`cluster head --node-ip 127.0.0.2 --block`: every listening socket of the node is on 127.0.0.2 (Ray alone
binds its GCS and raylet on all interfaces), and SIGTERM to the command stops the node it started.

Real Ray processes on loopback, with session files in a short private /tmp folder and a private token;
every process is stopped by pid."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from intradayjules.procs import pid_alive  # noqa: E402
from intradayjules.tune import cluster  # noqa: E402

pytestmark = pytest.mark.slow
LOOPBACK = "127.0.0.2"


def listening(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket in LISTEN state held by ``pids`` (Linux /proc)."""
    owner = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owner[target[8:-1]] = pid
        except OSError:
            pass
    out = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A" or f[9] not in owner:  # 0A: LISTEN
                continue
            ip_hex, port_hex = f[1].split(":")
            raw = bytes.fromhex(ip_hex)
            if family == socket.AF_INET:
                ip = socket.inet_ntop(family, raw[::-1])
            else:
                ip = socket.inet_ntop(family, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            out.append((owner[f[9]], ip, int(port_hex, 16)))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_ray(monkeypatch):
    tmp = Path(tempfile.mkdtemp(prefix="ijbind_", dir="/tmp"))  # Ray's socket paths must stay short
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def _head(tmp: Path, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "intradayjules.cli.cluster_cmd", "head", "--port", str(port), "--node-ip", LOOPBACK,
           "--num-cpus", "1", "--temp-dir", str(tmp / "ray"), "--token-file", str(tmp / "token"), "--block", *extra]
    return subprocess.Popen(cmd, stdout=open(tmp / "head.log", "ab"), stderr=subprocess.STDOUT)


def _tree(proc: subprocess.Popen) -> set[int]:
    return {proc.pid, *cluster._descendants(proc.pid)}


def _wait_gcs(proc: subprocess.Popen, port: int, tmp: Path) -> list[tuple[int, str, int]]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp / "head.log").read_text()[-3000:]
        socks = listening(_tree(proc))
        if any(p == port for _, _, p in socks) and len(socks) >= 3:
            time.sleep(1.0)  # the raylet's ports come up right after the GCS
            return listening(_tree(proc))
        time.sleep(0.3)
    raise AssertionError(f"GCS never listened on {port}:\n{(tmp / 'head.log').read_text()[-3000:]}")


def _sigterm_and_wait_all_gone(proc: subprocess.Popen, tmp: Path) -> None:
    tree = _tree(proc)
    os.kill(proc.pid, signal.SIGTERM)  # the command only, as a service manager would
    proc.wait(90)
    deadline = time.monotonic() + 60
    while any(pid_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [p for p in tree if pid_alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"SIGTERM to `cluster head --block` left {left} running"


def test_every_port_binds_to_the_node_ip_and_sigterm_stops_the_node(private_ray):
    port = _free_port()
    head = _head(private_ray, port)
    try:
        socks = _wait_gcs(head, port, private_ray)
        comms = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid, _, _ in socks}
        assert {"gcs_server", "raylet"} <= set(comms.values()), socks
        wrong = [(comms[pid], ip, p) for pid, ip, p in socks if ip not in (LOOPBACK, f"::ffff:{LOOPBACK}")]
        assert not wrong, f"listening elsewhere than {LOOPBACK}: {wrong}"
        out, deadline = "", time.monotonic() + 90  # the pinned node works: the GCS answers on LOOPBACK
        while "/1.0 CPU" not in out and time.monotonic() < deadline:
            time.sleep(1.0)
            out = cluster.run_ray([cluster.ray_exe(), "status", f"--address={LOOPBACK}:{port}"],
                                  private_ray / "token", timeout=60)
        assert "/1.0 CPU" in out, out
    finally:
        _sigterm_and_wait_all_gone(head, private_ray)


def test_control_without_pinning_ray_listens_on_all_interfaces(private_ray):
    """What the test above guards against: Ray's own binds (so the check there can fail)."""
    port = _free_port()
    head = _head(private_ray, port, "--no-pin-bind")
    try:
        socks = _wait_gcs(head, port, private_ray)
        gcs = [ip for _, ip, p in socks if p == port]
        assert gcs and gcs[0] in ("0.0.0.0", "::"), socks
    finally:
        _sigterm_and_wait_all_gone(head, private_ray)
