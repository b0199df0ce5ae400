"""Move a work directory (``runs/``) and keep its MLflow database, registry and run files usable.

Why a command and not a relative artifact root: with a sqlite tracking store MLflow 3.17 resolves an
experiment's ``artifact_location`` to an absolute ``file://`` URI when the experiment is created
(``SqlAlchemyStore.create_experiment`` -> ``resolve_uri_if_local``) and derives each run's
``artifact_uri`` and each model version's ``source`` from it. ``mlflow.db`` therefore holds absolute
paths, and a copied or renamed work dir points back at the old place (models:/NAME@ALIAS fails to load).

``move_workdir(src, dst)``:

1. refuses when ``dst`` exists, when ``src`` has no ``mlflow.db`` (use ``force`` for a work dir without
   tracking), or when another process holds a write lock on ``mlflow.db`` (a run or server is using it);
2. moves the folder (a rename on one file system, copy then delete across file systems);
3. rewrites, in one sqlite transaction, every stored location that starts with the old path:
   ``experiments.artifact_location``, ``runs.artifact_uri``, ``model_versions.source`` and
   ``storage_location``, ``logged_models.artifact_location`` and ``datasets.dataset_source`` (a dataset
   kept inside the work dir). A value matches when it equals ``OLD`` / ``file://OLD`` or continues with
   ``/`` (``/tmp/runs2`` is not inside ``/tmp/runs``);
4. rewrites the old path in the work dir's own text files (``*.json``, ``*.yaml``, ``*.yml`` and Optuna
   ``journal.log`` files: summaries, tune results, worker job files), outside ``mlartifacts/``.

Not rewritten, on purpose: logged params and tags (a record of what ran, e.g. the ``workdir`` param) and
artifact files in ``mlartifacts/`` (their sha256 is recorded as a tag; editing them would fail the
integrity check). ``MoveReport.remaining`` counts the database values that still mention the old path.
A Ray Tune experiment directory is not made resumable at the new place (Ray stores its own paths).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .target import TrackingError

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
# (table, column) pairs that hold a location; absent tables/columns (older schemas) are skipped
LOCATION_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("model_versions", "source"), ("model_versions", "storage_location"),
                    ("logged_models", "artifact_location"), ("datasets", "dataset_source"))
TEXT_SUFFIXES = (".json", ".yaml", ".yml")
TEXT_NAMES = ("journal.log",)
MAX_TEXT_BYTES = 50 << 20


@dataclass
class MoveReport:
    src: Path
    dst: Path
    db_rows: dict[str, int] = field(default_factory=dict)     # "table.column" -> rows rewritten
    files: list[Path] = field(default_factory=list)           # text files rewritten (new paths)
    remaining: dict[str, int] = field(default_factory=dict)   # "table.column" -> rows still naming src
    dry_run: bool = False


def _replace_prefix(value: str, old: str, new: str) -> str:
    """``value`` with a leading ``old`` / ``file://old`` path replaced, at a path boundary only; any
    other embedded occurrence (inside JSON, e.g. ``{"uri": "file:///old/x"}``) likewise."""
    out, i = [], 0
    while True:
        j = value.find(old, i)
        if j < 0:
            out.append(value[i:])
            return "".join(out)
        end = j + len(old)
        boundary_after = end == len(value) or value[end] in "/\"'"
        boundary_before = j == 0 or value[j - 1] in "/\"' :" or value[max(0, j - 7):j] == "file://"
        out.append(value[i:j])
        out.append(new if boundary_after and boundary_before else old)
        i = end


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f'PRAGMA table_info("{table}")')}


def rewrite_db(db: Path, old: str, new: str, *, dry_run: bool = False) -> tuple[dict[str, int], dict[str, int]]:
    """Rewrite the location columns of ``db`` (module docstring); returns (rewritten, remaining) counts
    per ``table.column``, ``remaining`` over every text column of every table."""
    con = sqlite3.connect(str(db), timeout=5, isolation_level=None)
    try:
        try:
            con.execute("BEGIN IMMEDIATE")  # fails fast when a writer holds the database
        except sqlite3.OperationalError as e:
            raise TrackingError(f"{db}: cannot lock the tracking database ({e}); stop the runs and any "
                                "`mlflow server`/`mlflow ui` using this work dir, then retry") from None
        rewritten: dict[str, int] = {}
        for table, column in LOCATION_COLUMNS:
            if column not in _columns(con, table):
                continue
            rows = con.execute(f'SELECT rowid, "{column}" FROM "{table}" WHERE instr("{column}", ?) > 0',
                               (old,)).fetchall()
            n = 0
            for rowid, value in rows:
                updated = _replace_prefix(value, old, new)
                if updated != value:
                    n += 1
                    con.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', (updated, rowid))
            if n:
                rewritten[f"{table}.{column}"] = n
        remaining: dict[str, int] = {}
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                column, ctype = row[1], (row[2] or "").upper()
                if not any(t in ctype for t in ("CHAR", "TEXT", "CLOB", "JSON")) and ctype:
                    continue
                (n,) = con.execute(f'SELECT count(*) FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), ?) > 0',
                                   (old,)).fetchone()
                if n:
                    remaining[f"{table}.{column}"] = n
        con.execute("ROLLBACK" if dry_run else "COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return rewritten, remaining


def _text_files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        if not p.is_file() or (p.suffix not in TEXT_SUFFIXES and p.name not in TEXT_NAMES):
            continue
        if ARTIFACTS_DIR in p.relative_to(root).parts or p.stat().st_size > MAX_TEXT_BYTES:
            continue
        out.append(p)
    return sorted(out)


def move_workdir(src: str | Path, dst: str | Path, *, dry_run: bool = False, force: bool = False) -> MoveReport:
    """Move work dir ``src`` to ``dst`` and rewrite its stored paths (module docstring). ``dry_run``
    moves nothing and reports what would be rewritten."""
    src_p = Path(src).expanduser().resolve()
    dst_p = Path(dst).expanduser().resolve()
    if not src_p.is_dir():
        raise TrackingError(f"work dir {src_p} does not exist or is not a folder")
    if dst_p.exists():
        raise TrackingError(f"destination {dst_p} already exists; choose a new path")
    if dst_p.is_relative_to(src_p):
        raise TrackingError(f"destination {dst_p} is inside the work dir {src_p}")
    if not (src_p / DB_NAME).is_file() and not force:
        raise TrackingError(f"{src_p} has no {DB_NAME}: not a work dir with tracking (use --force to move it anyway)")
    old, new = str(src_p), str(dst_p)
    report = MoveReport(src_p, dst_p, dry_run=dry_run)
    if dry_run:
        if (src_p / DB_NAME).is_file():
            report.db_rows, report.remaining = rewrite_db(src_p / DB_NAME, old, new, dry_run=True)
        report.files = [dst_p / p.relative_to(src_p) for p in _text_files(src_p) if old in p.read_text(errors="replace")]
        return report
    if (src_p / DB_NAME).is_file():  # check the lock before moving anything
        rewrite_db(src_p / DB_NAME, old, old, dry_run=True)
    dst_p.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src_p), str(dst_p))
    if (dst_p / DB_NAME).is_file():
        report.db_rows, report.remaining = rewrite_db(dst_p / DB_NAME, old, new)
    for p in _text_files(dst_p):
        text = p.read_text(errors="surrogateescape")
        if old in text:
            updated = _replace_prefix(text, old, new)
            if updated != text:
                tmp = p.with_name(p.name + ".moving")
                tmp.write_text(updated, errors="surrogateescape")
                tmp.replace(p)
                report.files.append(p)
    return report
