"""The one catalogue writer: every stage commits its staged files (and run records) through here.

The catalogue is a DuckLake (:func:`georeset.data_catalog.connect.open_lake`). :func:`commit` takes the staged files
the caller's partitions named (exact names, or ``name-*`` patterns), upserts all of their tables in ONE lake
transaction (a conflicting concurrent commit is retried), brings the derived search index up to the new snapshot when
documents or embeddings changed since the snapshot it was built from, and only then removes the staged files. A
process killed anywhere in between leaves the files in place, so the retried commit changes no rows and still
rebuilds an index that is behind. Readers attach the lake read-only and see each committed snapshot at once: there is
no copy to publish.
"""

from __future__ import annotations

import fnmatch
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from georeset.workspace import Workspace

__all__ = ["TABLES", "open_writer", "staged", "commit", "write", "refresh_index", "table_counts"]

TABLES = ("documents", "places", "place_names", "toponyms", "scenes", "patches", "pairs", "runs", "snapshots")
R = TypeVar("R")


def open_writer(ws: Workspace | Path | str) -> Any:
    """A write connection to the workspace's catalogue lake, schema brought up to date."""
    from georeset.data_catalog import open_catalog

    root = ws.root if isinstance(ws, Workspace) else Path(ws)
    return open_catalog(str(root))


def staged(staging_dir: Path, table: str, names: Sequence[str] | None) -> list[Path]:
    """The staged files of ``table`` whose stem matches one of ``names`` (fnmatch patterns; None: all)."""
    from georeset.data_catalog.staging import staged_files

    files = staged_files(staging_dir, table)
    if names is None:
        return files
    return [f for f in files if any(fnmatch.fnmatchcase(f.stem, n) for n in names)]


def refresh_index(ws: Workspace, con: Any, *, force: bool = False) -> dict[str, Any] | None:
    """Rebuild the derived search index (BM25 + HNSW) from the lake's current snapshot when it is behind."""
    from georeset.data_catalog.search import refresh_index as refresh

    return refresh(ws.root, con, force=force)


def commit(ws: Workspace, tables: Sequence[str], *, names: Sequence[str] | None = None, con: Any = None
           ) -> dict[str, dict[str, int]]:
    """Commit the staged files of ``tables`` named by ``names`` in one transaction; returns per-table counts."""
    from georeset.data_catalog.staging import fault_point, merge_files

    own = con is None
    con = con or open_writer(ws)
    try:
        files = {t: staged(ws.staging_dir, t, names) for t in tables}
        res = merge_files(con, files)
        if {"documents", "embeddings"} & set(tables):
            refresh_index(ws, con)  # derived: rebuilt from the new snapshot (also on a retry after a kill)
            fault_point("commit:indexed")
        fault_point("commit:published")
        for fs in files.values():
            for f in fs:
                f.unlink(missing_ok=True)
        return {t: {"files": r.files, "staged": r.staged_rows, "inserted": r.inserted, "updated": r.updated,
                    "total": r.total_rows} for t, r in res.items()}
    finally:
        if own:
            con.close()


def write(ws: Workspace, fn: Callable[[Any], R], *, retries: int = 20) -> R:
    """Run ``fn(con)`` in one lake transaction on the writer's connection (retried on a commit conflict)."""
    import duckdb

    from georeset.data_catalog.staging import _conflict

    con = open_writer(ws)
    try:
        for attempt in range(1, retries + 2):
            con.execute("BEGIN TRANSACTION")
            try:
                out = fn(con)
                con.execute("COMMIT")
                return out
            except BaseException as exc:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                if isinstance(exc, duckdb.Error) and _conflict(exc) and attempt <= retries:
                    time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        con.close()


def table_counts(db: Path | str) -> dict[str, int]:
    """Row count of every catalogue table (``db``: the work directory, or a file in it)."""
    from georeset.data_catalog.connect import open_lake

    con = open_lake(db, read_only=True, extensions=())
    try:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]
    finally:
        con.close()
