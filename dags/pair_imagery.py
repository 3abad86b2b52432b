"""Fetch Sentinel-1/2 patches around located documents and pair them (asset-scheduled on new toponyms).

Wiring only, over georeset.stages.imagery and .pair (the code `georeset imagery fetch` / `pair` run). ``plan_cells`` grids the located documents into patch-sized cells and batches them;
``fetch_cells`` is mapped over the batches: it reads patches from the STAC API (default: the sample world's,
served on 127.0.0.1 inside the task) and stages ``scenes``/``patches`` files named ``imagery-<cells>-<run>``
only; ``pair_merge`` commits exactly those files (scenes and patches together), pairs documents with patches, and emits ``georeset_pairs``.
"""

from __future__ import annotations

from _georeset_common import (
    DEFAULT_ARGS,
    PAIRS,
    START_DATE,
    TOPONYMS,
    run_key,
    run_time,
    workdir_param,
    workspace,
)
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="pair_imagery",
    schedule=[TOPONYMS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "imagery", "pairing"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "stac_url": Param("", type="string",
                          description="STAC API URL; empty: serve the sample world's catalogue from <workdir>/world"),
        "collections": Param(["sentinel-2-l2a", "sentinel-1-grd"], type="array", minItems=1, uniqueItems=True,
                             items={"type": "string"}, description="STAC collections to search"),
        "start_date": Param(None, type=["null", "string"], format="date",
                            description="First acquisition date (YYYY-MM-DD); null: the sample world's first date"),
        "end_date": Param(None, type=["null", "string"], format="date",
                          description="Last acquisition date (YYYY-MM-DD); null: the sample world's last date"),
        "max_cloud": Param(None, type=["null", "number"], minimum=0, maximum=100,
                           description="Largest eo:cloud_cover (%) of a Sentinel-2 scene; null: no limit"),
        "gsd": Param(10.0, type="number", exclusiveMinimum=0, maximum=1000, description="Patch pixel size (m)"),
        "size": Param(32, type="integer", minimum=4, maximum=1024, description="Patch side (pixels)"),
        "max_cells": Param(400, type="integer", minimum=0, description="At most this many cells (0: all)"),
        "cells_per_batch": Param(50, type="integer", minimum=1, maximum=10000, description="Cells per mapped task"),
    },
)
def pair_imagery() -> None:
    @task
    def plan_cells(**context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import imagery, sample_world_inputs, writer

        p = context["params"]
        ws = workspace(context, TOPONYMS)
        start, end = p["start_date"], p["end_date"]
        if not (start and end):
            dates = sample_world_inputs(ws.world_dir)["dates"]
            start, end = start or dates[0][:10], end or dates[-1][:10]
        con = writer.open_writer(ws)
        try:
            batches = imagery.plan(con, gsd=p["gsd"], size=p["size"], max_cells=p["max_cells"],
                                   cells_per_batch=p["cells_per_batch"])
        finally:
            con.close()
        return {"workdir": str(ws.root), "datetime": f"{start}T00:00:00Z/{end}T23:59:59Z", "interval": run_key(context),
                "batches": batches}

    @task
    def cell_batches(plan: dict) -> list[list[dict]]:
        return list(plan["batches"])

    @task(map_index_template="{{ batch_label }}")
    def fetch_cells(cells: list[dict], plan: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        import contextlib

        from georeset.pipelines.sample_world import serve_stac
        from georeset.stages import imagery
        from georeset.workspace import Workspace

        get_current_context()["batch_label"] = f"{len(cells)} cells from {cells[0]['lon']:.4f},{cells[0]['lat']:.4f}"
        p = context["params"]
        ws = Workspace.at(plan["workdir"])
        with contextlib.ExitStack() as stack:
            url = p["stac_url"] or stack.enter_context(serve_stac(ws.world_dir / "stac"))
            return imagery.run(
                cells, stac_url=url, collections=p["collections"], datetime_range=plan["datetime"],
                staging_dir=ws.staging_dir, data_dir=ws.data_dir, retrieved_at=run_time(context),
                interval=plan["interval"], gsd=p["gsd"], size=p["size"], max_cloud=p["max_cloud"],
            )

    @task(outlets=[PAIRS], trigger_rule="none_failed")
    def pair_merge(plan: dict, results: list[dict] | None, **context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import pair, writer
        from georeset.workspace import Workspace

        ws = Workspace.at(plan["workdir"])
        done = list(results or [])
        m = writer.commit(ws, ["scenes", "patches"], names=[n for r in done for n in r["names"]])
        m["pairs"] = pair.pair_stage(ws, retrieved_at=run_time(context))
        extra = {"workdir": str(ws.root), "cells": sum(r["cells"] for r in done),
                 "patches_read": sum(r["patches_read"] for r in done), "failures": sum(r["failures"] for r in done),
                 "scenes": m["scenes"]["total"], "patches": m["patches"]["total"], "pairs": m["pairs"]["total"],
                 "pairs_inserted": m["pairs"]["inserted"]}
        context["outlet_events"][PAIRS].extra = extra
        return extra

    plan = plan_cells()
    fetched = fetch_cells.partial(plan=plan).expand(cells=cell_batches(plan))
    pair_merge(plan, fetched)


pair_imagery()
