"""Four writers whose inputs overlap commit into one lake at the same time: 0 duplicates, 0 rows lost.

The same test on the embedded default (SQLite metadata + Parquet in the workdir: four writer processes, SQLite
makes them take turns and DuckLake's conflicts make overlapping ones retry) and on PostgreSQL metadata + S3 data
(four writer processes; a real PostgreSQL and a moto S3 server on 127.0.0.1, the settings
passed as the environment a worker would have). Writer ``i`` upserts keys ``100*i .. 100*i+199`` in
five batches, so each key range is written by two writers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from georeset.data_catalog import connect
from georeset.data_catalog.lake import LakeSettings, attach, upsert

sys.path.insert(0, str(Path(__file__).parent))
from lake_servers import backend_env  # noqa: E402

WRITERS, PER_WRITER, STEP, BATCHES = 4, 200, 100, 5
DDL = ("CREATE TABLE lake.documents (doc_id VARCHAR NOT NULL, text VARCHAR, retrieved_at TIMESTAMP, "
       "content_hash VARCHAR)")
WRITER = """
import sys
from georeset.data_catalog import connect
from georeset.data_catalog.lake import LakeSettings, attach
sys.path.insert(0, sys.argv[3])
from test_lake_concurrency import write
con = connect(':memory:')
attach(con, LakeSettings.for_workdir(sys.argv[1]))
print(write(con, int(sys.argv[2])))
"""


def write(con, i: int) -> int:  # type: ignore[no-untyped-def]
    """Writer ``i``: its key range in BATCHES upserts; returns the attempts it needed in all."""
    src = (f"SELECT 'd' || lpad(x::VARCHAR, 6, '0') AS doc_id, 'text ' || x AS text, "
           f"TIMESTAMP '2024-01-01' AS retrieved_at, md5('text ' || x) AS content_hash "
           f"FROM range({i * STEP}, {i * STEP + PER_WRITER}) t(x)")
    return sum(upsert(con, "documents", f"{src} WHERE x % {BATCHES} = {b}", ["doc_id"]).attempts
               for b in range(BATCHES))


@pytest.fixture(params=["embedded", "postgres+s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with backend_env(request.param, "concurrency") as env:
        yield request.param, env


@pytest.mark.slow
def test_four_overlapping_writers_leave_no_duplicates_and_lose_nothing(backend: tuple[str, dict[str, str]],
                                                                       tmp_path: Path) -> None:
    kind, env = backend
    settings = LakeSettings.for_workdir(tmp_path, env=env)
    con = connect(":memory:")
    try:
        attach(con, settings)
        con.execute(DDL)
        attempts: list[int] = []
        if kind == "embedded-threads":  # (DuckDB-file metadata: one process, four threads; SQLite metadata, the
            # embedded default, takes four writer processes like PostgreSQL)
            errors: list[BaseException] = []

            def run(i: int) -> None:
                try:
                    attempts.append(write(con.cursor(), i))
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
        else:
            procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(i), str(Path(__file__).parent)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, **env}) for i in range(WRITERS)]
            for p in procs:
                out, err = p.communicate(timeout=600)
                assert p.returncode == 0, err[-3000:]
                attempts.append(int(out.strip().splitlines()[-1]))
        n, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM lake.documents").fetchone()  # type: ignore[misc]
        keys = {r[0] for r in con.execute("SELECT doc_id FROM lake.documents").fetchall()}
    finally:
        con.close()
    expected = {f"d{x:06d}" for x in range((WRITERS - 1) * STEP + PER_WRITER)}
    assert n == distinct == len(expected)  # 0 duplicates
    assert keys == expected  # 0 lost
    assert sum(attempts) >= WRITERS * BATCHES
    print(f"\n{kind}: {WRITERS} writers, {sum(attempts)} commit attempts for {WRITERS * BATCHES} commits")
