#!/usr/bin/env python
"""Four writer processes committing into one lake on PostgreSQL metadata + S3 data vs one serialised writer.

    .venv/bin/python bench/lake_concurrency.py                    # 4 writers x 5 batches x 20k rows
    .venv/bin/python bench/lake_concurrency.py --writers 4 --batches 5 --rows 20000

Starts a real PostgreSQL and a moto S3 server on 127.0.0.1 (tests/data_catalog/lake_servers.py: Debian's
postgresql, ``.venv-s3`` from scripts/setup.sh). The same batches both ways: writer ``i`` owns keys
``i*rows*batches/2 .. +rows*batches`` (each key range shared by two writers, as two harvest tiles sharing
documents), cut into ``batches`` partitions; every batch is one :func:`georeset.data_catalog.lake.upsert` (one
commit). ``serial``: one process commits all batches in turn; ``concurrent``: one process per writer, all at once.
Reports wall time, rows/s (distinct rows landed / wall), commit attempts (conflicts retried), lost and duplicated
keys. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "data_catalog")]

DDL = ("CREATE TABLE IF NOT EXISTS lake.documents (doc_id VARCHAR, title VARCHAR, text VARCHAR, lon DOUBLE, lat DOUBLE, "
       "retrieved_at TIMESTAMP, content_hash VARCHAR)")


def batch_sql(writer: int, batch: int, rows: int, batches: int) -> str:
    span = rows * batches
    lo = writer * span // 2
    return (f"SELECT 'doc/' || x AS doc_id, 'document ' || x AS title, repeat('harbour street ', 8) || x AS text, "
            f"24.9 + (x % 1000) / 10000.0 AS lon, 60.1 + (x % 997) / 10000.0 AS lat, TIMESTAMP '2024-01-01' AS "
            f"retrieved_at, md5(x::VARCHAR) AS content_hash FROM range({lo}, {lo + span}) t(x) "
            f"WHERE x % {batches} = {batch}")


def write(jobs: list[tuple[int, int]], rows: int, batches: int) -> dict[str, int]:
    """Commit ``jobs`` (writer, batch) in turn into the lake of the environment's settings."""
    from georeset.data_catalog import connect
    from georeset.data_catalog.lake import LakeSettings, attach, upsert

    con = connect(":memory:", extensions=())
    attach(con, LakeSettings.for_workdir(os.environ["BENCH_WORKDIR"]))
    attempts = 0
    for w, b in jobs:
        attempts += upsert(con, "documents", batch_sql(w, b, rows, batches), ["doc_id"]).attempts
    con.close()
    return {"attempts": attempts, "commits": len(jobs)}


def _spawn(jobs: list[tuple[int, int]], args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(jobs), "--rows", str(args.rows),
                             "--batches", str(args.batches)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _finish(procs: list[subprocess.Popen[str]]) -> list[dict[str, int]]:
    out = []
    for p in procs:
        so, se = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(se[-3000:])
        out.append(json.loads(so.strip().splitlines()[-1]))
    return out


def _check(env: dict[str, str], expected: int) -> dict[str, int]:
    from georeset.data_catalog import connect
    from georeset.data_catalog.lake import LakeSettings, attach

    con = connect(":memory:", extensions=())
    attach(con, LakeSettings.for_workdir(env["BENCH_WORKDIR"], env=env), read_only=True)
    n, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM lake.documents").fetchone()  # type: ignore[misc]
    con.close()
    return {"rows": int(n), "duplicates": int(n) - int(distinct), "lost": expected - int(distinct)}


def _prepare(env: dict[str, str]) -> None:
    from georeset.data_catalog import connect
    from georeset.data_catalog.lake import LakeSettings, attach

    con = connect(":memory:", extensions=())
    attach(con, LakeSettings.for_workdir(env["BENCH_WORKDIR"], env=env))
    con.execute(DDL)
    con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--batches", type=int, default=5, help="commits per writer")
    ap.add_argument("--rows", type=int, default=20_000, help="rows per commit")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(write([tuple(j) for j in json.loads(args.worker)], args.rows, args.batches)))
        return 0
    from lake_servers import postgres_server, s3_server

    span = args.rows * args.batches
    expected = (args.writers - 1) * span // 2 + span
    jobs = [[(w, b) for b in range(args.batches)] for w in range(args.writers)]
    out: dict[str, Any] = {"bench": "lake_concurrency", "backend": "postgres+s3 (moto) on 127.0.0.1",
                           "writers": args.writers, "commits_per_writer": args.batches, "rows_per_commit": args.rows,
                           "distinct_keys": expected}
    with postgres_server() as dsn, s3_server() as s3:
        for mode in ("serial", "concurrent"):
            env = {**os.environ, **s3.env(mode), "GEORESET_LAKE_METADATA": f"postgres:{dsn}",
                   "GEORESET_LAKE_SCHEMA": f"bench_{mode}", "BENCH_WORKDIR": f"/tmp/bench-{mode}",
                   "PYTHONPATH": str(REPO)}
            _prepare(env)
            t0 = time.perf_counter()
            if mode == "serial":
                res = _finish([_spawn([j for js in jobs for j in js], args, env)])
            else:
                res = _finish([_spawn(js, args, env) for js in jobs])
            wall = time.perf_counter() - t0
            check = _check(env, expected)
            out[mode] = {"wall_s": round(wall, 2), "rows_per_s": round((expected - check["lost"]) / wall),
                         "commit_attempts": sum(r["attempts"] for r in res),
                         "commits": sum(r["commits"] for r in res), **check}
    out["speedup_concurrent_over_serial"] = round(out["serial"]["wall_s"] / out["concurrent"]["wall_s"], 2)
    out["cpus"], out["load_avg_1m"] = os.cpu_count(), round(os.getloadavg()[0], 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
