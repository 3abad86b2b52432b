"""Every DAG imports cleanly and cheaply, and follows the project's policies (tags, retries, pools, Params)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXPECTED = {"georeset_sample_world", "catalog_maintenance", "harvest_osm", "harvest_wikipedia", "geoparse", "pair_imagery", "build_shards",
            "train_encoder", "evaluate"}
WRITER = "georeset_catalog_writer"
# Tasks that commit to the catalogue lake: concurrently, in no writer pool (conflicting commits retry).
CATALOGUE_TASKS = {
    "harvest_osm": {"catalog_merge"},
    "harvest_wikipedia": {"catalog_merge"},
    "geoparse": {"plan_batches", "catalog_merge"},
    "pair_imagery": {"plan_cells", "pair_merge"},
    "build_shards": {"export"},
    "train_encoder": {"record_run"},
    "evaluate": {"record_evaluation", "build_index"},
    "georeset_sample_world": {"gazetteer", "harvest_osm", "geoparse", "imagery", "pair", "export", "record_run",
                              "record_and_index"},
}
HEAVY = ("torch", "spacy", "sentence_transformers", "transformers", "rasterio", "duckdb", "pyarrow", "pyrosm",
         "shapely", "numpy", "pandas", "georeset")


def _is_mapped(task: Any) -> bool:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    return isinstance(task, MappedOperator)


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)


def test_dags_import_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert EXPECTED <= set(dagbag.dag_ids)


def test_dags_folder_imports_fast_and_light() -> None:
    """Parse the dags folder in a fresh interpreter; print the time (not asserted), assert no heavy imports."""
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "import airflow.sdk\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        "from pathlib import Path\n"
        "t1 = time.perf_counter()\n"
        f"bag = BundleDagBag(dag_folder={str(DAGS)!r}, bundle_path=Path({str(DAGS)!r}))\n"
        "t2 = time.perf_counter()\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'airflow_import_s': t1 - t0, 'dags_parse_s': t2 - t1, 'dags': len(bag.dag_ids),\n"
        "                  'errors': len(bag.import_errors), 'heavy': heavy}))\n"
    )
    env = {**os.environ}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nimport airflow: {r['airflow_import_s']:.2f} s; parse the dags folder ({r['dags']} DAGs): "
          f"{r['dags_parse_s']:.2f} s")
    assert r["errors"] == 0
    assert r["heavy"] == [], f"DAG files import heavy modules at parse time: {r['heavy']}"


def test_no_wall_clock_in_dag_logic() -> None:
    for f in DAGS.glob("*.py"):
        text = f.read_text()
        for pattern in (r"\.now\(", r"utcnow\(", r"\btime\.time\(", r"\btoday\("):
            assert not re.search(pattern, text), f"{f.name} uses {pattern}: use the data interval / logical date"


def test_every_dag_is_tagged_and_every_task_retries_with_backoff(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "georeset" in dag.tags, f"{dag_id} has no 'georeset' tag"
        for t in dag.tasks:
            assert t.retries >= 2, f"{dag_id}.{t.task_id} has retries={t.retries}"
            assert t.retry_exponential_backoff, f"{dag_id}.{t.task_id} has no exponential backoff"
            assert t.retry_delay >= timedelta(seconds=10)


def test_every_task_has_a_timeout_and_a_failure_hook(dagbag: Any) -> None:
    from _georeset_common import notify_failure

    for dag_id, dag in dagbag.dags.items():
        for t in dag.tasks:
            assert t.execution_timeout is not None and t.execution_timeout > timedelta(0), f"{dag_id}.{t.task_id}"
            hooks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
            assert notify_failure in hooks, f"{dag_id}.{t.task_id} has no on-failure hook"


def test_failure_hook_posts_to_the_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    import http.server
    import threading
    from types import SimpleNamespace

    from _georeset_common import notify_failure

    got: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("GEORESET_ALERT_WEBHOOK", f"http://127.0.0.1:{srv.server_port}/hook")
        ti = SimpleNamespace(dag_id="geoparse", task_id="catalog_merge", map_index=-1, try_number=3, run_id="r1")
        notify_failure({"task_instance": ti, "exception": RuntimeError("disk full")})
        monkeypatch.setenv("GEORESET_ALERT_WEBHOOK", "http://127.0.0.1:9/down")
        notify_failure({"task_instance": ti, "exception": RuntimeError("again")})  # a dead webhook: no raise
    finally:
        srv.shutdown()
    assert len(got) == 1
    text = json.loads(got[0])["text"]
    assert "catalog_merge" in text and "disk full" in text


def test_catalogue_tasks_commit_without_a_writer_pool(dagbag: Any) -> None:
    for dag_id, writers in CATALOGUE_TASKS.items():
        dag = dagbag.dags[dag_id]
        tasks = {t.task_id: t for t in dag.tasks}
        assert writers <= set(tasks), (dag_id, writers - set(tasks))
        for t in dag.tasks:
            assert t.pool != WRITER, f"{dag_id}.{t.task_id} still waits on the old single-writer pool"


def test_harvests_are_mapped_time_scheduled_and_rate_limited(dagbag: Any) -> None:
    for dag_id in ("harvest_osm", "harvest_wikipedia"):
        dag = dagbag.dags[dag_id]
        assert type(dag.timetable).__name__ in {"CronTriggerTimetable", "CronDataIntervalTimetable"}
        mapped = [t for t in dag.tasks if _is_mapped(t)]
        assert [t.task_id for t in mapped] == ["harvest_tiles"]
    assert dagbag.dags["harvest_wikipedia"].get_task("harvest_tiles").pool == "mediawiki_api"
    assert {"areas", "pbfs"} <= set(dagbag.dags["harvest_osm"].params)
    assert {"areas", "langs"} <= set(dagbag.dags["harvest_wikipedia"].params)


def test_assets_chain_the_dags(dagbag: Any) -> None:
    from _georeset_common import DOCUMENTS, EVALUATIONS, MODELS, PAIRS, SHARDS, TOPONYMS

    def outlets(dag_id: str) -> set[str]:
        return {a.name for t in dagbag.dags[dag_id].tasks for a in t.outlets}

    def scheduled_on(dag_id: str) -> set[str]:
        cond = getattr(dagbag.dags[dag_id].timetable, "asset_condition", None)
        return {a.name for a in getattr(cond, "objects", ())}

    chain = [("harvest_osm", DOCUMENTS, "geoparse"), ("harvest_wikipedia", DOCUMENTS, "geoparse"),
             ("geoparse", TOPONYMS, "pair_imagery"), ("pair_imagery", PAIRS, "build_shards"),
             ("build_shards", SHARDS, "train_encoder"), ("train_encoder", MODELS, "evaluate")]
    for producer, asset, consumer in chain:
        assert asset.name in outlets(producer), f"{producer} does not emit {asset.name}"
        assert asset.name in scheduled_on(consumer), f"{consumer} is not scheduled on {asset.name}"
    assert EVALUATIONS.name in outlets("evaluate")
    sample = outlets("georeset_sample_world")
    assert sample and not sample & {a.name for a in (DOCUMENTS, TOPONYMS, PAIRS, SHARDS, MODELS)}


def test_params_have_schemas_and_valid_defaults(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        dag.params.validate()  # defaults must validate (scheduled DAGs validate them at parse time)
        for name in dag.params:
            schema = dag.params.get_param(name).schema
            assert "type" in schema or "enum" in schema, f"{dag_id} Param {name!r} has no JSON-schema type"
    p = dagbag.dags["train_encoder"].params
    assert {"config", "snapshot", "nproc", "nnodes", "launcher"} <= set(p)
    assert p.get_param("launcher").schema["enum"] == ["local", "kubernetes"]
    p = dagbag.dags["pair_imagery"].params
    assert {"collections", "start_date", "end_date", "max_cloud", "gsd", "size"} <= set(p)


def test_pools_file_matches_the_dags(dagbag: Any) -> None:
    from _georeset_common import POOLS

    pools = json.loads((DAGS / "pools.json").read_text())
    assert {k: v["slots"] for k, v in pools.items()} == {k: v[0] for k, v in POOLS.items()}
    assert all(v["slots"] == 1 for v in pools.values())
    assert set(pools) == {"mediawiki_api", "overpass_api", "nominatim"}
    used = {t.pool for dag in dagbag.dags.values() for t in dag.tasks}
    assert used - {"default_pool"} <= set(pools), "a DAG uses a pool that dags/pools.json does not create"
