"""Four worker processes commit their own partitions through the real commit path (georeset.stages.writer.commit)
into one catalogue lake on PostgreSQL + S3, at the same time; two harvest tiles share documents. 0 duplicates,
0 lost, every partition's commit lands (conflicting commits retry). The same on the embedded default (SQLite
metadata in the workdir): this is why the DAGs' commit tasks need no writer pool."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from georeset.stages import writer
from georeset.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
from lake_servers import backend_env  # noqa: E402

WORKERS, PER_TILE, SHARED = 4, 150, 50  # tile i: documents 100*i .. 100*i+149 -> 50 shared with tile i+1
WORKER = """
import datetime as dt, json, sys
from georeset.data_catalog import staging
from georeset.pipelines.harvest._common import document_row
from georeset.stages import writer
from georeset.workspace import Workspace
ws = Workspace.at(sys.argv[1])
i = int(sys.argv[2])
rows = [document_row(source="file", source_id=f"d/{x}", title=f"doc {x}", text=f"harbour text {x}",
                     lon=24.9 + x * 1e-5, lat=60.17, licence="CC0-1.0", retrieved_at=dt.datetime(2024, 3, 1))
        for x in range(i * 100, i * 100 + 150)]
name = f"tile-{i}"
staging.stage(rows, table="documents", staging_dir=ws.staging_dir, name=name)
print(json.dumps(writer.commit(ws, ["documents"], names=[name])["documents"]))
"""


@pytest.fixture(params=["embedded", "postgres+s3"])
def lake_env(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    with backend_env(request.param, "writers") as env:
        yield request.param, env


@pytest.mark.slow
def test_workers_commit_their_own_partitions_concurrently(lake_env: tuple[str, dict[str, str]], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, env = lake_env
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    work = tmp_path / "work"
    writer.write(Workspace.at(work), lambda con: None)  # the catalogue exists before the workers start
    run = [sys.executable, "-c", WORKER, str(work)]
    penv = {**os.environ, **env}
    procs = [subprocess.Popen([*run, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=penv)
             for i in range(WORKERS)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        outs.append((p.returncode, out, err))
    for rc, _, err in outs:
        assert rc == 0, err[-3000:]
    con = writer.open_writer(Workspace.at(work))
    try:
        n, distinct = con.execute("SELECT count(*), count(DISTINCT source_id) FROM documents").fetchone()  # type: ignore[misc]
        keys = {r[0] for r in con.execute("SELECT source_id FROM documents").fetchall()}
    finally:
        con.close()
    expected = {f"d/{x}" for x in range((WORKERS - 1) * 100 + PER_TILE)}
    assert n == distinct == len(expected)  # 0 duplicates
    assert keys == expected  # 0 lost
    assert not list((work / "staging" / "documents").glob("*.parquet"))  # every partition's commit landed
