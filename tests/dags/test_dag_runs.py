"""End to end with ``dag.test()`` in a fresh Airflow home (SQLite): the sample-world DAG on the tiny world, then
the production chain (harvest_osm -> geoparse -> pair_imagery -> build_shards -> train_encoder -> evaluate) on the
same work directory. Runs in a subprocess, because Airflow's configuration is fixed at its first import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

RUNNER = Path(__file__).with_name("run_dag_tests.py")
CHAIN = ["harvest_osm", "geoparse", "pair_imagery", "build_shards", "train_encoder", "evaluate"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("dag_runs")
    work = base / "work"
    conf = {"workdir": str(work), "scale": "tiny", "steps": 2, "nproc": 1}
    cmd = [sys.executable, str(RUNNER), "--no-retries", "--home", str(base / "airflow_home"), "--conf",
           json.dumps(conf),
           # more of the extract than the sample-world DAG harvested (500 docs), in 4 tiles / 2 mapped tasks, so
           # every downstream DAG has new rows to process and a new shard snapshot is published
           "--conf-for", 'harvest_osm={"tile_deg": 0.01, "tiles_per_batch": 2, "max_docs_per_tile": 150}',
           "georeset_sample_world", *CHAIN]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=base)
    wall = time.perf_counter() - t0
    lines = [json.loads(x[len("RESULT "):]) for x in r.stdout.splitlines() if x.startswith("RESULT {")]
    assert r.returncode == 0, (r.stdout[-6000:] + r.stderr[-3000:])
    out = {d["dag_id"]: d for d in lines if "dag_id" in d}
    events = next(d["asset_events"] for d in lines if "asset_events" in d)
    print("\n" + "; ".join(f"{k}: {v['seconds']} s" for k, v in out.items()) + f"; subprocess wall {wall:.0f} s")
    return {"runs": out, "events": events, "work": work}


@pytest.mark.slow
def test_sample_world_dag_runs_end_to_end(runs: dict[str, Any]) -> None:
    r = runs["runs"]["georeset_sample_world"]
    assert r["state"].endswith("success")
    assert all(s.endswith("success") for s in r["tasks"].values()), r["tasks"]
    work = runs["work"]
    from georeset.data_catalog.lake import LakeSettings

    meta = LakeSettings.for_workdir(work).metadata_file  # the catalogue lake (None: on a server)
    assert (meta is None or meta.is_file()) and (work / "shards" / "manifest.json").is_file()
    assert (work / "index" / "search.duckdb").is_file()  # the derived search index, built by the DAG's commits
    assert list((work / "runs").glob("*/checkpoint.pt"))
    names = [e["asset"] for e in runs["events"]]
    assert "georeset_sample_world_shards" in names


@pytest.mark.slow
def test_asset_chain_runs_and_events_carry_metadata(runs: dict[str, Any]) -> None:
    for dag_id in CHAIN:
        r = runs["runs"][dag_id]
        assert r["state"].endswith("success"), (dag_id, r["tasks"])
    assert sum(k.startswith("harvest_tiles[") for k in runs["runs"]["harvest_osm"]["tasks"]) == 2
    assert any(k.startswith("parse_batch[") for k in runs["runs"]["geoparse"]["tasks"])
    ev: dict[str, dict[str, Any]] = {}
    for e in runs["events"]:
        ev[e["asset"]] = e["extra"]  # the last event of each asset
    docs = ev["georeset_documents"]
    assert docs["source"] == "osm" and docs["inserted"] > 0 and docs["total"] > 500
    assert docs["workdir"] == str(runs["work"])
    assert ev["georeset_toponyms"]["documents_parsed"] > 0
    assert ev["georeset_pairs"]["pairs"] > 0
    shards = ev["georeset_shards_snapshot"]
    assert shards["new"] if "new" in shards else shards["snapshot_id"] != shards["previous_snapshot_id"]
    model = ev["georeset_encoder_checkpoint"]
    assert model["snapshot_id"] == shards["snapshot_id"] and model["reused"] is False
    assert Path(model["checkpoint"]).is_file()
    assert ev["georeset_encoder_evaluation"]["run_id"] == model["run_id"]
    # the runs row holds the training summary and the evaluation
    from georeset.data_catalog import open_lake

    con = open_lake(runs["work"], read_only=True, extensions=())
    try:
        row = con.execute("SELECT snapshot_id, metrics FROM runs WHERE run_id = ?", [model["run_id"]]).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] == shards["snapshot_id"] and "evaluation" in json.loads(row[1])
