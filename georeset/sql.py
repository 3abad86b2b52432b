"""Read-only SQL for analysts: `georeset sql --db WORKDIR "QUERY"`, over the sandboxed analyst connection."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from georeset.errors import InputError

__all__ = ["FORMATS", "CELL_WIDTH", "run_query"]

FORMATS = ("table", "csv", "json", "parquet")
CELL_WIDTH = 80  # table output cuts longer values (and says so)


def run_query(
    *, db: Path, query: str, fmt: str = "table", out: Path | None = None, limit: int | None = None,
    stream: TextIO | None = None, live: bool = False, timeout_s: float | None = None, max_rows: int | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``query`` on the sandboxed analyst connection and print the result; returns the row count printed.

    Only read statements run; files, URLs, ATTACH, COPY, INSTALL/LOAD and SET are refused (InputError). ``db``: the
    work directory (or a file in it); its DuckLake is attached read-only, so a query reads the newest committed
    snapshot and never waits on a writer (``live`` is kept for old callers and changes nothing).
    ``timeout_s`` stops a longer query (QueryTimeout); ``max_rows`` caps the rows, with a note on ``err`` when the
    result had more; ``limit`` prints at most that many rows without a note.
    """
    from georeset.data_catalog.sandbox import (
        DEFAULT_MAX_ROWS,
        DEFAULT_TIMEOUT_S,
        ExtensionNeeded,
        extensions_for,
    )

    stream = stream if stream is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if fmt not in FORMATS:
        raise InputError(f"unknown --format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise InputError("--format parquet needs --out FILE.parquet", hint="add --out result.parquet")
    if limit is not None and limit < 0:
        raise InputError(f"--limit {limit} is negative", hint="give a row count, e.g. --limit 10")
    cap = DEFAULT_MAX_ROWS if max_rows is None else max_rows
    if limit is not None and (cap == 0 or limit < cap):
        cap, note = limit, False
    else:
        note = True
    timeout = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    exts: tuple[str, ...] | None = extensions_for(query)  # LOAD only what the query needs: a faster start
    while True:
        try:
            n, truncated = _run(db=db, query=query, fmt=fmt, out=out, stream=stream, err=err, live=live,
                                timeout_s=timeout, cap=cap, extensions=exts)
            break
        except ExtensionNeeded:
            if exts is None:
                raise
            exts = None  # all of them
    if truncated and note:
        err.write(f"note: the result has more than {cap} rows; showing the first {cap} "
                  "(add LIMIT, or raise --max-rows; 0 = no cap)\n")
    return n


def _run(*, db: Path, query: str, fmt: str, out: Path | None, stream: TextIO, err: TextIO, live: bool,
         timeout_s: float, cap: int, extensions: tuple[str, ...] | None) -> tuple[int, bool]:
    """Run the query once on a fresh sandboxed connection and print it; returns (rows printed, cut by the cap)."""
    from georeset.data_catalog.sandbox import analyst_connection

    with analyst_connection(db, timeout_s=timeout_s, max_rows=cap, live=live, extensions=extensions) as ac:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            assert out is not None
            table, truncated = ac.arrow(query)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            pq.write_table(table, tmp)
            tmp.replace(out)
            n = int(table.num_rows)
        else:
            res = ac.query(query)
            cols, rows, truncated = res.columns, res.rows, res.truncated
            n = len(rows)
            if fmt == "json":
                stream.write(json.dumps([dict(zip(cols, r, strict=True)) for r in rows], default=str) + "\n")
            elif fmt == "csv":
                import csv

                w = csv.writer(stream)
                w.writerow(cols)
                w.writerows(rows)
            elif cols:
                cut = _print_table(cols, rows, stream)
                if cut:
                    err.write(f"note: {cut} value(s) cut at {CELL_WIDTH} characters (marked ...); "
                              "use --format csv or json for full values\n")
    return n, truncated


def _cell(v: Any) -> tuple[str, bool]:
    if v is None:
        return "NULL", False
    s = str(v)
    if len(s) > CELL_WIDTH:
        return s[: CELL_WIDTH - 3] + "...", True
    return s, False


def _print_table(cols: list[str], rows: list[tuple[Any, ...]], stream: TextIO) -> int:
    """Print a rich table; returns how many values were cut at CELL_WIDTH characters."""
    from rich.console import Console
    from rich.table import Table

    table = Table(*cols)
    cut = 0
    for r in rows:
        cells = [_cell(v) for v in r]
        cut += sum(c for _, c in cells)
        table.add_row(*(s for s, _ in cells))
    Console(file=stream, width=max(200, CELL_WIDTH * 2)).print(table)
    return cut
