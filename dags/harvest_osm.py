"""Harvest named OpenStreetMap features into ``documents``, tile by tile, once per day (backfillable).

Wiring only. ``plan_tiles`` cuts the areas into tiles and batches; ``harvest_tiles`` is mapped over the batches and
only writes Parquet staging files named ``osm-<tile>-<data interval>`` (a retry overwrites its own files);
``catalog_merge`` commits exactly those files (georeset.stages.harvest, the code the CLI runs) and emits ``georeset_documents`` with row counts.
The extracts are local ``.osm.pbf`` files (default: the sample world's), so no Overpass request is made.
"""

from __future__ import annotations

from _georeset_common import (
    BBOX_SCHEMA,
    DEFAULT_ARGS,
    DOCUMENTS,
    START_DATE,
    run_key,
    run_time,
    workdir_param,
)
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="harvest_osm",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "harvest", "osm"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "pbfs": Param([], type="array", items={"type": "string"}, title="OSM extracts",
                      description=".osm.pbf files to read; empty: the sample world's extracts under <workdir>/world"),
        "areas": Param([], type="array", items=BBOX_SCHEMA, title="Areas",
                       description="Boxes [minlon, minlat, maxlon, maxlat] (EPSG:4326); empty: the sample world's "
                                   "regions"),
        "tile_deg": Param(0.02, type="number", exclusiveMinimum=0, maximum=1,
                          description="Tile side in degrees (one staging file per tile)"),
        "tiles_per_batch": Param(4, type="integer", minimum=1, maximum=1000,
                                 description="Tiles per mapped task"),
        "max_docs_per_tile": Param(None, type=["null", "integer"], minimum=1,
                                   description="Keep at most this many features per tile (null: all)"),
    },
)
def harvest_osm() -> None:
    @task
    def plan_tiles(**context) -> list[dict]:  # type: ignore[no-untyped-def]
        """Tiles of the areas in batches; each batch is the input of one mapped task."""
        from georeset.stages import harvest, sample_world_inputs
        from georeset.workspace import Workspace

        p = context["params"]
        pbfs, areas = list(p["pbfs"]), list(p["areas"])
        if not pbfs or not areas:
            world = sample_world_inputs(Workspace.at(p["workdir"]).world_dir)
            pbfs, areas = pbfs or world["pbfs"], areas or world["areas"]
        return harvest.plan_osm(pbfs=pbfs, areas=areas, tile_deg=p["tile_deg"], tiles_per_batch=p["tiles_per_batch"],
                                interval=run_key(context))

    @task(map_index_template="{{ batch_label }}")
    def harvest_tiles(batch: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import harvest
        from georeset.workspace import Workspace

        get_current_context()["batch_label"] = f"{len(batch['tiles'])} tiles from {batch['tiles'][0][:2]}"
        p = context["params"]
        return harvest.run_osm(batch, staging_dir=Workspace.at(p["workdir"]).staging_dir,
                               retrieved_at=run_time(context), limit_per_tile=p["max_docs_per_tile"])

    @task(outlets=[DOCUMENTS])
    def catalog_merge(results: list[dict], **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import writer
        from georeset.workspace import Workspace

        ws = Workspace.at(context["params"]["workdir"])
        m = writer.commit(ws, ["documents"], names=[n for r in results for n in r["names"]])["documents"]
        extra = {"source": "osm", "workdir": str(ws.root), "interval": run_key(context),
                 "staged_rows": sum(r["rows"] for r in results), **m}
        context["outlet_events"][DOCUMENTS].extra = extra
        return extra

    catalog_merge(harvest_tiles.expand(batch=plan_tiles()))


harvest_osm()
