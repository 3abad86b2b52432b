"""The `georeset` command line: thin commands over the stage layer (georeset.stages), the same code the DAGs run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer._click.core import Command, Context  # typer 0.29 vendors click; its groups take these types
from typer.core import TyperGroup

from georeset.cli_support import DB_HELP, fail, print_json_or_fail
from georeset.errors import GeoResetError, InputError


class _LazyGroup(TyperGroup):
    """The root group: sub-apps whose modules import torch, spaCy or rasterio are imported only when invoked.

    ``georeset --help`` lists them from :data:`_LAZY` (name and help, no import); ``georeset model ...`` imports
    ``georeset.models.cli`` then. So ``georeset sql``/``search``/``schema`` start without torch, spaCy or Airflow.
    """

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in _LAZY if n not in self.commands)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in _LAZY:  # listing only: a stub carrying the help text
            return TyperGroup(name=cmd_name, help=_LAZY[cmd_name][1])
        return cmd

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None,
                                                                             list[str]]:
        if args and args[0] in _LAZY and args[0] not in self.commands:
            self.commands[args[0]] = _load_lazy(args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(
    help="GEO-ReSeT: harvest geocoded text and Sentinel-1/2 patches into a DuckDB catalogue, "
    "pair them, and train a sensor-agnostic text <-> Earth-observation encoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_LazyGroup,
)
catalog_app = typer.Typer(help="Create and inspect the DuckDB catalogue.", no_args_is_help=True)
harvest_app = typer.Typer(help="Harvest documents (OpenStreetMap, Wikipedia) into the catalogue.", no_args_is_help=True)
world_app = typer.Typer(help="The offline sample world (real OSM, simulated Sentinel-1/2 pixels).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(harvest_app, name="harvest")
app.add_typer(world_app, name="world")

# Sub-apps owned by package modules (their commands live next to the core they call), imported on first use.
_LAZY: dict[str, tuple[str, str]] = {
    "model": ("georeset.models.cli",
              "The encoder: embed any GeoTIFF (any bands, any size from 1x1), evaluate a checkpoint with robustness "
              "figures."),
    "geoparse": ("georeset.pipelines.geoparse.cli",
                 "Toponyms: run the geoparser over the catalogue, parse a text, evaluate on LGL/WikToR-style corpora."),
    "imagery": ("georeset.pipelines.imagery.cli",
                "Sentinel-1/2 imagery through STAC: search, read one patch, fetch patches for the catalogue."),
}


def _load_lazy(name: str) -> TyperGroup:
    """Import a lazy sub-app, add the commands this module defines for it, and build its click group."""
    import importlib

    sub: typer.Typer = importlib.import_module(_LAZY[name][0]).app
    if name == "geoparse" and not any(c.name == "run" for c in sub.registered_commands):
        sub.command("run")(geoparse_run)
    if name == "imagery" and not any(c.name == "fetch" for c in sub.registered_commands):
        sub.command("fetch")(imagery_fetch)
    group = typer.main.get_group(sub)
    group.name, group.help = name, _LAZY[name][1]
    return group


_analyst = __import__("georeset.analyst_cli", fromlist=["app"]).app
for _cmd in _analyst.registered_commands:  # search, report, export-geoparquet, reliability
    app.registered_commands.append(_cmd)

WorkdirOpt = Annotated[
    Path, typer.Option("--workdir", "-w", help="Work directory holding the catalogue, data, shards and runs.")
]


@app.command()
def demo(
    workdir: WorkdirOpt = Path("work/demo"),
    scale: Annotated[str, typer.Option(help="Sample-world size: 'tiny' (seconds, for tests) or 'small'.")] = "small",
    seed: Annotated[int, typer.Option(help="Seed of the sample world and of training.")] = 0,
    nproc: Annotated[int, typer.Option(help="Training processes launched by torchrun (gloo on CPU).")] = 2,
    steps: Annotated[int, typer.Option(help="Training steps.")] = 200,
    max_docs: Annotated[int, typer.Option(help="Cap on OSM documents harvested (0 = no cap).")] = 3000,
    config: Annotated[str, typer.Option("--config", help="Model config trained by the demo: a name under "
                                        "models/configs (tiny, tiny_spectral, ...) or a JSON file path.")] = "tiny",
) -> None:
    """Run the whole flow on the offline sample world: world -> harvest -> geoparse -> imagery -> pairs ->
    shards -> torchrun training -> evaluation. Re-running over the same --workdir reuses what is there.

    The last line printed is one JSON object with the headline figures.
    """
    from georeset.demo import run_demo
    from georeset.models.config import load_config

    try:
        try:
            load_config(config)  # a bad --config fails here, before minutes of harvesting
        except GeoResetError as exc:
            raise type(exc)(f"--config: {exc.message}", hint=exc.hint) from exc
        summary = run_demo(workdir=workdir, scale=scale, seed=seed, nproc=nproc, steps=steps, max_docs=max_docs,
                           config=config)
    except GeoResetError as exc:
        fail(exc)
    print(json.dumps(summary, sort_keys=True))


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run, e.g. \"SELECT count(*) FROM pairs\".")],
    db: Annotated[Path, typer.Option("--db", help=DB_HELP)] = Path("work/demo"),
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or parquet.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Output file for --format parquet.")] = None,
    limit: Annotated[int | None, typer.Option(help="Print at most this many rows.")] = None,
    live: Annotated[bool, typer.Option(help="Kept for old scripts: every query reads the newest committed lake "
                                            "snapshot anyway.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Stop a query after this many seconds (0 = no limit).")]
    = 60.0,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Return at most this many rows, with a note when "
                                          "there are more (0 = no cap).")] = 10_000,
) -> None:
    """Query the catalogue in the analyst sandbox (spatial, fts and vss loaded): read statements only.

    Files, URLs, ATTACH, COPY, EXPORT, INSTALL/LOAD, SET and secrets are refused; settings are locked. The DuckLake
    catalogue is attached read-only: a query reads the newest committed snapshot and never waits on a pipeline stage
    committing. BM25 (fts_main_documents.match_bm25) and vss_* come from the derived search index. Column meanings:
    `georeset schema`.
    """
    from georeset.sql import run_query

    try:
        run_query(db=db, query=query, fmt=fmt, out=out, limit=limit, live=live, timeout_s=timeout, max_rows=max_rows)
    except GeoResetError as exc:
        fail(exc)


@app.command()
def schema(
    db: Annotated[Path, typer.Option("--db", help=DB_HELP)] = Path("work/demo"),
    table: Annotated[str | None, typer.Option("--table", help="Only this table or view.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: relations, columns, macros.")] = False,
) -> None:
    """Explain the catalogue: every table, view and column with its type and comment (units, CRS, id formats,
    provenance), and the SQL macros. Keys between tables: docs/schema.md."""
    from georeset.data_catalog.sandbox import analyst_connection
    from georeset.data_catalog.schema_doc import describe, macros
    from georeset.errors import InputError

    try:
        with analyst_connection(db, extensions=()) as ac, ac.guard():
            rels, macs = describe(ac.con, table), macros(ac.con)
            if table is not None and not rels:
                names = [r["name"] for r in describe(ac.con)]
                raise InputError(f"--table {table!r} is not a table or view of {db}", hint=f"use one of: {names}")
    except GeoResetError as exc:
        fail(exc)
    if as_json:
        print(json.dumps({"relations": rels, "macros": macs if table is None else []}))
        return
    for rel in rels:
        typer.secho(f"{rel['name']} ({rel['kind']})", bold=True)
        typer.echo(f"  {rel['comment'] or '(no comment)'}")
        width = max((len(c["name"]) for c in rel["columns"]), default=0)
        twidth = max((len(c["type"]) for c in rel["columns"]), default=0)
        for c in rel["columns"]:
            typer.echo(f"    {c['name']:<{width}}  {c['type']:<{twidth}}  {c['comment'] or '(no comment)'}")
        typer.echo("")
    if table is None and macs:
        typer.secho("macros", bold=True)
        for m in macs:
            typer.echo(f"    {m['name']}({', '.join(m['parameters'])})")


@catalog_app.command("init")
def catalog_init(
    db: Annotated[Path, typer.Option("--db", help=DB_HELP)],
) -> None:
    """Create the catalogue lake of a work directory (or bring its schema up to date)."""
    from georeset.data_catalog import migrate
    from georeset.data_catalog.connect import open_lake

    try:
        con = open_lake(db)
        try:
            applied = migrate(con)
        finally:
            con.close()
    except GeoResetError as exc:
        fail(exc)
    typer.echo(f"{db}: applied {len(applied)} migration(s) {applied}")


@catalog_app.command("counts")
def catalog_counts(
    db: Annotated[Path, typer.Option("--db", help=DB_HELP)],
) -> None:
    """Print the row count of every catalogue table as JSON."""
    from georeset.stages import table_counts

    try:
        print(json.dumps(table_counts(db)))
    except GeoResetError as exc:
        fail(exc)


@world_app.command("build")
def world_build(
    root: Annotated[Path, typer.Option(help="Directory for the world (OSM copies, COGs, STAC items).")],
    scale: Annotated[str, typer.Option(help="'tiny' or 'small'.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Build (or reuse) the sample world: real OSM features, simulated Sentinel-2 L2A and Sentinel-1 COGs."""
    from georeset.pipelines.sample_world import build_sample_world

    try:
        world = build_sample_world(root, seed=seed, scale=scale)
    except GeoResetError as exc:
        fail(exc)
    typer.echo(f"sample world at {world.root}; STAC items in {world.stac_dir}")


@world_app.command("serve")
def world_serve(
    root: Annotated[Path, typer.Option(help="Directory of a built sample world.")],
) -> None:
    """Serve the sample world's STAC items on 127.0.0.1 until Ctrl-C."""
    import time

    from georeset.pipelines.sample_world import build_sample_world, serve_stac

    world = build_sample_world(root)
    with serve_stac(world.stac_dir) as url:
        typer.echo(f"STAC API at {url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


@harvest_app.command("osm")
def harvest_osm_cmd(
    pbf: Annotated[Path, typer.Option(help="An .osm.pbf extract.")],
    workdir: WorkdirOpt = Path("work/demo"),
    bbox: Annotated[str | None, typer.Option(help="Only features inside minlon,minlat,maxlon,maxlat.")] = None,
    max_docs: Annotated[int, typer.Option(help="Cap on documents (0 = no cap).")] = 0,
) -> None:
    """Turn the named features of an .osm.pbf extract into documents."""
    from georeset.stages import harvest_osm_stage, parse_bbox
    from georeset.workspace import Workspace

    try:
        box = parse_bbox(bbox) if bbox else None
        r = harvest_osm_stage(Workspace.at(workdir), pbfs=[pbf], bbox=box, max_docs=max_docs or None)
    except GeoResetError as exc:
        fail(exc)
    print(json.dumps(r))


def _langs(values: list[str] | None) -> list[str]:
    """``--lang en --lang de`` and ``--lang en,de`` both give ``["en", "de"]`` (order kept, duplicates dropped)."""
    out: list[str] = []
    for v in values or ["en"]:
        for part in v.split(","):
            if part.strip() and part.strip() not in out:
                out.append(part.strip())
    return out


def _area(bbox: str | None, area: Path | None, region: str | None):  # type: ignore[no-untyped-def]
    from georeset.pipelines.harvest.area import resolve_area
    from georeset.stages import parse_bbox

    return resolve_area(bbox=parse_bbox(bbox) if bbox else None, area_file=area, region=region)


AreaBBoxOpt = Annotated[str | None, typer.Option(help="minlon,minlat,maxlon,maxlat in degrees (EPSG:4326).")]
AreaFileOpt = Annotated[Path | None, typer.Option(
    "--area", help="GeoJSON file with a (Multi)Polygon: tiles outside it are skipped, results outside dropped.")]
RegionOpt = Annotated[str | None, typer.Option(
    help="A country by name or ISO code (offline outline from countryinfo), e.g. Finland or FI.")]


@harvest_app.command("wikipedia")
def harvest_wikipedia_cmd(
    user_agent: Annotated[str, typer.Option(help="Descriptive User-Agent with contact, e.g. 'myproj/1.0 (me@x.org)'.")],
    bbox: AreaBBoxOpt = None,
    area: AreaFileOpt = None,
    region: RegionOpt = None,
    workdir: WorkdirOpt = Path("work/demo"),
    lang: Annotated[list[str] | None, typer.Option(
        help="Wikipedia language code; repeat (--lang en --lang de) or list (--lang en,de).")] = None,
    api_url: Annotated[str | None, typer.Option(
        help="MediaWiki Action API endpoint; {lang} is filled in. Default https://<lang>.wikipedia.org/w/api.php.")]
    = None,
    radius_m: Annotated[float, typer.Option(help="Geosearch tile radius in metres (10..10000).")] = 10000.0,
    batch_pages: Annotated[int, typer.Option(help="Pages fetched and staged per batch (a multiple of 50).")] = 500,
    quiet: Annotated[bool, typer.Option(help="No progress lines on stderr.")] = False,
) -> None:
    """Harvest geotagged Wikipedia articles of an area through the MediaWiki API (geosearch tiles + extracts).

    Resumable: progress is kept under <workdir>/state/wikipedia/, so the same command after an interruption
    goes on where it stopped. Incremental: a re-run asks only for revision ids and fetches new or changed pages.
    Prints one JSON summary.
    """
    from georeset.stages import harvest_wikipedia_stage
    from georeset.workspace import Workspace

    try:
        r = harvest_wikipedia_stage(
            Workspace.at(workdir), api_url=api_url, area=_area(bbox, area, region), user_agent=user_agent,
            lang=_langs(lang), radius_m=radius_m, batch_pages=batch_pages, progress=not quiet,
        )
    except GeoResetError as exc:
        fail(exc)
    print(json.dumps(r))


@harvest_app.command("overpass")
def harvest_overpass_cmd(
    user_agent: Annotated[str, typer.Option(help="Descriptive User-Agent with contact, e.g. 'myproj/1.0 (me@x.org)'.")],
    bbox: AreaBBoxOpt = None,
    area: AreaFileOpt = None,
    workdir: WorkdirOpt = Path("work/demo"),
    endpoint: Annotated[str, typer.Option(help="Overpass API interpreter URL.")]
    = "https://overpass-api.de/api/interpreter",
    out: Annotated[str, typer.Option(help="Geometry: 'geom' (full) or 'center' (a point per feature).")] = "geom",
    place: Annotated[str | None, typer.Option(help="Town named in captions when a feature has no addr:city.")] = None,
    max_area: Annotated[float, typer.Option(help="Refuse areas larger than this many square degrees.")] = 0.25,
    quiet: Annotated[bool, typer.Option(help="No progress lines on stderr.")] = False,
) -> None:
    """Named OSM features of a small area through the Overpass API (same documents and ids as `harvest osm`).

    For a region or a country download a .osm.pbf extract and use `georeset harvest osm` instead.
    Prints one JSON summary.
    """
    from georeset.stages import harvest_overpass_stage
    from georeset.workspace import Workspace

    try:
        r = harvest_overpass_stage(
            Workspace.at(workdir), area=_area(bbox, area, None), user_agent=user_agent, endpoint=endpoint, out=out,
            place=place, max_area_deg2=max_area, progress=not quiet,
        )
    except GeoResetError as exc:
        fail(exc)
    print(json.dumps(r))


def geoparse_run(
    workdir: WorkdirOpt = Path("work/demo"),
    workers: Annotated[int | None, typer.Option(help="Processes parsing documents (default: all cores; one per "
                                                     "200 documents at most).", min=1)] = None,
    batch_size: Annotated[int, typer.Option(help="Documents per spaCy nlp.pipe batch.", min=1)] = 64,
    feed_points: Annotated[str | None, typer.Option(
        "--feed-points", help="A point per feed, given to documents without their own point: a CSV (header "
        "feed,lon,lat) or JSON ({feed: [lon, lat]}) file, the feed being a URL host (parisnews.com) or a source "
        "name; or 'self' to learn each feed's point from the toponyms already in the catalogue "
        "(docs/geoparsing.md).")] = None,
    ner_model: Annotated[Path | None, typer.Option(
        "--ner-model", help="A fine-tuned NER (the --out directory of 'georeset geoparse train-ner') instead of "
        "spaCy's en_core_web_sm, in every worker; the same as setting GEORESET_NER_MODEL.")] = None,
) -> None:
    """Find and resolve the toponyms of every document that has not been geoparsed yet."""
    from georeset.pipelines.geoparse.cli import use_ner_model
    from georeset.stages import geoparse_stage
    from georeset.workspace import Workspace

    def stage(ws: Workspace, **kw: Any) -> Any:
        use_ner_model(ner_model)
        return geoparse_stage(ws, **kw)

    print_json_or_fail(stage, Workspace.at(workdir), workers=workers, batch_size=batch_size,
                       feed_points=feed_points)


def imagery_fetch(
    stac_url: Annotated[str, typer.Option(help="STAC API root URL.")],
    workdir: WorkdirOpt = Path("work/demo"),
    datetime_range: Annotated[str, typer.Option("--datetime", help="RFC 3339 interval.")] = "2024-01-01/2024-12-31",
    gsd: Annotated[float, typer.Option(help="Output ground sampling distance in metres.")] = 10.0,
    size: Annotated[int, typer.Option(help="Patch size in pixels.")] = 32,
    max_cells: Annotated[int, typer.Option(help="Cap on patch locations.")] = 400,
    collections: Annotated[str, typer.Option(
        help="Collections to search, comma-separated (e.g. sentinel-1-rtc,sentinel-2-l2a on the Planetary Computer).",
    )] = "sentinel-2-l2a,sentinel-1-grd",
    sign: Annotated[str | None, typer.Option(
        help="Sign hrefs at read time: 'planetary-computer' (SAS tokens; the catalogue keeps unsigned hrefs).",
    )] = None,
    max_cloud: Annotated[float | None, typer.Option(
        help="Search optical items with eo:cloud_cover <= this (%); sent to the API per optical collection.",
    )] = None,
    min_clear: Annotated[float, typer.Option(
        help="Keep a patch only if this share of its pixels is a clear view (0..1; SAR: valid pixels).",
    )] = 0.5,
    sortby: Annotated[str | None, typer.Option(help="Search order, e.g. '-eo:cloud_cover,datetime'.")] = None,
    max_items: Annotated[int, typer.Option(help="Stop each search after this many items (warns when reached).")] = 500,
    grid: Annotated[str, typer.Option(
        help="Location grid: 'utm' (cells of each point's UTM zone) or 'majortom' (one global grid: no overlapping "
             "cells across UTM zone boundaries).",
    )] = "utm",
) -> None:
    """Fetch Sentinel-2 and Sentinel-1 patches around the documents' locations from a STAC API."""
    from georeset.pipelines.imagery.fetch_options import fetch_options
    from georeset.stages import imagery_stage
    from georeset.workspace import Workspace

    try:
        colls, opts = fetch_options(collections=collections, sign=sign, max_cloud=max_cloud, min_clear=min_clear,
                                    sortby=sortby, max_items=max_items, datetime=datetime_range)  # fmt: skip
        if grid not in {"utm", "majortom"}:
            raise InputError(f"--grid {grid!r} is not a grid", hint="use --grid utm or --grid majortom")
        r = imagery_stage(
            Workspace.at(workdir), stac_url=stac_url, datetime=datetime_range, gsd=gsd, size=size, max_cells=max_cells,
            collections=colls, grid=grid, **opts,
        )
    except GeoResetError as exc:
        fail(exc)
    print(json.dumps(r))


@app.command()
def pair(workdir: WorkdirOpt = Path("work/demo")) -> None:
    """Pair documents with patches by location (document point or resolved toponym inside the patch)."""
    from georeset.stages import pair_stage
    from georeset.workspace import Workspace

    print_json_or_fail(pair_stage, Workspace.at(workdir))


@app.command()
def export(
    workdir: WorkdirOpt = Path("work/demo"),
    min_clear: Annotated[float, typer.Option(
        help="Leave out pairs whose patch has a clear fraction below this (0..1; SAR: valid pixels).",
    )] = 0.5,
) -> None:
    """Export the pairs as Parquet training shards with a manifest naming the catalogue snapshot."""
    from georeset.stages import export_stage
    from georeset.workspace import Workspace

    if not 0.0 <= min_clear <= 1.0:
        fail(InputError(f"--min-clear {min_clear} is not a fraction", hint="give --min-clear between 0 and 1"))
    print_json_or_fail(export_stage, Workspace.at(workdir), min_clear=min_clear)


@app.command()
def train(
    workdir: WorkdirOpt = Path("work/demo"),
    config: Annotated[str, typer.Option(help="Model config from the registry (tiny, small).")] = "tiny",
    nproc: Annotated[int, typer.Option(help="Processes per node for torchrun.")] = 2,
    steps: Annotated[int, typer.Option(help="Training steps.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Batch size per process.")] = 16,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: the config's).")] = None,
    save_every: Annotated[int | None, typer.Option(
        help="Checkpoint every N steps (atomic; default: every steps/10).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume/--no-resume", help="Continue an interrupted run of the same settings from its last checkpoint "
        "(default), or start it afresh.")] = True,
) -> None:
    """Train the encoder with torchrun on the exported shards; records a `runs` row (finished, interrupted or
    failed). Prints a progress line per step; a killed run continues from its last checkpoint when re-run."""
    from georeset.stages import train_stage
    from georeset.workspace import Workspace

    print_json_or_fail(train_stage, Workspace.at(workdir), config=config, nproc=nproc, steps=steps, seed=seed,
                       batch_size=batch_size, lr=lr, save_every=save_every, resume=resume)


@app.command("evaluate")
def evaluate_cmd(
    workdir: WorkdirOpt = Path("work/demo"),
    run_id: Annotated[str | None, typer.Option(help="Training run to evaluate (default: the latest).")] = None,
) -> None:
    """Evaluate a training run (recall@k both ways, zero-shot land cover) and record it in its `runs` row."""
    from georeset.stages import evaluate_stage
    from georeset.workspace import Workspace

    print_json_or_fail(evaluate_stage, Workspace.at(workdir), run_id=run_id)


@app.command("index")
def index_cmd(
    workdir: WorkdirOpt = Path("work/demo"),
    run_id: Annotated[str | None, typer.Option(help="Training run whose encoder embeds (default: the latest).")]
    = None,
) -> None:
    """Build the search indexes: encoder embeddings (HNSW) and BM25 over the documents."""
    from georeset.stages import index_stage
    from georeset.workspace import Workspace

    print_json_or_fail(index_stage, Workspace.at(workdir), run_id=run_id)


@app.command("maintain")
def maintain_cmd(
    workdir: WorkdirOpt = Path("work/demo"),
    keep_days: Annotated[float | None, typer.Option(
        "--keep-days", help="Expire snapshots older than this many days (default: GEORESET_LAKE_KEEP_DAYS or 30); "
        "the current snapshot and those shards name are always kept.")] = None,
) -> None:
    """Maintain the catalogue lake: compact small files, expire old snapshots, delete unreferenced files
    (DuckLake's own functions; rows never change). Prints rows and files per table before and after."""
    from georeset.stages.maintain import maintain_stage
    from georeset.workspace import Workspace

    print_json_or_fail(maintain_stage, Workspace.at(workdir), keep_days=keep_days)


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
