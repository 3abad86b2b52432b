"""The whole GEO-ReSeT flow on the offline sample world, as one Airflow DAG.

Wiring only: every task calls the stage layer ``georeset.stages``, the code the CLI and the demo run (imported
inside the task, so parsing this file stays cheap). Run it once with: ``airflow dags test georeset_sample_world``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from _georeset_common import notify_failure
from airflow.sdk import Asset, Param, dag, task

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True,
                "execution_timeout": timedelta(hours=2), "on_failure_callback": notify_failure}
# Its own assets (not the ones the production DAGs are scheduled on), so a demo run triggers nothing else.
catalog_asset = Asset(name="georeset_sample_world_catalog", uri="x-georeset://sample-world/catalog", group="georeset")
shards_asset = Asset(name="georeset_sample_world_shards", uri="x-georeset://sample-world/shards", group="georeset")


@dag(
    dag_id="georeset_sample_world",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "sample-world"],
    params={
        "workdir": Param("work/airflow-demo", type="string", description="Work directory (catalogue, data, shards)."),
        "scale": Param("tiny", enum=["tiny", "small"], description="Sample-world size."),
        "steps": Param(5, type="integer", minimum=1, description="Training steps."),
        "nproc": Param(2, type="integer", minimum=1, description="torchrun processes."),
    },
)
def georeset_sample_world() -> None:
    @task
    def build_world(params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset.pipelines.sample_world import build_sample_world
        from georeset.workspace import Workspace

        assert params is not None
        ws = Workspace.at(params["workdir"])
        w = build_sample_world(ws.world_dir, scale=params["scale"])
        return {"pbfs": [str(p) for p in w.osm_pbfs], "bbox": list(w.bbox), "dates": sorted(w.dates)}

    @task
    def gazetteer(params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None
        return stages.gazetteer_stage(Workspace.at(params["workdir"]))

    @task
    def harvest_osm(world: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None
        return stages.harvest_osm_stage(
            Workspace.at(params["workdir"]), pbfs=world["pbfs"], bbox=tuple(world["bbox"]), max_docs=500
        )

    @task
    def geoparse(_h: dict, _g: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None
        return stages.geoparse_stage(Workspace.at(params["workdir"]), progress=False)

    @task
    def imagery(world: dict, _g: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset import stages
        from georeset.pipelines.sample_world import serve_stac
        from georeset.workspace import Workspace

        assert params is not None
        ws = Workspace.at(params["workdir"])
        with serve_stac(ws.world_dir / "stac") as url:
            d = world["dates"]
            return stages.imagery_stage(
                ws, stac_url=url, datetime=f"{d[0][:10]}T00:00:00Z/{d[-1][:10]}T23:59:59Z", progress=False
            )

    @task(outlets=[catalog_asset])
    def pair(_i: dict, params: dict | None = None, outlet_events=None) -> dict:  # type: ignore[no-untyped-def]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None and outlet_events is not None
        ws = Workspace.at(params["workdir"])
        r = stages.pair_stage(ws)
        outlet_events[catalog_asset].extra = {"workdir": str(ws.root), **stages.table_counts(ws.db_path)}
        return r

    @task(outlets=[shards_asset])
    def export(_p: dict, params: dict | None = None, outlet_events=None) -> dict:  # type: ignore[no-untyped-def]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None and outlet_events is not None
        ws = Workspace.at(params["workdir"])
        r = stages.export_stage(ws)
        outlet_events[shards_asset].extra = {"workdir": str(ws.root), "snapshot_id": r["snapshot_id"],
                                             "manifest": r["manifest"], "splits": r["splits"]}
        return r

    @task
    def train(_e: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset.stages import train as stage
        from georeset.workspace import Workspace

        assert params is not None
        return stage.train(Workspace.at(params["workdir"]), nproc=params["nproc"], steps=params["steps"])

    @task
    def record_run(run: dict, params: dict | None = None, dag_run=None) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages import train as stage
        from georeset.workspace import Workspace

        assert params is not None and dag_run is not None
        stage.record_run(Workspace.at(params["workdir"]), run, started_at=dag_run.run_after)
        return {"run_id": run["run_id"], "final_loss": run["summary"].get("final_loss")}

    @task
    def evaluate(run: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset.stages import evaluate as stage
        from georeset.workspace import Workspace

        assert params is not None
        return {"run_id": run["run_id"],
                "metrics": stage.evaluate_run(Workspace.at(params["workdir"]), run_id=run["run_id"])}

    @task
    def record_and_index(result: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset.stages import evaluate as stage
        from georeset.stages.index import index_stage
        from georeset.workspace import Workspace

        assert params is not None
        ws = Workspace.at(params["workdir"])
        stage.record_evaluation(ws, run_id=result["run_id"], metrics=result["metrics"])
        return {**result, "index": index_stage(ws, run_id=result["run_id"])}

    world = build_world()
    g = gazetteer()
    h = harvest_osm(world)
    gp = geoparse(h, g)
    im = imagery(world, gp)
    record_and_index(evaluate(record_run(train(export(pair(im))))))


georeset_sample_world()
