"""``intradayjules features build|ls|info|gc``: the shared feature store from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from ..errors import IntradayJulesError
from .common import console, fail, load_or_exit, set_option

app = typer.Typer(help="Build and inspect the content-addressed feature store.", no_args_is_help=True)

StoreOpt = typer.Option(None, "--store", help="store directory (default: features.store_dir of --config)")


def _store(store: Path | None, config: Path | None):
    from ..features.store import FeatureStore

    root = store if store is not None else load_or_exit(config).features.store_dir
    return FeatureStore(root)


@app.command()
def build(
    config: Path | None = typer.Option(None, "--config", "-c", help="experiment YAML or preset (data + features)"),
    set_: list[str] = set_option(),
    data: Path | None = typer.Option(None, "--data", help="bars to use instead of the config's data"),
    store: Path | None = StoreOpt,
    symbols: str | None = typer.Option(None, "--symbols", help="comma-separated subset"),
    start: str | None = typer.Option(None, "--start", help="first session (YYYY-MM-DD)"),
    end: str | None = typer.Option(None, "--end", help="last session (YYYY-MM-DD)"),
) -> None:
    """Build (or find) the features of the config's data; print hit/miss, key and time.

    A hit loads no raw data: the data fingerprint comes from file sizes and times (plus a cached
    content hash), and the entry is verified against its checksum.
    """
    from ..data import load_data
    from ..data.fingerprint import experiment_fingerprint
    from ..features.pipeline import train_sessions
    from ..features.store import FeatureStore

    cfg = load_or_exit(config, set_)
    root = store if store is not None else cfg.features.store_dir
    sym = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    t0 = time.perf_counter()
    try:
        fp = experiment_fingerprint(cfg, data)
        fs = FeatureStore(root)
        frame, key, hit = fs.get_or_build(lambda: load_data(cfg, data)[0], fp, cfg.features, sym, start, end,
                                          calendar=cfg.data.calendar)
        sessions = train_sessions(frame["session"], cfg.data.splits)
        fs.scaler(key, sessions, frame=frame)
    except IntradayJulesError as e:
        raise fail(str(e)) from None
    elapsed = time.perf_counter() - t0
    state = "[green]hit[/]" if hit else "[yellow]miss[/] (built)"
    console.print(f"{state} {key}  {len(frame):,} rows x {frame.shape[1] - 4} features, "
                  f"{frame['symbol'].nunique()} symbols, {int(frame['warm'].sum()):,} warm rows, "
                  f"{elapsed:.2f} s", highlight=False)
    console.print(f"store: {root}  data fingerprint: {fp}", highlight=False)


@app.command("ls")
def ls(
    store: Path | None = StoreOpt,
    config: Path | None = typer.Option(None, "--config", "-c"),
) -> None:
    """List entries, most recently used first."""
    import pandas as pd

    fs = _store(store, config)
    df = fs.manifest()
    typer.echo(f"{fs.root}: {len(df)} entries")
    if len(df):
        typer.echo(f"{'key':<32}  {'rows':>9}  {'sym':>3}  {'first':<10}  {'last':<10}  {'MB':>6}  last used (UTC)")
    for r in df.itertuples():
        used = r.last_used.strftime("%Y-%m-%d %H:%M:%S") if not pd.isna(r.last_used) else "?"
        typer.echo(f"{r.key:<32}  {r.rows:>9,}  {r.n_symbols:>3}  {str(r.first_session)[:10]:<10}  "
                   f"{str(r.last_session)[:10]:<10}  {r.bytes / 1e6:>6.1f}  {used}")


@app.command()
def info(
    key: str = typer.Argument(..., help="entry key (a unique prefix is enough)"),
    store: Path | None = StoreOpt,
    config: Path | None = typer.Option(None, "--config", "-c"),
) -> None:
    """Print an entry's manifest record as JSON (with status: ok or corrupt)."""
    fs = _store(store, config)
    matches = [k for k in fs.keys() if k.startswith(key)]
    if len(matches) != 1:
        raise fail(f"{'no' if not matches else 'more than one'} entry matches {key!r} in {fs.root}")
    typer.echo(json.dumps(fs.info(matches[0]), indent=1))


@app.command()
def gc(
    keep_last: int = typer.Option(..., "--keep-last", min=0, help="keep the N most recently used entries"),
    store: Path | None = StoreOpt,
    config: Path | None = typer.Option(None, "--config", "-c"),
) -> None:
    """Delete all but the N most recently used entries (entries in use by a build are skipped)."""
    fs = _store(store, config)
    before = len(fs.keys())
    removed = fs.gc(keep_last)
    for k in removed:
        console.print(f"deleted {k}", highlight=False)
    console.print(f"{len(removed)} of {before} entries deleted, {before - len(removed)} kept", highlight=False)
