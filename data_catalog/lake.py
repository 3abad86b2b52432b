"""DuckLake primitives: attach a lake (embedded, or PostgreSQL metadata + object-storage data), snapshot ids,
and an upsert that keeps natural keys unique without PRIMARY KEY constraints.

Status (issue 11, step 3 not finished): these are tested building blocks; the stages still commit to the DuckDB
catalogue file through :mod:`georeset.stages.writer`. What DuckLake 1.5.5 does and does not do, as probed by
``tests/data_catalog/test_lake.py``: COMMENT ON, views, macros, ``ALTER TABLE ... ADD COLUMN``, ``MERGE INTO``,
``GEOMETRY``, ``JSON``, variable-length ``FLOAT[]`` and ``AT (VERSION => n)`` work; PRIMARY KEY/UNIQUE constraints
and fixed-size ``FLOAT[n]`` arrays do not (so HNSW indexes must live in a derived database that casts ``FLOAT[]``);
an embedded lake whose metadata is a DuckDB file is locked by one process at a time.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from georeset.errors import InputError

__all__ = ["SETTING_METADATA", "SETTING_DATA", "LakeSettings", "attach", "snapshot_id", "UpsertResult", "upsert",
           "rows_at", "maintain"]

SETTING_METADATA = "GEORESET_LAKE_METADATA"
SETTING_DATA = "GEORESET_LAKE_DATA"
_REMOTE_META = ("postgres:", "sqlite:", "mysql:")


@dataclass(frozen=True)
class LakeSettings:
    """Where the lake's metadata and data live.

    ``metadata``: ``sqlite:<file>`` (embedded default: several local processes may read while one commits), a plain
    file path (a DuckDB file: one process at a time) or ``postgres:dbname=... host=...``;
    ``data_path``: a folder or ``s3://bucket/prefix/``.
    """

    metadata: str
    data_path: str

    @classmethod
    def for_workdir(cls, root: str | Path, env: Mapping[str, str] | None = None) -> LakeSettings:
        """The embedded default inside ``root`` (``sqlite:lake/metadata.sqlite``, ``lake/data/``), unless
        ``GEORESET_LAKE_METADATA`` / ``GEORESET_LAKE_DATA`` say otherwise."""
        env = os.environ if env is None else env
        lake = Path(root) / "lake"
        return cls(metadata=env.get(SETTING_METADATA) or "sqlite:" + str(lake / "metadata.sqlite"),
                   data_path=env.get(SETTING_DATA) or str(lake / "data") + "/")

    @property
    def embedded(self) -> bool:
        """Metadata in a local file (SQLite or DuckDB), no server."""
        return self.metadata.startswith("sqlite:") or not self.metadata.startswith(_REMOTE_META)

    @property
    def metadata_file(self) -> Path | None:
        """The local metadata file of an embedded lake (None for a server)."""
        if not self.embedded:
            return None
        return Path(self.metadata.removeprefix("sqlite:"))

    @property
    def remote_data(self) -> bool:
        return "://" in self.data_path


def _check_local(settings: LakeSettings, *, read_only: bool, create: bool) -> None:
    meta_file = settings.metadata_file
    if meta_file is not None:
        meta = meta_file
        if read_only and not meta.is_file():
            raise InputError(f"{SETTING_METADATA}={settings.metadata}: no DuckLake catalogue there",
                             hint="build one first (georeset demo) or point the setting at the catalogue file")
        if not meta.parent.is_dir():
            if not create:
                raise InputError(f"{SETTING_METADATA}={settings.metadata}: the folder {meta.parent} does not exist",
                                 hint="create it, or fix the setting")
            meta.parent.mkdir(parents=True, exist_ok=True)
    if not settings.remote_data:
        data = Path(settings.data_path)
        if data.exists() and not data.is_dir():
            raise InputError(f"{SETTING_DATA}={settings.data_path} is a file, not a folder",
                             hint="point it at a folder (or s3://bucket/prefix/)")
        if not data.exists():
            if not create or read_only:
                raise InputError(f"{SETTING_DATA}={settings.data_path}: the folder does not exist",
                                 hint="create it, or fix the setting")
            data.mkdir(parents=True, exist_ok=True)


def attach(con: duckdb.DuckDBPyConnection, settings: LakeSettings, *, alias: str = "lake", read_only: bool = False,
           create: bool = True) -> None:
    """ATTACH the lake as ``alias`` (the ducklake extension is LOADed from its package, never INSTALLed).

    Settings that cannot work (a missing folder, a refused connection, denied storage) raise InputError naming the
    setting and the fix, before anything is written."""
    from georeset.data_catalog.connect import load_extensions

    _check_local(settings, read_only=read_only, create=create)
    scanner = {"postgres:": "postgres_scanner", "sqlite:": "sqlite_scanner"}
    load_extensions(con, ("ducklake",) + tuple(v for k, v in scanner.items() if settings.metadata.startswith(k)))
    data = settings.data_path if settings.data_path.endswith("/") else settings.data_path + "/"
    opts = [f"DATA_PATH '{data}'"] + (["READ_ONLY"] if read_only else [])
    try:
        con.execute(f"ATTACH 'ducklake:{settings.metadata}' AS {alias} ({', '.join(opts)})")
    except duckdb.Error as exc:
        which = SETTING_DATA if "DATA_PATH" in str(exc) or settings.data_path in str(exc) else SETTING_METADATA
        value = settings.data_path if which == SETTING_DATA else settings.metadata
        raise InputError(f"cannot attach the DuckLake catalogue ({which}={value}): {exc}",
                         hint="check the setting, that the server is up and accepts this client, and that no other "
                              "process holds an embedded catalogue open") from exc


def snapshot_id(con: duckdb.DuckDBPyConnection, alias: str = "lake") -> int:
    """The lake's current snapshot id (the lineage key: ``AT (VERSION => id)`` reads the rows as of it)."""
    row = con.execute(f"FROM {alias}.current_snapshot()").fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class UpsertResult:
    table: str
    staged: int
    inserted: int
    updated: int
    snapshot_id: int
    attempts: int


def _conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.TransactionException) or "conflict" in text


CLAIMS = "georeset_commit_claims"


def _ensure_claims(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> None:
    """One claim row per table: every upsert rewrites it, so two overlapping upserts of one table conflict."""
    for attempt in range(10):
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {alias}.{CLAIMS} (table_name VARCHAR, claimed_by VARCHAR)")
            if not con.execute(f"SELECT 1 FROM {alias}.{CLAIMS} WHERE table_name = ?", [table]).fetchone():
                con.execute(f"INSERT INTO {alias}.{CLAIMS} VALUES (?, 'init')", [table])
            return
        except duckdb.Error as exc:
            if not _conflict(exc) and "already exists" not in str(exc):
                raise
            time.sleep(0.05 * (attempt + 1) * (0.5 + random.random()))
    raise InputError(f"cannot create {alias}.{CLAIMS}: the lake keeps conflicting", hint="retry the task")


def upsert(con: duckdb.DuckDBPyConnection, table: str, source_sql: str, key: Sequence[str], *, alias: str = "lake",
           retries: int = 20) -> UpsertResult:
    """Upsert ``source_sql``'s rows into ``alias.table`` on the natural ``key``, in one transaction.

    DuckLake has no unique constraints, so uniqueness is kept here: the staged rows are deduplicated on the key
    (newest ``retrieved_at`` wins), changed rows (other ``content_hash``, not older) are deleted and re-inserted,
    new keys inserted; unchanged or older rows are left alone.

    Concurrent inserts never conflict in DuckLake, so two writers whose inputs overlap could both insert a key. To
    make them conflict, every upsert of ``table`` also rewrites the table's claim row (``georeset_commit_claims``):
    two transactions deleting the same row conflict at commit, the loser is rolled back and retried (with jitter,
    up to ``retries`` times) on the new snapshot, where it sees the winner's rows."""
    keys = ", ".join(f'"{k}"' for k in key)
    on = " AND ".join(f't."{k}" = s."{k}"' for k in key)
    target = f"{alias}.{table}"
    cols = [r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()]
    has_time, has_hash = "retrieved_at" in cols, "content_hash" in cols
    order = ("retrieved_at DESC NULLS LAST" if has_time else "1") + (", content_hash" if has_hash else "")
    guard = ("t.content_hash IS DISTINCT FROM s.content_hash" if has_hash else "true") + (
        " AND (t.retrieved_at IS NULL OR s.retrieved_at >= t.retrieved_at)" if has_time else "")
    col_list = ", ".join(f'"{c}"' for c in cols)
    src = (f"(SELECT {col_list} FROM ({source_sql}) "
           f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1)")
    _ensure_claims(con, alias, table)
    for attempt in range(1, retries + 2):
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {alias}.{CLAIMS} WHERE table_name = ?", [table])
            con.execute(f"INSERT INTO {alias}.{CLAIMS} VALUES (?, ?)", [table, f"{os.getpid()}-{attempt}"])
            staged = int(con.execute(f"SELECT count(*) FROM {src}").fetchone()[0])  # type: ignore[index]
            updated = int(con.execute(f"SELECT count(*) FROM {src} s JOIN {target} t ON {on} WHERE {guard}"
                                      ).fetchone()[0])  # type: ignore[index]
            if updated:
                con.execute(f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM {src} s WHERE {on} AND {guard})")
            cur = con.execute(f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {src} s "
                              f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})")
            written = int(cur.fetchone()[0])  # type: ignore[index]
            con.execute("COMMIT")
        except duckdb.Error as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.TransactionException:
                pass  # a failed COMMIT has already ended the transaction
            if _conflict(exc) and attempt <= retries:
                time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
                continue
            raise
        return UpsertResult(table, staged, written - updated, updated, snapshot_id(con, alias), attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def rows_at(con: duckdb.DuckDBPyConnection, table: str, version: int, *, alias: str = "lake",
            columns: str = "*", order: str = "1") -> list[tuple[Any, ...]]:
    """The rows of ``table`` as of snapshot ``version`` (what a shard made then was built from)."""
    return con.execute(f"SELECT {columns} FROM {alias}.{table} AT (VERSION => {int(version)}) ORDER BY {order}"
                       ).fetchall()


def maintain(con: duckdb.DuckDBPyConnection, *, alias: str = "lake", keep_days: float = 30.0) -> dict[str, Any]:
    """DuckLake's own maintenance: merge small adjacent data files, expire snapshots older than ``keep_days``
    (a shard's snapshot must be newer to stay reproducible), then delete the files nothing references any more.
    Returns file counts before/after and the snapshots left."""

    def files() -> int:
        return len(con.execute(f"FROM ducklake_list_files('{alias}', 'documents')").fetchall()) if con.execute(
            f"SELECT 1 FROM duckdb_tables() WHERE database_name = '{alias}' AND table_name = 'documents'"
        ).fetchone() else 0

    before = files()
    snaps_before = int(con.execute(f"SELECT count(*) FROM {alias}.snapshots()").fetchone()[0])  # type: ignore[index]
    con.execute(f"CALL ducklake_merge_adjacent_files('{alias}')")
    con.execute(f"CALL ducklake_expire_snapshots('{alias}', older_than => now() - INTERVAL ({float(keep_days)} * 86400) "
                "SECOND)")
    con.execute(f"CALL ducklake_cleanup_old_files('{alias}', cleanup_all => true)")
    return {"documents_files_before": before, "documents_files_after": files(), "snapshots_before": snaps_before,
            "snapshots_after": int(con.execute(f"SELECT count(*) FROM {alias}.snapshots()").fetchone()[0])}  # type: ignore[index]
