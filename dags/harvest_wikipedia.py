"""Harvest geotagged Wikipedia articles into ``documents``, per area, language and tile, once per day.

Wiring only. ``plan_tiles`` covers each area with geosearch tiles (<= 10 km circles) and batches them per
language; ``harvest_tiles`` is mapped over the batches in the one-slot ``mediawiki_api`` pool and writes Parquet
staging files ``wikipedia-<lang>-<tile>-<data interval>`` only; ``catalog_merge`` (writer pool) merges them and
emits ``georeset_documents``. Set a User-Agent with a contact (Param or env ``GEORESET_USER_AGENT``).
"""

from __future__ import annotations

import os

from _georeset_common import (
    BBOX_SCHEMA,
    DEFAULT_ARGS,
    DOCUMENTS,
    MEDIAWIKI_POOL,
    START_DATE,
    WRITER_POOL,
    run_key,
    run_time,
    workdir_param,
)
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="harvest_wikipedia",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "harvest", "wikipedia"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "areas": Param([[24.90, 60.15, 24.98, 60.19]], type="array", items=BBOX_SCHEMA, minItems=1, title="Areas",
                       description="Boxes [minlon, minlat, maxlon, maxlat] (EPSG:4326)"),
        "langs": Param(["en"], type="array", minItems=1, uniqueItems=True,
                       items={"type": "string", "pattern": "^[a-z][a-z0-9-]{1,15}$"}, title="Languages",
                       description="Wikipedia language editions, e.g. en, fi, sv"),
        "api_url": Param(None, type=["null", "string"],
                         description="MediaWiki API URL; null: https://<lang>.wikipedia.org/w/api.php"),
        "user_agent": Param(os.environ.get("GEORESET_USER_AGENT", ""), type="string",
                            description="User-Agent naming the tool, its version and a contact (Wikimedia policy)"),
        "radius_m": Param(10000, type="number", minimum=10, maximum=10000, description="Geosearch radius per tile"),
        "tiles_per_batch": Param(8, type="integer", minimum=1, maximum=1000, description="Tiles per mapped task"),
        "max_docs_per_tile": Param(None, type=["null", "integer"], minimum=1,
                                   description="Keep at most this many articles per tile (null: all)"),
    },
)
def harvest_wikipedia() -> None:
    @task
    def plan_tiles(**context) -> list[dict]:  # type: ignore[no-untyped-def]
        from georeset.partitions import batched, wikipedia_tiles

        p = context["params"]
        tiles = sorted({t for a in p["areas"] for t in wikipedia_tiles(a, radius_m=p["radius_m"])})
        key = run_key(context)
        return [{"lang": lang, "tiles": [list(t) for t in b], "interval": key}
                for lang in p["langs"] for b in batched(tiles, p["tiles_per_batch"])]

    @task(pool=MEDIAWIKI_POOL, map_index_template="{{ batch_label }}")
    def harvest_tiles(batch: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.partitions import harvest_wikipedia_partition
        from georeset.workspace import Workspace

        get_current_context()["batch_label"] = f"{batch['lang']}: {len(batch['tiles'])} tiles from {batch['tiles'][0][:2]}"
        p = context["params"]
        r = harvest_wikipedia_partition(
            staging_dir=Workspace.at(p["workdir"]).staging_dir, tiles=batch["tiles"], lang=batch["lang"],
            user_agent=p["user_agent"], api_url=p["api_url"], radius_m=p["radius_m"],
            retrieved_at=run_time(context), interval=batch["interval"], limit_per_tile=p["max_docs_per_tile"],
        )
        return {"lang": r["lang"], "tiles": r["tiles"], "rows": r["rows"]}

    @task(pool=WRITER_POOL, outlets=[DOCUMENTS])
    def catalog_merge(results: list[dict], **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.partitions import merge_staged
        from georeset.workspace import Workspace

        ws = Workspace.at(context["params"]["workdir"])
        m = merge_staged(db_path=ws.db_path, staging_dir=ws.staging_dir, tables=["documents"])["documents"]
        extra = {"source": "wikipedia", "workdir": str(ws.root), "interval": run_key(context),
                 "langs": sorted({r["lang"] for r in results}), "staged_rows": sum(r["rows"] for r in results), **m}
        context["outlet_events"][DOCUMENTS].extra = extra
        return extra

    catalog_merge(harvest_tiles.expand(batch=plan_tiles()))


harvest_wikipedia()
