"""``intradayjules paper``: run a deployable policy bundle on a feed, paper trading (docs/paper.md)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer

from .common import console, err_console, fail, load_or_exit, set_option


def paper(
    model: str = typer.Option(..., "--model", help="models:/NAME@ALIAS, models:/NAME/VERSION, a run directory, "
                              "a model.bundle/ or a model.zip with its bundle"),
    feed: str = typer.Option(..., "--feed", help="replay:PATH (bar files or a `data synth` folder, replayed as "
                             "if live)"),
    speed: float = typer.Option(0.0, "--speed", help="replay pace from the first traded session: 1 real time, N "
                                "N times faster, 0 no waiting"),
    start: str = typer.Option(None, "--start", help="first session to trade (YYYY-MM-DD); earlier bars only warm "
                              "up features and market state. Default: the bundle's first test session"),
    journal: Path = typer.Option(None, "--journal", help="SQLite journal; an existing one is resumed. Default: "
                                 "<workdir>/paper/<run>/journal.db"),
    run_name: str = typer.Option(None, "--run", help="run label (client order ids, journal); default from the "
                                 "bundle's sha256"),
    reconcile: bool = typer.Option(True, "--reconcile/--no-reconcile", help="replay feeds: compare with the "
                                   "backtest of the same bundle on the same bars and print it"),
    serve: bool = typer.Option(False, "--serve", help="start the status service and dashboard on 127.0.0.1"),
    port: int = typer.Option(8765, "--port", help="service port (127.0.0.1)"),
    token_file: Path = typer.Option(None, "--token-file", help="bearer token for the service (line 1); created "
                                    "with a random token (0600) when missing. Default: <journal dir>/token"),
    hold: bool = typer.Option(False, "--hold", help="with --serve: keep serving after the feed ends (Ctrl-C stops)"),
    config: Path = typer.Option(None, "--config", help="config for tracking (MLflow URI, work dir); the bundle "
                                "brings everything else"),
    sets: list[str] = set_option(),
    track: bool = typer.Option(True, "--track/--no-track", help="log the paper run's metrics to MLflow under the "
                               "model version"),
) -> None:
    """Paper-trade a policy bundle: feed -> features -> policy -> pre-trade checks -> journal -> simulated
    broker, resumable after a kill; on a replay, print the reconciliation with the backtest."""
    from ..errors import IntradayJulesError
    from ..track import make_tracker, resolve_bundle

    cfg = load_or_exit(config, sets)
    try:
        registry = model.startswith(("models:/", "runs:/"))
        tracker = make_tracker(cfg, enabled=True) if (track or registry) else None  # the registry needs it
        resolved = resolve_bundle(model, tracker=tracker, cfg=cfg)
        if not track:
            tracker = None  # --no-track: resolve through the registry, log nothing
    except (IntradayJulesError, FileNotFoundError, OSError) as e:
        raise fail(f"--model {model}: {e}", 2) from None
    from ..live.paper import start_paper
    from ..live.reconcile import to_json
    from ..rundir import check_name

    import hashlib

    digest = hashlib.sha256((resolved.path / "manifest.json").read_bytes()).hexdigest()
    label = check_name(run_name or f"paper-{digest[:12]}", "run label (--run)")
    jpath = journal or (Path(cfg.workdir) / "paper" / label / "journal.db")
    jpath.parent.mkdir(parents=True, exist_ok=True)
    _log_to(jpath.parent / "paper.log")
    try:
        pr = start_paper(resolved.path, feed, journal=jpath, run=label, speed=speed, start=start)
    except (IntradayJulesError, ValueError, OSError) as e:
        raise fail(str(e), 2) from None
    info = {"name": resolved.name, "version": resolved.version, "bundle": str(resolved.path)}
    console.print(f"paper run [bold]{label}[/]: {', '.join(pr.policy.symbols)}; trading from "
                  f"{pr.start or 'the first bar'}; journal {jpath}"
                  + (f" (resumed after {pr.resumed_steps} steps)" if pr.resumed_steps else ""), highlight=False)
    service = None
    if serve:
        from ..live.service import Service, read_token

        try:
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            raise fail("--serve needs FastAPI and uvicorn: pip install 'intradayjules[paper]'", 2) from None
        token = read_token(token_file or jpath.parent / "token")
        service = Service(pr.loop, token, info)
        bound = service.start(port)
        console.print(f"dashboard: http://127.0.0.1:{bound}/#token=<token from {token_file or jpath.parent / 'token'}>",
                      highlight=False)
    t0 = time.perf_counter()
    try:
        stats = pr.run()
        if service is not None and hold:
            console.print("feed ended; serving until Ctrl-C")
            while True:
                time.sleep(1.0)
    except KeyboardInterrupt:
        err_console.print("interrupted: the journal holds every committed bar; run the same command to resume")
        raise typer.Exit(130) from None
    finally:
        if service is not None:
            service.stop()
    wall = time.perf_counter() - t0
    console.print(f"{stats.steps:,} bars in {wall:.1f} s: {stats.decisions:,} decisions, {stats.orders:,} orders, "
                  f"{stats.fills:,} fills, {stats.rejections:,} cut by the pre-trade limits (journal decisions, "
                  f"{jpath.parent / 'paper.log'})", highlight=False)
    rec = None
    code = 0
    if reconcile and pr.frame is not None:
        rec = pr.reconciliation()
        console.print("\n[bold]Reconciliation with the backtest of the same bundle on the same bars[/]")
        typer.echo(rec.text())
        if not rec.ok:
            err_console.print("[bold red]the paper run and the backtest disagree[/] (see the table)")
            code = 3
    daily = _daily(pr.journal_path)
    pr.close()
    if tracker is not None and getattr(tracker, "enabled", False):
        from ..track.paper import log_paper_run

        summary = {"total_pnl": sum(p for _, p, _ in daily), "sessions": len(daily), "orders": stats.orders,
                   "fills": stats.fills, "rejections": stats.rejections, "decisions": stats.decisions}
        if rec is not None:
            summary["reconciled_sessions"] = int(rec.table["ok"].sum())
            summary["reconciliation_ok"] = float(rec.ok)
        run_id = log_paper_run(tracker, summary, daily, model_name=resolved.name, model_version=resolved.version,
                               model_run_id=resolved.run_id, bundle_sha256=digest,
                               reconciliation_json=to_json(rec) if rec is not None else None,
                               params={"feed": feed, "start": pr.start, "run": label})
        console.print(f"MLflow: paper run {run_id}" + (f" under {resolved.name} v{resolved.version}"
                                                       if resolved.name else ""), highlight=False)
    raise typer.Exit(code)


def _daily(journal: Path) -> list[tuple[str, float, float]]:
    """(session, P&L, closing equity) of every traded session in a journal."""
    from ..live.reconcile import paper_fills

    return [(s, f.closing - f.opening, f.closing) for s, f in sorted(paper_fills(journal).items())]


def _log_to(path: Path) -> None:
    """Pre-trade cuts and loop warnings go to ``path`` (the journal keeps them too), not the terminal."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("intradayjules.risk.pretrade", "intradayjules.live"):
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
