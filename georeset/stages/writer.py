"""The one catalogue writer: every stage commits its staged files (and run records) through here.

:func:`commit` takes the staged files the caller's partitions named (exact names, or ``name-*`` patterns), upserts
all of their tables in ONE transaction, rebuilds the BM25 index when documents were among them, refreshes what
readers open, and only then removes the staged files. A process killed anywhere in between leaves the files in
place, so the retried commit redoes the index and the publication even when the rows had already landed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from georeset.workspace import Workspace

__all__ = ["TABLES", "open_writer", "staged", "commit", "write", "publish", "table_counts"]

TABLES = ("documents", "places", "place_names", "toponyms", "scenes", "patches", "pairs", "runs", "snapshots")
R = TypeVar("R")


def open_writer(ws: Workspace) -> Any:
    """A write connection to the workspace's catalogue, schema brought up to date."""
    from georeset.data_catalog import open_catalog

    return open_catalog(str(ws.db_path))


def staged(staging_dir: Path, table: str, names: Sequence[str] | None) -> list[Path]:
    """The staged files of ``table`` whose stem matches one of ``names`` (fnmatch patterns; None: all)."""
    from georeset.data_catalog.staging import staged_files

    files = staged_files(staging_dir, table)
    if names is None:
        return files
    return [f for f in files if any(fnmatch.fnmatchcase(f.stem, n) for n in names)]


def publish(ws: Workspace, con: Any) -> None:
    """Make everything committed on ``con`` visible to readers."""
    _publish(ws, con, changed=True)


def _publish(ws: Workspace, con: Any, *, changed: bool) -> None:
    from georeset.data_catalog.publish import publish, published_path

    if changed or not published_path(ws.db_path).exists():
        publish(ws.db_path, con)


def commit(ws: Workspace, tables: Sequence[str], *, names: Sequence[str] | None = None, con: Any = None
           ) -> dict[str, dict[str, int]]:
    """Commit the staged files of ``tables`` named by ``names`` in one transaction; returns per-table counts."""
    from georeset.data_catalog.search import rebuild_fts
    from georeset.data_catalog.staging import fault_point, merge_files

    own = con is None
    con = con or open_writer(ws)
    try:
        files = {t: staged(ws.staging_dir, t, names) for t in tables}
        res = merge_files(con, files)
        if files.get("documents"):
            rebuild_fts(con)  # the BM25 index is derived: rebuilt by every commit that took documents
            fault_point("commit:indexed")
        _publish(ws, con, changed=any(files.values()))
        fault_point("commit:published")
        for fs in files.values():
            for f in fs:
                f.unlink(missing_ok=True)
        return {t: {"files": r.files, "staged": r.staged_rows, "inserted": r.inserted, "updated": r.updated,
                    "total": r.total_rows} for t, r in res.items()}
    finally:
        if own:
            con.close()


def write(ws: Workspace, fn: Callable[[Any], R]) -> R:
    """Run ``fn(con)`` in one transaction on the writer's connection, then refresh what readers open."""
    con = open_writer(ws)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            out = fn(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        _publish(ws, con, changed=True)
        return out
    finally:
        con.close()


def table_counts(db: Path | str) -> dict[str, int]:
    """Row count of every catalogue table."""
    from georeset.data_catalog import connect

    con = connect(db, read_only=True)
    try:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]
    finally:
        con.close()
