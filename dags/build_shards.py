"""Export the paired catalogue as training shards (asset-scheduled on new pairs).

Wiring only. ``export`` writes the shards and ``manifest.json``, reusing an
identical snapshot; ``publish_snapshot`` emits ``georeset_shards_snapshot`` (snapshot id, split sizes, manifest)
only when the snapshot is new, and is skipped otherwise, so training runs once per new snapshot.
"""

from __future__ import annotations

from _georeset_common import DEFAULT_ARGS, PAIRS, SHARDS, START_DATE, workdir_param, workspace
from airflow.sdk import Param, dag, task


@dag(
    dag_id="build_shards",
    schedule=[PAIRS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "shards"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "test_fraction": Param(0.2, type="number", minimum=0, exclusiveMaximum=1,
                               description="Share of pairs held out (by geographic block) for evaluation"),
        "seed": Param(0, type="integer", minimum=0, description="Seed of the block hold-out"),
        "block_deg": Param(0.005, type="number", exclusiveMinimum=0, description="Hold-out block size (degrees)"),
        "always_publish": Param(False, type="boolean",
                                description="Emit the snapshot event even when the snapshot did not change"),
    },
)
def build_shards() -> None:
    @task
    def export(**context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages.export import export_stage

        p = context["params"]
        ws = workspace(context, PAIRS)
        r = export_stage(ws, test_fraction=p["test_fraction"], seed=p["seed"], block_deg=p["block_deg"])
        return {**r, "workdir": str(ws.root)}

    @task(outlets=[SHARDS])
    def publish_snapshot(snapshot: dict, **context) -> dict:  # type: ignore[no-untyped-def]
        from airflow.sdk.exceptions import AirflowSkipException

        if not snapshot["new"] and not context["params"]["always_publish"]:
            raise AirflowSkipException(f"shard snapshot {snapshot['snapshot_id']} is unchanged: nothing to publish")
        extra = {k: snapshot[k] for k in ("workdir", "snapshot_id", "previous_snapshot_id", "manifest", "splits")}
        context["outlet_events"][SHARDS].extra = extra
        return extra

    publish_snapshot(export())


build_shards()
