"""Published read-only snapshot of the catalogue, so readers keep working while a writer merges.

DuckDB lets one process hold a database file for writing, and while it does no other process can open that file,
not even read-only. Readers (``georeset sql``, ``georeset search``, the report) therefore open a *published copy*,
``<db>.read.duckdb`` next to the catalogue, which the writer refreshes after each merge:

1. ``CHECKPOINT`` on the writer's connection: every committed row is in the main file, the WAL is empty;
2. the main file is copied to a temporary name in the same directory and fsynced;
3. the copy is opened read-only and its row counts are checked against the writer's (a torn copy is never published);
4. ``os.replace`` swaps it in atomically.

A reader that already has the old snapshot open keeps its inode (POSIX rename semantics) and finishes on the old
state; a reader that opens after the swap sees the new state; nobody ever sees a partial merge. Because the copy is
the whole file, everything comes along: views, macros, the FTS schema and the persisted HNSW index.

``publish`` must be called between transactions (after ``merge`` returned), from the process that holds the
catalogue, or with no writer open at all (then it opens the file itself).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from georeset.errors import CatalogError

__all__ = ["SUFFIX", "published_path", "publish", "read_path"]

SUFFIX = ".read.duckdb"


def published_path(db_path: str | Path) -> Path:
    """``catalog.duckdb`` -> ``catalog.read.duckdb`` (``x`` -> ``x.read.duckdb`` for other names)."""
    p = Path(db_path)
    stem = p.name[: -len(".duckdb")] if p.name.endswith(".duckdb") else p.name
    return p.with_name(stem + SUFFIX)


def read_path(db_path: str | Path) -> Path:
    """Where a reader should open the catalogue: the published snapshot when there is one, else the file itself."""
    pub = published_path(db_path)
    return pub if pub.exists() else Path(db_path)


def _counts(con: Any, catalog: str | None = None) -> dict[str, int]:
    where = "table_type = 'BASE TABLE'" + (f" AND table_catalog = '{catalog}'" if catalog else "")
    names = con.execute(
        f"SELECT table_schema, table_name FROM information_schema.tables WHERE {where} ORDER BY ALL"
    ).fetchall()
    out = {}
    for schema, name in names:
        ref = f'"{catalog}"."{schema}"."{name}"' if catalog else f'"{schema}"."{name}"'
        out[f"{schema}.{name}"] = int(con.execute(f"SELECT count(*) FROM {ref}").fetchone()[0])
    return out


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(db_path: str | Path, con: Any = None, *, verify: bool = True) -> Path:
    """Refresh ``<db>.read.duckdb`` from the catalogue atomically; returns its path.

    ``con``: the writer's open connection to ``db_path`` (pass it when this process holds the file); without it the
    file is opened here (it must then not be held by another process).
    """
    from georeset.data_catalog import connect

    db = Path(db_path)
    if not db.exists():
        raise CatalogError(f"catalogue {db} does not exist", hint="run `georeset demo --workdir DIR` first")
    pub = published_path(db)
    own = con is None
    if own:
        con = connect(db)
    try:
        con.execute("CHECKPOINT")
        expected = _counts(con) if verify else {}
        wal = db.with_name(db.name + ".wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise CatalogError(f"{wal} is not empty after CHECKPOINT: a transaction is still open on the writer",
                               hint="call publish() after merge() returned, outside any transaction")
        tmp = pub.with_name(f".{pub.name}.tmp-{os.getpid()}")
        try:
            shutil.copyfile(db, tmp)
            _fsync(tmp)
            if verify:
                check = connect(tmp, read_only=True)
                try:
                    got = _counts(check)
                finally:
                    check.close()
                if got != expected:
                    raise CatalogError(f"published copy of {db} does not match it: {got} != {expected}",
                                       hint="was the catalogue written during publish()? publish after the merge")
            os.replace(tmp, pub)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        dfd = os.open(pub.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if own:
            con.close()
    return pub
