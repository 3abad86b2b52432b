"""Read-only SQL for analysts: `georeset sql --db DB "QUERY"`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import duckdb

from georeset.errors import InputError

__all__ = ["FORMATS", "run_query"]

FORMATS = ("table", "csv", "json", "parquet")


def run_query(
    *, db: Path, query: str, fmt: str = "table", out: Path | None = None, limit: int | None = None,
    stream: TextIO = sys.stdout, live: bool = False,
) -> int:
    """Run ``query`` on a read-only connection to the catalogue and print the result; returns the row count.

    Writes (INSERT, DELETE, DROP, ...) are refused by DuckDB's read-only mode and reported as an InputError.
    Reads go to the published snapshot ``<db>.read.duckdb`` when there is one (refreshed after every merge, so a
    running merge never blocks analysts); ``live=True`` opens the catalogue file itself.
    """
    from georeset.data_catalog import connect
    from georeset.data_catalog.publish import read_path

    if fmt not in FORMATS:
        raise InputError(f"unknown --format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise InputError("--format parquet needs --out FILE.parquet", hint="add --out result.parquet")
    con = connect(db if live else read_path(db), read_only=True)
    try:
        try:
            rel = con.sql(query)
        except duckdb.InvalidInputException as exc:
            if "read-only" in str(exc).lower() or "read only" in str(exc).lower():
                raise InputError(
                    f"the catalogue is opened read-only and the query tries to write: {exc}",
                    hint="analyst SQL can only read; write through the pipeline stages (georeset demo / harvest ...)",
                ) from exc
            raise InputError(f"invalid query: {exc}", hint="check the SQL; list tables with: SHOW TABLES") from exc
        except duckdb.Error as exc:
            raise InputError(f"query failed: {exc}", hint="check the SQL; list tables with: SHOW TABLES") from exc
        if rel is None:
            return 0
        if limit is not None:
            rel = rel.limit(limit)
        if fmt == "parquet":
            assert out is not None
            rel.write_parquet(str(out))
            return int(con.sql(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0])  # type: ignore[index]
        cols = rel.columns
        rows = rel.fetchall()
        if fmt == "json":
            stream.write(json.dumps([dict(zip(cols, r, strict=True)) for r in rows], default=str) + "\n")
        elif fmt == "csv":
            import csv

            w = csv.writer(stream)
            w.writerow(cols)
            w.writerows(rows)
        else:
            _print_table(cols, rows, stream)
        return len(rows)
    finally:
        con.close()


def _print_table(cols: list[str], rows: list[tuple[Any, ...]], stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*cols)
    for r in rows:
        table.add_row(*("NULL" if v is None else str(v)[:80] for v in r))
    Console(file=stream, width=200).print(table)
