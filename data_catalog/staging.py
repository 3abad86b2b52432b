"""Staging then merge: the only way rows enter the catalogue.

Parallel workers call :func:`stage` to write Parquet files (atomically: temp file then rename) under
``<staging_dir>/<table>/``. The writer calls :func:`merge_files`, which upserts the named staged files of several
tables in ONE DuckLake transaction, keyed on each table's natural key (:data:`KEYS`), replacing a row only when its
``content_hash`` changed and it is not newer. A crash before COMMIT leaves the catalogue as it was and the staged
files in place, so the merge can simply be retried.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from georeset.errors import CatalogError

__all__ = ["KEYS", "MergeResult", "stage", "merge", "merge_files", "fault_point", "staged_files", "table_columns",
           "primary_key"]


@dataclass(frozen=True)
class MergeResult:
    table: str
    files: int
    staged_rows: int
    inserted: int
    updated: int
    total_rows: int


def staged_files(staging_dir: Path, table: str) -> list[Path]:
    d = Path(staging_dir) / table
    return sorted(d.glob("*.parquet")) if d.exists() else []


def stage(rows: list[dict[str, Any]] | pa.Table, *, table: str, staging_dir: Path, name: str | None = None) -> Path | None:
    """Write rows for ``table`` as one Parquet file; returns its path (None when there are no rows).

    ``name`` makes the file name deterministic (e.g. a partition key), so a retried task overwrites its own file
    instead of adding a second copy.
    """
    tbl = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
    if tbl.num_rows == 0:
        return None
    d = Path(staging_dir) / table
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"{name or uuid.uuid4().hex}.parquet"
    tmp = d / f".{final.name}.{uuid.uuid4().hex}.tmp"
    pq.write_table(tbl, tmp)
    os.replace(tmp, final)
    return final


#: The natural key of every catalogue table (DuckLake has no PRIMARY KEY: the writer keeps these unique).
KEYS: dict[str, tuple[str, ...]] = {
    "documents": ("doc_id",),
    "places": ("place_id",),
    "place_names": ("name_key", "place_id"),
    "toponyms": ("toponym_id",),
    "scenes": ("scene_id",),
    "patches": ("patch_id",),
    "pairs": ("pair_id",),
    "embeddings": ("owner_kind", "owner_id", "run_id"),
    "snapshots": ("snapshot_id",),
    "runs": ("run_id",),
    "schema_migrations": ("version",),
}


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ? ORDER BY column_index", [table]).fetchall()
    if not rows:
        raise CatalogError(f"table {table!r} does not exist in the catalogue", hint="run the migrations (georeset catalog init)")
    return {r[0]: r[1] for r in rows}


def primary_key(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The natural key of ``table`` (:data:`KEYS`)."""
    if table not in KEYS:
        raise CatalogError(f"table {table!r} has no natural key and cannot be merged into",
                           hint=f"add it to georeset.data_catalog.staging.KEYS (known: {sorted(KEYS)})")
    return list(KEYS[table])


@dataclass(frozen=True)
class _Plan:
    table: str
    files: list[Path]
    select: str  # the staged rows, typed as the table, one per key (newest retrieved_at wins)
    on: str  # t.key = s.key
    guard: str  # when a stored row is replaced: content changed and the staged row is not older


def _plan(con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> _Plan:
    """How ``files`` merge into ``table``: the deduplicated, typed SELECT of the staged rows, the key join and the
    guard (a row is replaced only when its ``content_hash`` changed and, where the table has ``retrieved_at``, the
    staged row is not older than the stored one: an older harvest never replaces a newer row)."""
    target = table_columns(con, table)
    pk = primary_key(con, table)
    file_list = "[" + ", ".join(f"'{f.as_posix()}'" for f in files) + "]"
    src = f"read_parquet({file_list}, union_by_name = true)"
    staged_cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    unknown = [c for c in staged_cols if c not in target and c != "geom_wkt"]
    if unknown:
        raise CatalogError(
            f"staged rows for {table!r} have columns the table lacks: {unknown}",
            hint=f"drop them or add a migration; the table's columns are {list(target)}",
        )
    missing_pk = [c for c in pk if c not in staged_cols]
    if missing_pk:
        raise CatalogError(f"staged rows for {table!r} lack key column(s) {missing_pk}")
    exprs = []
    for col, typ in target.items():
        if col in staged_cols and col != "geom":
            exprs.append(f'CAST("{col}" AS {typ}) AS "{col}"')
        elif col == "geom" and "geom_wkt" in staged_cols:
            exprs.append('ST_GeomFromText("geom_wkt") AS "geom"')
        elif col == "geom" and "lon" in staged_cols and "lat" in staged_cols:
            exprs.append('CASE WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE ST_Point(lon, lat) END AS "geom"')
        else:
            exprs.append(f'NULL::{typ} AS "{col}"')
    order = "retrieved_at DESC NULLS LAST" if "retrieved_at" in staged_cols else "1"
    if "content_hash" in staged_cols:
        order += ", content_hash"  # deterministic winner among equally new copies
    key = ", ".join(f'"{c}"' for c in pk)
    select = (f"SELECT {', '.join(exprs)} FROM {src} "
              f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1")
    guards = []
    if "content_hash" in target:
        guards.append("t.content_hash IS DISTINCT FROM s.content_hash")
    if "retrieved_at" in target:
        guards.append("(t.retrieved_at IS NULL OR s.retrieved_at >= t.retrieved_at)")
    if not guards:  # no hash: a row whose columns all equal is unchanged
        others = [c for c in target if c not in pk]
        guards.append("(" + " OR ".join(f't."{c}" IS DISTINCT FROM s."{c}"' for c in others) + ")" if others
                      else "false")
    on = " AND ".join(f't."{c}" = s."{c}"' for c in pk)
    return _Plan(table, files, select, on, " AND ".join(guards))


def _conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    # "database is locked": two writers on SQLite lake metadata (the embedded default) take turns
    return isinstance(exc, duckdb.TransactionException) or "conflict" in text or "database is locked" in text


def merge_files(con: duckdb.DuckDBPyConnection, files: dict[str, list[Path]], *, retries: int = 20
                ) -> dict[str, MergeResult]:
    """Upsert the given staged files of several tables in ONE lake transaction (all tables land, or none).

    Per table: the staged rows (one per key, newest ``retrieved_at`` first) replace stored rows whose content changed
    and that are not newer; new keys are inserted; unchanged or older rows are left alone. Every table merged into
    also has its claim row (``georeset_commit_claims``) rewritten, so two commits into one table conflict at COMMIT
    (DuckLake raises a transaction conflict; concurrent plain inserts would not): the loser rolls back and retries
    on the new snapshot, where it finds the winner's rows. Files are not removed here: the caller removes them once
    everything that depends on the commit is done."""
    from georeset.data_catalog.migrate import CLAIMS

    results: dict[str, MergeResult] = {}
    plans: list[_Plan] = []
    for table, fs in files.items():
        if not fs:
            total = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            results[table] = MergeResult(table, 0, 0, 0, 0, total)
        else:
            plans.append(_plan(con, table, fs))
    if not plans:
        return results
    for attempt in range(1, retries + 2):
        counts: dict[str, tuple[int, int, int, int]] = {}
        con.execute("BEGIN TRANSACTION")
        try:
            for p in plans:
                con.execute(f"DELETE FROM {CLAIMS} WHERE table_name = ?", [p.table])
                con.execute(f"INSERT INTO {CLAIMS} VALUES (?, ?)", [p.table, f"{os.getpid()}-{attempt}"])
                con.execute(f"CREATE OR REPLACE TEMP TABLE _staged AS {p.select}")
                staged = int(con.execute("SELECT count(*) FROM _staged").fetchone()[0])  # type: ignore[index]
                updated = int(con.execute(f"SELECT count(*) FROM _staged s JOIN {p.table} t ON {p.on} "
                                          f"WHERE {p.guard}").fetchone()[0])  # type: ignore[index]
                if updated:
                    con.execute(f"DELETE FROM {p.table} t WHERE EXISTS (SELECT 1 FROM _staged s WHERE {p.on} "
                                f"AND {p.guard})")
                inserted = int(con.execute(
                    f"INSERT INTO {p.table} SELECT * FROM _staged s WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {p.table} t WHERE {p.on})").fetchone()[0]) - updated  # type: ignore[index]
                total = int(con.execute(f"SELECT count(*) FROM {p.table}").fetchone()[0])  # type: ignore[index]
                counts[p.table] = (staged, inserted, updated, total)
                fault_point(f"merge:{p.table}")
            con.execute("DROP TABLE IF EXISTS _staged")
            if any(c[1] or c[2] for c in counts.values()):
                con.execute("COMMIT")
            else:
                con.execute("ROLLBACK")  # nothing changed (a re-run): no new snapshot
        except BaseException as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed COMMIT has already ended the transaction
            if not isinstance(exc, Exception):
                raise
            if _conflict(exc) and attempt <= retries:
                time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
                continue
            raise CatalogError(
                f"merge into {sorted(p.table for p in plans)} failed and was rolled back: {exc}",
                hint="the staged files were kept; fix them and re-run the merge",
            ) from exc
        break
    fault_point("merge:committed")
    for p in plans:
        staged, inserted, updated, total = counts[p.table]
        results[p.table] = MergeResult(p.table, len(p.files), staged, inserted, updated, total)
    return results


def merge(con: duckdb.DuckDBPyConnection, *, table: str, staging_dir: Path, keep_files: bool = False,
          files: list[Path] | None = None) -> MergeResult:
    """Upsert staged Parquet files of ``table`` (all of them, or ``files``) in one transaction, then remove them."""
    fs = staged_files(staging_dir, table) if files is None else list(files)
    r = merge_files(con, {table: fs})[table]
    if not keep_files:
        for f in fs:
            f.unlink(missing_ok=True)
    return r


def fault_point(name: str) -> None:
    """Test hook: SIGKILL this process at the named point when ``GEORESET_KILL_AT`` names it (kill tests)."""
    if os.environ.get("GEORESET_KILL_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
