"""The paper run's service: token-protected status and kill endpoints on 127.0.0.1, and the dashboard
in headless Chromium (driven over the DevTools protocol on a pipe): the page loads, shows the positions,
and its kill switch flattens them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from intradayjules.live.feed import ReplayFeed
from intradayjules.live.paper import start_paper
from intradayjules.live.service import DASHBOARD, HOST, Service, read_token

SRC = Path(__file__).resolve().parents[2] / "src"


def _get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {}


def test_token_file_is_created_private_and_reused(tmp_path):
    t = read_token(tmp_path / "tok")
    assert len(t) >= 32 and (tmp_path / "tok").stat().st_mode & 0o777 == 0o600
    assert read_token(tmp_path / "tok") == t
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(ValueError, match="at least 16"):
        read_token(tmp_path / "short")


def test_status_and_kill_need_the_token(deployed, tmp_path):
    run = start_paper(deployed.bundle, f"replay:{deployed.bars}", journal=tmp_path / "j.db")
    batches = iter(ReplayFeed(run.frame, symbols=run.policy.symbols))
    while not (run.loop.trading and any(run.loop.positions())):
        run.loop.on_batch(next(batches))
    svc = Service(run.loop, "s3cret-token-0123456789", {"name": "m", "version": "1"})
    port = svc.start(0)
    try:
        base = f"http://{HOST}:{port}"
        assert _get(base + "/api/status")[0] == 401
        assert _get(base + "/api/status", "wrong-token-0123456789")[0] == 401
        assert _get(base + "/api/kill", "wrong-token-0123456789", "POST")[0] == 401
        code, s = _get(base + "/api/status", "s3cret-token-0123456789")
        assert code == 200 and s["model"] == {"name": "m", "version": "1"}
        held = {p["symbol"]: p["qty"] for p in s["positions"]}
        assert held == dict(zip(run.policy.symbols, run.loop.positions())) and any(held.values())
        assert {r["rule"] for r in s["limits"]} >= {"max_gross_exposure", "daily_turnover", "daily_drawdown_kill"}
        gross = next(r for r in s["limits"] if r["rule"] == "max_gross_exposure")["used"]
        want = sum(abs(q) * run.loop.policy.close[k] for k, q in enumerate(run.loop.positions())) / run.loop.equity()
        assert gross == pytest.approx(want)
        assert not s["kill_switch"]["on"]
        assert _get(base + "/api/kill", "s3cret-token-0123456789", "POST")[0] == 200
        run.loop.on_batch(next(batches))  # the kill orders go out at this bar ...
        run.loop.on_batch(next(batches))  # ... and fill at the next bar's open
        code, s = _get(base + "/api/status", "s3cret-token-0123456789")
        assert s["kill_switch"]["on"] and s["kill_switch"]["manual"]
        assert all(p["qty"] == 0 for p in s["positions"])
        n = run.loop.stats.orders
        for _ in range(20):
            run.loop.on_batch(next(batches))
        assert run.loop.stats.orders == n  # nothing trades after the kill
    finally:
        svc.stop()
        run.close()


def test_dashboard_is_self_contained():
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", DASHBOARD)
    assert "fetch(" in DASHBOARD and "http://" not in DASHBOARD and "https://" not in DASHBOARD


# ------------------------------------------------------------------------------------ headless browser
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


class DevTools:
    """Chromium's DevTools protocol over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out; NUL-framed JSON)."""

    def __init__(self, exe: str, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{cmd_r} 4>&{out_w}', exe, "--headless", "--no-sandbox",
             "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(cmd_r, out_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._out_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd_w)
        os.close(self._out_r)


def _eval(dt: DevTools, session: str, expr: str):
    r = dt.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
    if "exceptionDetails" in r:
        raise AssertionError(f"{expr}: {r['exceptionDetails']}")
    return r["result"].get("value")


def _wait(dt, session, expr, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = _eval(dt, session, expr)
        if v:
            return v
        time.sleep(0.25)
    state = _eval(dt, session, "[document.getElementById('err').textContent, "
                  "document.getElementById('last-bar').textContent, document.body.dataset.killed]")
    raise AssertionError(f"timed out waiting for {what}; page (error, last bar, killed): {state}")


POSITIONS = ("JSON.stringify([...document.querySelectorAll('#positions tbody tr')]"
             ".map(r => [r.dataset.symbol, Number(r.dataset.qty)]))")


@pytest.mark.slow
def test_dashboard_in_headless_chromium_kill_switch_flattens(deployed, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    token_file = tmp_path / "token"
    cli = subprocess.Popen(
        [sys.executable, "-c", "from intradayjules.cli import main; main()", "paper", "--model", str(deployed.bundle),
         "--feed", f"replay:{deployed.bars}", "--speed", "1200", "--journal", str(tmp_path / "j.db"), "--serve",
         "--port", "0", "--token-file", str(token_file), "--no-track", "--no-reconcile"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    dt = None
    try:
        port = None
        deadline = time.monotonic() + 180
        while port is None and time.monotonic() < deadline:
            line = cli.stdout.readline()
            assert line, "the paper command ended before serving"
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            port = int(m.group(1)) if m else None
        token = token_file.read_text().strip()
        dt = DevTools(exe, tmp_path / "profile")
        target = dt.send("Target.createTarget", {"url": f"http://127.0.0.1:{port}/#token={token}"})["targetId"]
        session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        # the page loads and shows the loop's positions (the policy holds some once trading starts)
        rows = json.loads(_wait(dt, session, f"(() => {{ const p = {POSITIONS}; "
                                "return JSON.parse(p).some(r => r[1] !== 0) ? p : ''; })()", "a position"))
        assert [r[0] for r in rows] == deployed_symbols(deployed)
        assert _eval(dt, session, "location.hash") == ""  # the token left the address bar
        assert _eval(dt, session, "document.body.dataset.killed") == "0"
        # the kill switch, as a user presses it: the button, then the confirmation
        _eval(dt, session, "document.getElementById('kill').click()")
        assert _eval(dt, session, "getComputedStyle(document.getElementById('confirm')).display") != "none"
        _eval(dt, session, "document.getElementById('kill-yes').click()")
        _wait(dt, session, "document.body.dataset.killed === '1'", "the kill switch state")
        flat = _wait(dt, session, f"(() => {{ const p = JSON.parse({POSITIONS}); "
                     "return p.length && p.every(r => r[1] === 0) ? JSON.stringify(p) : ''; })()", "flat positions",
                     timeout=60)
        assert all(q == 0 for _, q in json.loads(flat))
        assert "manual kill switch" in _eval(dt, session, "document.getElementById('kill-state').textContent")
    finally:
        if dt is not None:
            dt.close()
        cli.send_signal(signal.SIGTERM)
        try:
            cli.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cli.kill()
            cli.wait()


def deployed_symbols(deployed) -> list[str]:
    return json.loads((deployed.bundle / "manifest.json").read_text())["deployment"]["symbols"]
