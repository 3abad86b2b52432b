"""Geoparse new documents into ``toponyms`` whenever documents are merged (asset-scheduled).

Wiring only, over georeset.stages.geoparse (the code `georeset geoparse run` runs). ``plan_batches`` loads the gazetteer once, then writes the documents without toponyms
as Parquet batch files plus a gazetteer snapshot; ``parse_batch`` is mapped over the batch files and stages
``toponyms/geoparse-<batch>`` only; ``catalog_merge`` commits exactly those files and emits ``georeset_toponyms``.
``feed_points`` is `georeset geoparse run --feed-points`: a CSV/JSON file of points per feed, or ``self``.
"""

from __future__ import annotations

from _georeset_common import (
    DEFAULT_ARGS,
    DOCUMENTS,
    START_DATE,
    TOPONYMS,
    run_key,
    run_time,
    workdir_param,
    workspace,
)
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="geoparse",
    schedule=[DOCUMENTS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "geoparse"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "docs_per_batch": Param(500, type="integer", minimum=1, maximum=100000,
                                description="Documents per mapped task"),
        "nlp_batch_size": Param(64, type="integer", minimum=1, maximum=4096, description="spaCy batch size"),
        "min_population": Param(500, type="integer", minimum=0,
                                description="Smallest GeoNames place loaded into the gazetteer (first run only)"),
        "feed_points": Param(None, type=["null", "string"],
                             description="Points per feed for documents without their own point: a CSV "
                                         "(feed,lon,lat) or JSON file on the workers, or 'self' (docs/geoparsing.md)"),
    },
)
def geoparse() -> None:
    @task
    def plan_batches(**context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import geoparse, writer
        from georeset.stages.gazetteer import gazetteer_stage

        ws = workspace(context, DOCUMENTS)
        points = geoparse.feed_points_input(context["params"].get("feed_points"))  # a bad file fails first
        gazetteer_stage(ws, min_population=context["params"]["min_population"])
        out_dir = geoparse.plan_dir(ws, run_key(context))
        con = writer.open_writer(ws)
        try:
            files = geoparse.plan(con, out_dir=out_dir, batch_docs=context["params"]["docs_per_batch"],
                                  feed_points=points)
        finally:
            con.close()
        return {"workdir": str(ws.root), "out_dir": str(out_dir), "files": files}

    @task
    def batch_files(plan: dict) -> list[str]:
        return list(plan["files"])

    @task(map_index_template="{{ batch_label }}")
    def parse_batch(batch_file: str, plan: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from pathlib import Path

        from georeset.stages import geoparse
        from georeset.workspace import Workspace

        get_current_context()["batch_label"] = Path(batch_file).stem
        ws = Workspace.at(plan["workdir"])
        return geoparse.run(batch_file, gazetteer_dir=Path(plan["out_dir"]) / "gazetteer", staging_dir=ws.staging_dir,
                            processed_at=run_time(context), batch_size=context["params"]["nlp_batch_size"])

    @task(outlets=[TOPONYMS], trigger_rule="none_failed")
    def catalog_merge(plan: dict, results: list[dict] | None, **context) -> dict:  # type: ignore[no-untyped-def]
        import shutil

        from georeset.stages import writer
        from georeset.workspace import Workspace

        ws = Workspace.at(plan["workdir"])
        done = list(results or [])
        m = writer.commit(ws, ["toponyms"], names=[n for r in done for n in r["names"]])["toponyms"]
        shutil.rmtree(plan["out_dir"], ignore_errors=True)
        extra = {"workdir": str(ws.root), "documents_parsed": sum(r["documents"] for r in done), **m}
        context["outlet_events"][TOPONYMS].extra = extra
        return extra

    plan = plan_batches()
    parsed = parse_batch.partial(plan=plan).expand(batch_file=batch_files(plan))
    catalog_merge(plan, parsed)


geoparse()
