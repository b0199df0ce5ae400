"""Watching a paper run: a small local service (FastAPI + uvicorn) with a status endpoint, a kill switch
and a one-page dashboard.

It binds **127.0.0.1** only. Every ``/api`` route needs ``Authorization: Bearer <token>``; the token is
read from a file (``--token-file``; created with 32 random bytes, mode 0600, when it does not exist) and
compared in constant time. The dashboard page holds no data: it reads the token from the URL fragment
(``/#token=...``, never sent to the server) or asks for it, keeps it in ``sessionStorage``, and polls
``/api/status`` once a second. It is one self-contained HTML page (inline CSS and script, no external
request).

* ``GET /`` the dashboard; ``GET /healthz`` ``{"ok": true}`` (no token);
* ``GET /api/status``: run, model, last bar, session, equity, cash, the day's P&L, positions (shares,
  last price, value, weight of equity), every limit with its current usage, the kill switch, counts
  and the last rejections (rule by rule);
* ``POST /api/kill``: presses the kill switch (``PaperLoop.request_kill``): at the next bar every
  position is closed (``must_complete`` market orders at its open) and no order follows.

``Service(loop, token, info).start(port)`` runs uvicorn in a daemon thread; ``stop()`` ends it.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .loop import MANUAL_KILL, PaperLoop

HOST = "127.0.0.1"


def read_token(path: str | Path) -> str:
    """The bearer token in ``path`` (first line); a missing file is created with a random token (0600)."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    token = path.read_text().strip().splitlines()[0].strip() if path.read_text().strip() else ""
    if len(token) < 16:
        raise ValueError(f"{path}: the token must be at least 16 characters (line 1)")
    return token


def _num(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def status(loop: PaperLoop, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status document (module docstring), read under the loop's lock."""
    with loop.lock:
        pol, risk, lim = loop.policy, loop.risk, loop.limits
        pos = loop.positions()
        prices = pol.close.tolist()
        cash = float(loop.broker.cash())
        equity = loop.equity()
        e = equity if equity > 0 else math.nan
        rows = [{"symbol": s, "qty": q, "price": _num(p), "value": _num(q * p), "weight": _num(q * p / e)}
                for s, q, p in zip(pol.symbols, pos, prices)]
        gross = sum(abs(q * p) for q, p in zip(pos, prices) if q)
        e0 = risk.start_equity
        adv_use = max((n / risk.symbols[s].adv_usd for s, n in risk.day_symbol_notional.items()
                       if s in risk.symbols and risk.symbols[s].adv_usd > 0), default=0.0)
        limits = [
            {"rule": "max_position", "limit": lim.max_position, "used": max((abs(r["weight"] or 0) for r in rows), default=0)},
            {"rule": "max_gross_exposure", "limit": lim.max_gross_exposure, "used": _num(gross / e)},
            {"rule": "hourly_turnover", "limit": lim.hourly_turnover, "used": _num(risk.hour_turnover(risk.now) / e0)},
            {"rule": "daily_turnover", "limit": lim.daily_turnover, "used": _num(risk.day_notional / e0)},
            {"rule": "max_adv_participation", "limit": lim.max_adv_participation, "used": _num(adv_use)},
            {"rule": "daily_drawdown_kill", "limit": lim.daily_drawdown, "used": _num(max(risk.drawdown, 0.0))},
        ]
        for r in limits:
            r["limit"] = _num(r["limit"])
        last = loop.last_ts
        doc = {
            "run": loop.run_id, "model": dict(info or {}),
            "last_bar": pd.Timestamp(last, tz="UTC").isoformat() if last is not None else None,
            "session": str(pd.Timestamp(loop.session).date()) if loop.session is not None else None,
            "trading": loop.trade_from is None or (loop.session is not None and loop.session >= loop.trade_from),
            "equity": _num(equity), "cash": _num(cash), "day_start_equity": _num(e0),
            "day_pnl": _num(equity - e0) if loop.session is not None else None,
            "positions": rows, "limits": limits,
            "kill_switch": {"on": bool(risk.killed or loop.manual_kill), "manual": bool(loop.manual_kill),
                            "detail": risk.kill_detail or (MANUAL_KILL if loop.manual_kill else "")},
            "counts": {"steps": loop.stats.steps, "decisions": loop.stats.decisions, "orders": loop.stats.orders,
                       "fills": loop.stats.fills, "rejections": loop.stats.rejections},
            "rejections": [{"bar": pd.Timestamp(ts, tz="UTC").isoformat(), "symbol": s, "requested": q,
                            "accepted": a, "rules": list(rules)} for ts, s, q, a, rules in list(loop.rejections)[::-1]],
            "open_orders": len(loop.broker.open_orders()),
            "time": time.time(),
        }
    return doc


def make_app(loop: PaperLoop, token: str, info: dict[str, Any] | None = None):
    from fastapi import Depends, FastAPI, Header, HTTPException
    from fastapi.responses import HTMLResponse

    app = FastAPI(title="intradayjules paper", docs_url=None, redoc_url=None, openapi_url=None)

    def auth(authorization: str | None = Header(default=None)) -> None:
        scheme, _, got = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(got.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return DASHBOARD

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/api/status", dependencies=[Depends(auth)])
    def api_status() -> dict:
        return status(loop, info)

    @app.post("/api/kill", dependencies=[Depends(auth)])
    def api_kill() -> dict:
        loop.request_kill(MANUAL_KILL)
        return {"ok": True, "detail": "kill switch pressed: every position closes at the next bar"}

    return app


class Service:
    """uvicorn serving :func:`make_app` on 127.0.0.1 in a daemon thread."""

    def __init__(self, loop: PaperLoop, token: str, info: dict[str, Any] | None = None):
        self.app = make_app(loop, token, info)
        self.server = None
        self.thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self, port: int = 0, timeout: float = 20.0) -> int:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(self.app, host=HOST, port=port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="paper-service", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the paper service did not start on {HOST}:{port}")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


DASHBOARD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>intradayjules paper</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222}
h1{font-size:1.2em;margin:0 0 .4em} table{border-collapse:collapse;margin:.4em 0 1em}
td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:right} th:first-child,td:first-child{text-align:left}
.bar{display:inline-block;height:.7em;background:#4a7;vertical-align:middle}.hot{background:#c44}
#kill{background:#b00;color:#fff;border:0;padding:.6em 1.2em;font-weight:bold;cursor:pointer}
#confirm{display:none;margin-left:1em} .on{color:#b00;font-weight:bold} .muted{color:#777}
#err{color:#b00}
</style></head><body>
<h1>Paper trading <span id="run" class="muted"></span></h1>
<div id="err"></div>
<div id="token-form" style="display:none">Token: <input id="token-input" type="password" size="40">
<button id="token-save">Use</button></div>
<p><b>Last bar</b> <span id="last-bar">-</span> &middot; <b>session</b> <span id="session">-</span>
&middot; <b>equity</b> <span id="equity">-</span> &middot; <b>day P&amp;L</b> <span id="day-pnl">-</span>
&middot; <b>kill switch</b> <span id="kill-state">-</span></p>
<h2>Positions</h2>
<table id="positions"><thead><tr><th>symbol</th><th>shares</th><th>price</th><th>value</th><th>weight</th></tr></thead>
<tbody></tbody></table>
<h2>Limits</h2>
<table id="limits"><thead><tr><th>rule</th><th>used</th><th>limit</th><th></th></tr></thead><tbody></tbody></table>
<h2>Kill switch</h2>
<p><button id="kill">Kill switch: flatten and stop</button>
<span id="confirm">Close every position and stop trading? <button id="kill-yes">Yes, flatten</button>
<button id="kill-no">No</button></span></p>
<h2>Last rejections</h2>
<table id="rejections"><thead><tr><th>bar</th><th>symbol</th><th>requested</th><th>accepted</th><th>rules</th></tr>
</thead><tbody></tbody></table>
<p class="muted" id="counts"></p>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("ij-token") || "";
const m = /token=([^&]+)/.exec(location.hash);
if (m) { token = decodeURIComponent(m[1]); sessionStorage.setItem("ij-token", token); history.replaceState(null, "", "/"); }
if (!token) $("token-form").style.display = "block";
$("token-save").onclick = () => { token = $("token-input").value; sessionStorage.setItem("ij-token", token);
  $("token-form").style.display = "none"; poll(); };
const fmt = (x, d = 2) => x === null || x === undefined ? "-" :
  Number(x).toLocaleString("en-US", {minimumFractionDigits: d, maximumFractionDigits: d});
function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
function fill(id, rows, make) { const tb = $(id).tBodies[0]; tb.replaceChildren();
  for (const r of rows) { const tr = document.createElement("tr"); make(tr, r); tb.appendChild(tr); } }
async function api(path, opts = {}) {
  const r = await fetch(path, {...opts, headers: {"Authorization": "Bearer " + token}});
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
function render(s) {
  $("run").textContent = s.run + (s.model && s.model.name ? " (" + s.model.name + " v" + s.model.version + ")" : "");
  $("last-bar").textContent = s.last_bar || "-"; $("session").textContent = s.session || "-";
  $("equity").textContent = fmt(s.equity); $("day-pnl").textContent = fmt(s.day_pnl);
  const k = s.kill_switch; $("kill-state").textContent = k.on ? "ON: " + k.detail : "off";
  $("kill-state").className = k.on ? "on" : "";
  document.body.dataset.killed = k.on ? "1" : "0";
  fill("positions", s.positions, (tr, p) => { tr.dataset.symbol = p.symbol; tr.dataset.qty = p.qty;
    cell(tr, p.symbol); cell(tr, fmt(p.qty, 0)); cell(tr, fmt(p.price)); cell(tr, fmt(p.value));
    cell(tr, p.weight === null ? "-" : (100 * p.weight).toFixed(2) + " %"); });
  fill("limits", s.limits, (tr, l) => { cell(tr, l.rule); cell(tr, fmt(l.used, 4)); cell(tr, fmt(l.limit, 4));
    const share = l.limit ? Math.min(l.used / l.limit, 1) : 0; const b = document.createElement("span");
    b.className = "bar" + (share > 0.8 ? " hot" : ""); b.style.width = (100 * share) + "px"; cell(tr, "").appendChild(b); });
  fill("rejections", s.rejections, (tr, r) => { cell(tr, r.bar); cell(tr, r.symbol); cell(tr, fmt(r.requested, 0));
    cell(tr, fmt(r.accepted, 0)); cell(tr, r.rules.join(", ")); });
  const c = s.counts; $("counts").textContent = c.steps + " bars, " + c.decisions + " decisions, " + c.orders +
    " orders, " + c.fills + " fills, " + c.rejections + " cut by the limits; " + s.open_orders + " open";
  document.body.dataset.updated = String(s.time);
}
async function poll() { if (!token) return;
  try { render(await api("/api/status")); $("err").textContent = ""; } catch (e) { $("err").textContent = String(e); } }
$("kill").onclick = () => { $("confirm").style.display = "inline"; };
$("kill-no").onclick = () => { $("confirm").style.display = "none"; };
$("kill-yes").onclick = async () => { $("confirm").style.display = "none";
  try { await api("/api/kill", {method: "POST"}); await poll(); } catch (e) { $("err").textContent = String(e); } };
poll(); setInterval(poll, 1000);
</script></body></html>
"""
