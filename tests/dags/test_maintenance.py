"""Catalogue lake maintenance: the ``catalog_maintenance`` DAG and ``georeset maintain`` run the same stage;
compaction and snapshot expiry keep every row, and the snapshot a shard names survives expiry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from georeset.data_catalog import connect
from georeset.data_catalog.lake import LakeSettings, attach, rows_at, upsert

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("run_dag_tests.py")
DDL = "CREATE TABLE lake.documents (doc_id VARCHAR, text VARCHAR, retrieved_at TIMESTAMP, content_hash VARCHAR)"


def _small_commits(work: Path, n: int = 6) -> list[int]:
    """A lake in ``work`` with ``n`` one-row commits (one small Parquet file each); a shard names commit 3."""
    con = connect(":memory:", extensions=())
    attach(con, LakeSettings.for_workdir(work))
    con.execute(DDL)
    con.execute("CALL lake.set_option('data_inlining_row_limit', 0)")
    snaps = [upsert(con, "documents", f"SELECT 'k{i}' AS doc_id, 'text {i}' AS text, TIMESTAMP '2024-01-01' AS "
                    f"retrieved_at, md5('{i}') AS content_hash", ["doc_id"]).snapshot_id for i in range(n)]
    con.close()
    (work / "shards").mkdir(parents=True, exist_ok=True)
    (work / "shards" / "manifest.json").write_text(json.dumps({"snapshot_id": "s1", "lake_snapshot_id": snaps[2]}))
    return snaps


def _lake_state(work: Path, keep: int) -> tuple[int, int, list[str]]:
    con = connect(":memory:", extensions=())
    attach(con, LakeSettings.for_workdir(work), read_only=True)
    rows = int(con.execute("SELECT count(DISTINCT doc_id) FROM lake.documents").fetchone()[0])  # type: ignore[index]
    files = len(con.execute("FROM ducklake_list_files('lake', 'documents')").fetchall())
    named = sorted(r[0] for r in rows_at(con, "documents", keep, columns="doc_id"))
    con.close()
    return rows, files, named


def _georeset(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "georeset.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_dag_is_scheduled_and_calls_the_stage() -> None:
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags")
    dag = bag.dags["catalog_maintenance"]
    assert type(dag.timetable).__name__ in {"CronTriggerTimetable", "CronDataIntervalTimetable"}
    assert [t.task_id for t in dag.tasks] == ["maintain"]
    assert {"workdir", "keep_days"} <= set(dag.params)
    assert "maintain_stage" in (REPO / "dags" / "catalog_maintenance.py").read_text()


@pytest.mark.slow
def test_maintenance_dag_compacts_expires_and_keeps_rows(tmp_path: Path) -> None:
    work = tmp_path / "work"
    snaps = _small_commits(work)
    _, files_before, _ = _lake_state(work, snaps[2])
    cmd = [sys.executable, str(RUNNER), "--no-retries", "--home", str(tmp_path / "home"), "--conf",
           json.dumps({"workdir": str(work), "keep_days": 0}), "catalog_maintenance"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    rows, files_after, named = _lake_state(work, snaps[2])
    assert rows == 6 and files_after < files_before
    assert named == ["k0", "k1", "k2"]  # the shard's snapshot still reproduces its rows


def test_cli_maintain_reports_and_keeps_rows(tmp_path: Path) -> None:
    work = tmp_path / "work"
    snaps = _small_commits(work)
    r = _georeset("maintain", "--workdir", str(work), "--keep-days", "0")
    assert r.returncode == 0, r.stderr
    report: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    docs = report["tables"]["documents"]
    assert docs["rows_before"] == docs["rows_after"] == 6 and docs["files_after"] < docs["files_before"]
    assert snaps[2] in report["snapshots_kept"] and snaps[3] in report["snapshots_expired"]
    again = json.loads(_georeset("maintain", "--workdir", str(work), "--keep-days", "0").stdout.splitlines()[-1])
    assert again["tables"]["documents"]["rows_after"] == 6 and snaps[2] not in again["snapshots_expired"]
    assert _lake_state(work, snaps[2])[2] == ["k0", "k1", "k2"]


def test_cli_maintain_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    r = _georeset("maintain", "--workdir", str(tmp_path / "empty"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--workdir" in r.stderr and "fix:" in r.stderr
    work = tmp_path / "work"
    _small_commits(work, 3)
    r = _georeset("maintain", "--workdir", str(work), "--keep-days", "-1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--keep-days" in r.stderr
    r = _georeset("maintain", "--workdir", str(work), env={"GEORESET_LAKE_KEEP_DAYS": "a month"})
    assert r.returncode == 2 and "GEORESET_LAKE_KEEP_DAYS" in r.stderr
    refused = {"GEORESET_LAKE_METADATA": "postgres:dbname=lake host=127.0.0.1 port=9 user=lake connect_timeout=2"}
    r = _georeset("maintain", "--workdir", str(work), env=refused)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "GEORESET_LAKE_METADATA" in r.stderr
    assert "start PostgreSQL" in r.stderr
    down = {"GEORESET_LAKE_DATA": "s3://lake/x/", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "GEORESET_LAKE_SCHEMA": ""}
    r = _georeset("maintain", "--workdir", str(work), env=down)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "AWS_ENDPOINT_URL" in r.stderr
