"""Staging then merge: the only way rows enter the catalogue.

Parallel workers call :func:`stage` to write Parquet files (atomically: temp file then rename) under
``<staging_dir>/<table>/``. One writer calls :func:`merge`, which upserts every staged file of a table in a single
transaction, keyed on the table's primary key, updating a row only when its ``content_hash`` changed. A crash before
COMMIT leaves the catalogue as it was and the staged files in place, so the merge can simply be retried.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from georeset.errors import CatalogError

__all__ = ["MergeResult", "stage", "merge", "merge_files", "fault_point", "staged_files", "table_columns", "primary_key"]


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


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise CatalogError(f"table {table!r} does not exist in the catalogue", hint="run the migrations (georeset catalog init)")
    return {r[0]: r[1] for r in rows}


def _constraint_columns(con: duckdb.DuckDBPyConnection, table: str, kind: str) -> list[list[str]]:
    rows = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? AND constraint_type = ?",
        [table, kind],
    ).fetchall()
    return [list(r[0]) for r in rows]


def primary_key(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    pks = _constraint_columns(con, table, "PRIMARY KEY")
    if not pks:
        raise CatalogError(f"table {table!r} has no primary key and cannot be merged into")
    return pks[0]


def _merge_sql(con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> tuple[str, str, str, str]:
    """(INSERT ... ON CONFLICT statement, the deduplicated SELECT, key, source) for merging ``files`` into ``table``.

    The upsert updates a row only when its ``content_hash`` changed and, where the table has ``retrieved_at``, only
    when the staged row is not older than the stored one (an older harvest never replaces a newer row)."""
    target = table_columns(con, table)
    pk = primary_key(con, table)
    indexed = set(pk)
    for cols in _constraint_columns(con, table, "UNIQUE"):
        indexed.update(cols)
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
    select = (
        f"SELECT {', '.join(exprs)} FROM {src} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1"
    )
    updatable = [c for c in target if c not in indexed]
    guards = []
    if "content_hash" in target:
        guards.append(f"{table}.content_hash IS DISTINCT FROM excluded.content_hash")
    if "retrieved_at" in target:
        guards.append(f"({table}.retrieved_at IS NULL OR excluded.retrieved_at >= {table}.retrieved_at)")
    if updatable:
        conflict = "DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in updatable)
        if guards:
            conflict += " WHERE " + " AND ".join(guards)
    else:
        conflict = "DO NOTHING"
    return f"INSERT INTO {table} {select} ON CONFLICT ({key}) {conflict}", select, key, src


def merge_files(con: duckdb.DuckDBPyConnection, files: dict[str, list[Path]]) -> dict[str, MergeResult]:
    """Upsert the given staged files of several tables in ONE transaction (all tables land, or none).

    Files are not removed here: the caller removes them once everything that depends on the commit is done."""
    plans = {}
    results: dict[str, MergeResult] = {}
    for table, fs in files.items():
        before = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        if not fs:
            results[table] = MergeResult(table, 0, 0, 0, 0, before)
            continue
        plans[table] = (before, fs, *_merge_sql(con, table, fs))
    if not plans:
        return results
    counts: dict[str, tuple[int, int]] = {}
    for table, (_, _, _, select, key, src) in plans.items():
        staged_rows = int(con.execute(f"SELECT count(*) FROM {src}").fetchone()[0])  # type: ignore[index]
        changed = 0
        if "content_hash" in table_columns(con, table):
            guard = ("AND (t.retrieved_at IS NULL OR s.retrieved_at >= t.retrieved_at)"
                     if "retrieved_at" in table_columns(con, table) else "")
            changed = int(con.execute(
                f"SELECT count(*) FROM ({select}) s JOIN {table} t USING ({key}) "
                f"WHERE t.content_hash IS DISTINCT FROM s.content_hash {guard}").fetchone()[0])  # type: ignore[index]
        counts[table] = (staged_rows, changed)
    con.execute("BEGIN TRANSACTION")
    try:
        for table, (_, _, sql, _, _, _) in plans.items():
            con.execute(sql)
            fault_point(f"merge:{table}")
        con.execute("COMMIT")
    except BaseException as exc:
        con.execute("ROLLBACK")
        if not isinstance(exc, Exception):
            raise
        raise CatalogError(
            f"merge into {sorted(plans)} failed and was rolled back: {exc}",
            hint="the staged files were kept; fix them and re-run the merge",
        ) from exc
    fault_point("merge:committed")
    for table, (before, fs, *_rest) in plans.items():
        after = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        staged_rows, changed = counts[table]
        results[table] = MergeResult(table, len(fs), staged_rows, after - before, changed, after)
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
