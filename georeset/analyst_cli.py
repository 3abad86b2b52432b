"""Analyst commands, mounted at top level by ``georeset.cli``: ``search``, ``report``, ``export-geoparquet``,
``reliability``. Thin wrappers over ``georeset.data_catalog.search``/``report``/``views`` and
``georeset.reliability``.

Mount (in georeset/cli.py)::

    from georeset.analyst_cli import app as analyst_app
    for cmd in analyst_app.registered_commands:
        app.registered_commands.append(cmd)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from georeset.cli_support import DB_HELP
from georeset.cli_support import fail as _fail
from georeset.errors import GeoResetError

app = typer.Typer(help="Analyst commands: semantic search, HTML report, GeoParquet export, reliability summary.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

DbOpt = Annotated[Path, typer.Option("--db", help=DB_HELP)]


TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Stop a catalogue query after this many seconds "
                                           "(0 = no limit).")]


@app.command()
def search(
    text: Annotated[str, typer.Argument(help='Free-text query, e.g. "harbour".')],
    db: DbOpt = Path("work/demo"),
    k: Annotated[int, typer.Option("--k", help="How many results.")] = 10,
    kind: Annotated[str, typer.Option(help="What to rank: patch or document.")] = "patch",
    as_json: Annotated[bool, typer.Option("--json", help='Last line: {"results": [...]}.')] = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """The K patches (or documents) nearest to TEXT in the trained encoder's space (vss HNSW, cosine)."""
    from georeset.data_catalog.search import search as run_search

    try:
        results = run_search(db, text, k, kind, timeout_s=timeout)
    except GeoResetError as exc:
        _fail(exc)
    snap = results[0]["snapshot_id"] if results else None
    if as_json:
        print(json.dumps({"query": text, "kind": kind, "k": k, "snapshot_id": snap, "results": results}, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    id_col = "patch_id" if kind == "patch" else "doc_id"
    extra = ["sensor", "datetime"] if kind == "patch" else ["title"]
    table = Table("rank", id_col, "score", "lon", "lat", *extra, title=f"{kind}s nearest to {text!r} "
                  f"(index of lake snapshot {snap})")
    for r in results:
        table.add_row(str(r["rank"]), str(r[id_col]), f"{r['score']:.4f}", f"{r['lon']:.5f}", f"{r['lat']:.5f}",
                      *(str(r.get(c)) for c in extra))
    Console(width=200).print(table)


@app.command()
def report(
    workdir: Annotated[Path, typer.Option("--workdir", "-w", help="Work directory (catalogue, data, runs).")] = Path(
        "work/demo"),
    out: Annotated[Path | None, typer.Option(help="Output HTML (default WORKDIR/report.html).")] = None,
    max_thumbnails: Annotated[int, typer.Option(help="Patch thumbnails to embed.")] = 24,
    timeout: TimeoutOpt = 600.0,
) -> None:
    """Write one self-contained HTML report: map of documents/patches/pairs, thumbnails, loss and recall plots."""
    from georeset.data_catalog.report import write_report

    try:
        path = write_report(workdir, out=out, max_thumbnails=max_thumbnails, timeout_s=timeout)
    except GeoResetError as exc:
        _fail(exc)
    print(json.dumps({"report": str(path), "bytes": path.stat().st_size}))


@app.command("export-geoparquet")
def export_geoparquet(
    view: Annotated[str, typer.Option("--view", help="Table or view name, e.g. paired_corpus.")],
    out: Annotated[Path, typer.Option("--out", help="Output .parquet file.")],
    db: DbOpt = Path("work/demo"),
    geometry: Annotated[str | None, typer.Option(help="Geometry column (default: first GEOMETRY column).")] = None,
    timeout: TimeoutOpt = 600.0,
) -> None:
    """Export a table or view as GeoParquet 1.1 (WKB geometry, 'geo' metadata, EPSG:4326)."""
    from georeset.data_catalog.views import export_geoparquet as run_export

    try:
        res = run_export(db, view=view, out=out, geometry=geometry, timeout_s=timeout)
    except GeoResetError as exc:
        _fail(exc)
    print(json.dumps(res))


@app.command()
def reliability(
    workdir: Annotated[Path | None, typer.Option("--workdir", "-w", help="Scratch directory (default: a temp dir).")
                       ] = None,
    quick: Annotated[bool, typer.Option(help="Skip the slow scenarios (imagery COG faults).")] = False,
) -> None:
    """Inject faults through local servers (429/5xx/bad JSON MediaWiki and Overpass, STAC down, truncated COG,
    missing asset, SIGKILL during a merge, stage re-runs) and print the summary as one JSON line."""
    from georeset.reliability import run_reliability

    try:
        summary = run_reliability(workdir=workdir, quick=quick)
    except GeoResetError as exc:
        _fail(exc)
    print(json.dumps(summary, sort_keys=True))
    if summary["rows_lost"] or summary["duplicates"] or summary.get("unexpected"):
        raise typer.Exit(1)
