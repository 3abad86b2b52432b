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

__all__ = ["MergeResult", "stage", "merge", "staged_files", "table_columns", "primary_key"]


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


def merge(con: duckdb.DuckDBPyConnection, *, table: str, staging_dir: Path, keep_files: bool = False) -> MergeResult:
    """Upsert all staged Parquet files of ``table`` in one transaction, then remove the files."""
    files = staged_files(staging_dir, table)
    before = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
    if not files:
        return MergeResult(table, 0, 0, 0, 0, before)
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
    order = "retrieved_at DESC" if "retrieved_at" in staged_cols else "1"
    key = ", ".join(f'"{c}"' for c in pk)
    select = (
        f"SELECT {', '.join(exprs)} FROM {src} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1"
    )
    updatable = [c for c in target if c not in indexed]
    if "content_hash" in target:
        set_clause = ", ".join(f'"{c}" = excluded."{c}"' for c in updatable)
        conflict = f"DO UPDATE SET {set_clause} WHERE {table}.content_hash IS DISTINCT FROM excluded.content_hash"
    else:
        conflict = "DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in updatable) if updatable else "DO NOTHING"
    staged_rows = int(con.execute(f"SELECT count(*) FROM {src}").fetchone()[0])  # type: ignore[index]
    changed_before = 0
    if "content_hash" in target:
        changed_before = int(
            con.execute(
                f"SELECT count(*) FROM ({select}) s JOIN {table} t USING ({key}) "
                "WHERE t.content_hash IS DISTINCT FROM s.content_hash"
            ).fetchone()[0]  # type: ignore[index]
        )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"INSERT INTO {table} {select} ON CONFLICT ({key}) {conflict}")
        con.execute("COMMIT")
    except Exception as exc:
        con.execute("ROLLBACK")
        raise CatalogError(
            f"merge into {table!r} failed and was rolled back: {exc}",
            hint=f"the staged files under {Path(staging_dir) / table} were kept; fix them and re-run the merge",
        ) from exc
    after = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
    if not keep_files:
        for f in files:
            f.unlink(missing_ok=True)
    return MergeResult(table, len(files), staged_rows, after - before, changed_before, after)
