"""The whole GEO-ReSeT flow on the offline sample world, as one Airflow DAG.

Wiring only: every task calls one function of ``georeset.stages`` (imported inside the task, so parsing this
file stays cheap). Run it once with: ``airflow dags test georeset_sample_world``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True}
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

    @task(pool="georeset_catalog_writer")
    def gazetteer(params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None
        return stages.gazetteer_stage(Workspace.at(params["workdir"]))

    @task(pool="georeset_catalog_writer")
    def harvest_osm(world: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None
        return stages.harvest_osm_stage(
            Workspace.at(params["workdir"]), pbfs=world["pbfs"], bbox=tuple(world["bbox"]), max_docs=500
        )

    @task(pool="georeset_catalog_writer")
    def geoparse(_h: dict, _g: dict, params: dict | None = None) -> dict:  # type: ignore[type-arg]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None
        return stages.geoparse_stage(Workspace.at(params["workdir"]), progress=False)

    @task(pool="georeset_catalog_writer")
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

    @task(pool="georeset_catalog_writer", outlets=[catalog_asset])
    def pair(_i: dict, params: dict | None = None, outlet_events=None) -> dict:  # type: ignore[no-untyped-def]
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None and outlet_events is not None
        ws = Workspace.at(params["workdir"])
        r = stages.pair_stage(ws)
        outlet_events[catalog_asset].extra = {"workdir": str(ws.root), **stages.table_counts(ws.db_path)}
        return r

    @task(pool="georeset_catalog_writer", outlets=[shards_asset])
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
        from georeset import stages
        from georeset.workspace import Workspace

        assert params is not None
        ws = Workspace.at(params["workdir"])
        r = stages.train_stage(ws, nproc=params["nproc"], steps=params["steps"])
        ev = stages.evaluate_stage(ws, run_id=r["run_id"], checkpoint=r["checkpoint"])
        return {"run_id": r["run_id"], "final_loss": r.get("final_loss"), **ev}

    world = build_world()
    g = gazetteer()
    h = harvest_osm(world)
    gp = geoparse(h, g)
    im = imagery(world, gp)
    train(export(pair(im)))


georeset_sample_world()
