"""Catalogue lake maintenance, daily: DuckLake's own small-file compaction, snapshot expiry and old-file cleanup.

Wiring only: the one task calls :func:`georeset.stages.maintain.maintain_stage` (what ``georeset maintain`` runs).
Snapshots older than ``keep_days`` expire, except the current one and every snapshot a shard manifest names
(``lake_snapshot_id``), so trained models stay reproducible. Rows never change; the task's return value has rows
and files per table before and after. A maintenance commit that conflicts with a concurrent writer fails and the
task retry runs it again on the new snapshot.
"""

from __future__ import annotations

from _georeset_common import DEFAULT_ARGS, START_DATE, workdir_param, workspace
from airflow.sdk import Param, dag, task


@dag(
    dag_id="catalog_maintenance",
    schedule="0 3 * * *",  # daily, at a quiet hour
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["georeset", "maintenance"],
    doc_md=__doc__,
    params={
        "workdir": workdir_param(),
        "keep_days": Param(30, type="number", minimum=0,
                           description="Expire lake snapshots older than this many days (shards' snapshots are "
                                       "always kept)"),
    },
)
def catalog_maintenance() -> None:
    @task
    def maintain(**context) -> dict:  # type: ignore[no-untyped-def]
        from georeset.stages.maintain import maintain_stage

        return maintain_stage(workspace(context), keep_days=float(context["params"]["keep_days"]))

    maintain()


catalog_maintenance()
