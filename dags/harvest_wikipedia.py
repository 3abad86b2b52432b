"""Harvest geotagged Wikipedia articles into ``documents``, per language and area, once per day.

Wiring only, over georeset.stages.harvest (the code `georeset harvest wikipedia` runs). ``plan_tiles`` makes one
partition per (language, area); ``harvest_tiles`` is mapped over them in the one-slot ``mediawiki_api`` pool and runs
the resumable, incremental harvest (progress under ``<workdir>/state/wikipedia``: a retried task goes on where the
killed one stopped, and only new or changed revisions are fetched), staging ``wikipedia-<lang>-<key>-r*-b*`` files;
``catalog_merge`` commits exactly those files and emits ``georeset_documents``. Set a User-Agent with a contact (Param or env ``GEORESET_USER_AGENT``).
"""

from __future__ import annotations

import os

from _georeset_common import (
    BBOX_SCHEMA,
    DEFAULT_ARGS,
    DOCUMENTS,
    MEDIAWIKI_POOL,
    START_DATE,
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
        "batch_pages": Param(500, type="integer", minimum=50, multipleOf=50,
                             description="Pages fetched and staged per batch (the unit a retry resumes after)"),
    },
)
def harvest_wikipedia() -> None:
    @task
    def plan_tiles(**context) -> list[dict]:  # type: ignore[no-untyped-def]
        from georeset.stages import harvest

        p = context["params"]
        return harvest.plan_wikipedia(areas=[list(a) for a in p["areas"]], langs=p["langs"])

    @task(pool=MEDIAWIKI_POOL, map_index_template="{{ batch_label }}")
    def harvest_tiles(batch: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import harvest
        from georeset.workspace import Workspace

        get_current_context()["batch_label"] = f"{batch['lang']}: {batch['area']}"
        p = context["params"]
        r = harvest.run_wikipedia(batch, ws=Workspace.at(p["workdir"]), user_agent=p["user_agent"],
                                  api_url=p["api_url"], radius_m=p["radius_m"], retrieved_at=run_time(context),
                                  batch_pages=p["batch_pages"])
        return {"lang": r["lang"], "rows": r["rows_staged_now"], "resumed": r["resumed"], "names": r["names"]}

    @task(outlets=[DOCUMENTS])
    def catalog_merge(results: list[dict], **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import writer
        from georeset.workspace import Workspace

        ws = Workspace.at(context["params"]["workdir"])
        m = writer.commit(ws, ["documents"], names=[n for r in results for n in r["names"]])["documents"]
        extra = {"source": "wikipedia", "workdir": str(ws.root), "interval": run_key(context),
                 "langs": sorted({r["lang"] for r in results}), "staged_rows": sum(r["rows"] for r in results), **m}
        context["outlet_events"][DOCUMENTS].extra = extra
        return extra

    catalog_merge(harvest_tiles.expand(batch=plan_tiles()))


harvest_wikipedia()
