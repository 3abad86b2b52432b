"""What the GEO-ReSeT DAGs share: default args, pools, Assets, Params, and small run-time helpers.

Parse-time cheap: only the standard library and ``airflow.sdk`` are imported here; everything from ``georeset`` is
imported inside the helpers, which run in tasks. Not a DAG file (listed in ``.airflowignore``).

Pools (also in ``dags/pools.json``; create them with ``airflow pools import dags/pools.json``): ``mediawiki_api``,
``overpass_api``, ``nominatim`` (1 slot each: rate-limited public APIs). There is no catalogue writer pool: the
catalogue is a DuckLake and every task commits its own partition (conflicting commits retry).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param

__all__ = [
    "DEFAULT_ARGS",
    "TRAINING_TIMEOUT",
    "notify_failure",
    "START_DATE",
    "POOLS",
    "BBOX_SCHEMA",
    "MEDIAWIKI_POOL",
    "OVERPASS_POOL",
    "NOMINATIM_POOL",
    "DOCUMENTS",
    "TOPONYMS",
    "PAIRS",
    "SHARDS",
    "MODELS",
    "EVALUATIONS",
    "workdir_param",
    "run_time",
    "run_key",
    "event_extra",
    "workspace",
]

def notify_failure(context: Any) -> None:
    """On-failure hook of every task: one log line, and a JSON POST to ``GEORESET_ALERT_WEBHOOK`` when it is set
    (Slack/Teams/Alertmanager-style incoming webhooks). Never raises: alerting must not fail the task's cleanup."""
    import json
    import logging
    import urllib.request

    ti = context.get("task_instance") or context.get("ti")
    msg = {"dag_id": getattr(ti, "dag_id", None), "task_id": getattr(ti, "task_id", None),
           "map_index": getattr(ti, "map_index", None), "try_number": getattr(ti, "try_number", None),
           "run_id": getattr(ti, "run_id", None), "error": str(context.get("exception"))[:2000]}
    logging.getLogger("georeset.alerts").error("task failed: %s", msg)
    url = os.environ.get("GEORESET_ALERT_WEBHOOK")
    if url:
        try:
            req = urllib.request.Request(url, data=json.dumps({"text": f"GEO-ReSeT task failed: {msg}"}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            urllib.request.urlopen(req, timeout=10).close()
        except Exception as exc:  # noqa: BLE001 - a broken webhook is logged, not raised
            logging.getLogger("georeset.alerts").warning("alert webhook %s failed: %s", url, exc)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "georeset",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=2),  # a hung task fails (and retries) instead of holding its slot
    "on_failure_callback": notify_failure,
}
TRAINING_TIMEOUT = timedelta(hours=48)  # the train task's own limit (the Kubernetes Job has timeout_h as well)
START_DATE = datetime(2024, 1, 1)

# JSON schema of one area Param: [minlon, minlat, maxlon, maxlat] in EPSG:4326
BBOX_SCHEMA = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
MEDIAWIKI_POOL = "mediawiki_api"
OVERPASS_POOL = "overpass_api"
NOMINATIM_POOL = "nominatim"
POOLS: dict[str, tuple[int, str]] = {
    MEDIAWIKI_POOL: (1, "MediaWiki API (Wikipedia geosearch and page details)"),
    OVERPASS_POOL: (1, "Overpass API (OpenStreetMap queries)"),
    NOMINATIM_POOL: (1, "Nominatim geocoder (1 request/s usage policy)"),
}

# Assets: one per catalogue table group or artefact. Events carry metadata (row counts, snapshot/run ids, workdir);
# consumers read it from ``triggering_asset_events``. Data never passes between DAGs through XCom.
DOCUMENTS = Asset(name="georeset_documents", uri="x-georeset://catalog/documents", group="georeset")
TOPONYMS = Asset(name="georeset_toponyms", uri="x-georeset://catalog/toponyms", group="georeset")
PAIRS = Asset(name="georeset_pairs", uri="x-georeset://catalog/pairs", group="georeset")
SHARDS = Asset(name="georeset_shards_snapshot", uri="x-georeset://shards/snapshot", group="georeset")
MODELS = Asset(name="georeset_encoder_checkpoint", uri="x-georeset://models/encoder", group="georeset")
EVALUATIONS = Asset(name="georeset_encoder_evaluation", uri="x-georeset://models/evaluation", group="georeset")


def workdir_param() -> Param:
    """The work directory (catalogue, staging, data, shards, runs); default from ``GEORESET_WORKDIR``."""
    return Param(os.environ.get("GEORESET_WORKDIR", "work/airflow"), type="string", minLength=1,
                 title="Work directory",
                 description="Holds the DuckDB catalogue, staging files, patches, shards and runs "
                             "(env GEORESET_WORKDIR sets the default; use /data/work on a cluster). An asset-"
                             "triggered run uses the workdir named by the triggering event.")


def run_time(context: Any) -> datetime:
    """The run's reference time: end of the data interval, else the logical date, else when the run was queued.

    Stored with the DAG run, so retries see the same value (never the wall clock)."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return context["dag_run"].run_after  # type: ignore[no-any-return]


def run_key(context: Any) -> str:
    """Partition key of the run: its data interval, or its reference time when it has none."""
    from georeset.stages import interval_key

    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and start != end:
        return interval_key(start, end)
    return interval_key(run_time(context))


def event_extra(context: Any, asset: Asset) -> dict[str, Any]:
    """Metadata of the latest event of ``asset`` that triggered this run ({} for manual or scheduled runs)."""
    events = context.get("triggering_asset_events")
    if not events:
        return {}
    try:
        found = events[asset]
    except (KeyError, TypeError):
        return {}
    return dict(found[-1].extra or {}) if found else {}


def workspace(context: Any, *assets: Asset) -> Any:
    """The run's Workspace: the workdir of the triggering event of one of ``assets``, else the workdir Param."""
    from georeset.workspace import Workspace

    for a in assets:
        wd = event_extra(context, a).get("workdir")
        if wd:
            return Workspace.at(wd)
    return Workspace.at(context["params"]["workdir"])
