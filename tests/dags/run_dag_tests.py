"""Run ``dag.test()`` for one or more DAGs in a fresh Airflow home (a subprocess of the tests, or by hand).

    python tests/dags/run_dag_tests.py --home DIR --conf '{"workdir": "...", ...}' georeset_sample_world [more ids]

Airflow reads its configuration when first imported, so the environment (AIRFLOW_HOME, DAGS_FOLDER, SQLite) is set
before the import; the metadata DB is created and the pools of ``dags/pools.json`` are set. Prints one line ``RESULT <json>``
per DAG: ``{"dag_id", "state", "seconds", "tasks": {task_id[map_index]: state}}``; exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


def configure(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def create_pools() -> dict[str, int]:
    from airflow.models.pool import Pool

    pools = json.loads((DAGS / "pools.json").read_text())
    for name, spec in pools.items():
        Pool.create_or_update_pool(name, int(spec["slots"]), spec["description"], bool(spec["include_deferred"]))
    return {name: int(spec["slots"]) for name, spec in pools.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--conf", default="{}", help="run_conf (JSON) for every DAG")
    ap.add_argument("--conf-for", action="append", default=[], metavar="DAG_ID=JSON",
                    help="extra run_conf for one DAG, merged over --conf")
    ap.add_argument("--no-retries", action="store_true", help="fail fast: retries=0 for every task")
    ap.add_argument("dag_ids", nargs="+")
    args = ap.parse_args(argv)
    configure(args.home.resolve())

    t0 = time.perf_counter()
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db

    db.initdb()
    create_pools()
    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)
    if bag.import_errors:
        print("RESULT " + json.dumps({"import_errors": bag.import_errors}), flush=True)
        return 1
    print("RESULT " + json.dumps({"setup_seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    base = json.loads(args.conf)
    per_dag = {k: json.loads(v) for k, v in (c.split("=", 1) for c in args.conf_for)}
    ok = True
    for dag_id in args.dag_ids:
        dag = bag.get_dag(dag_id)
        if args.no_retries:
            for t in dag.tasks:
                t.retries = 0
        conf = {k: v for k, v in {**base, **per_dag.get(dag_id, {})}.items() if k in dag.params}
        t = time.perf_counter()
        run = dag.test(run_conf=conf)
        tasks = {(ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else "")): str(ti.state)
                 for ti in run.get_task_instances()}
        state = str(run.state)
        ok &= state.endswith("success")
        print("RESULT " + json.dumps({"dag_id": dag_id, "state": state, "seconds": round(time.perf_counter() - t, 1),
                          "tasks": tasks}), flush=True)
    print("RESULT " + json.dumps({"asset_events": asset_events()}, default=str), flush=True)
    return 0 if ok else 1


def asset_events() -> list[dict[str, object]]:
    """Every asset event recorded in the metadata DB: asset name and the event's metadata (extra)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        rows = s.execute(select(AssetModel.name, AssetEvent.extra)
                         .join(AssetModel, AssetModel.id == AssetEvent.asset_id).order_by(AssetEvent.id)).all()
    return [{"asset": name, "extra": extra} for name, extra in rows]


if __name__ == "__main__":
    sys.exit(main())
