#!/usr/bin/env python
"""An analyst query's latency while a writer commits vs idle, on the lake (PostgreSQL metadata + S3 data).

    .venv/bin/python bench/analyst_latency.py                     # 200k documents, 40 queries per phase
    .venv/bin/python bench/analyst_latency.py --docs 200000 --queries 40 --batch 20000

Starts a real PostgreSQL and a moto S3 server on 127.0.0.1 (tests/data_catalog/lake_servers.py), loads ``--docs``
documents, then times the same analyst query (a text filter + spatial-ish aggregate over ``documents``) from a
reader process that attaches the lake READ_ONLY, ``--queries`` times: first with no writer ("idle"), then while a
writer process commits ``--batch``-row upserts in a loop ("writing"). Readers never wait on writers: each query
reads the snapshot current when it starts. Reports median and p95 per phase, the ratio, the commits the writer
landed during the phase and the snapshots the reader saw. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "data_catalog")]

QUERY = ("SELECT count(*) AS n, round(avg(lon), 4) AS lon FROM lake.documents "
         "WHERE text LIKE '%harbour%' AND lat BETWEEN 60.1 AND 60.2")


def _rows(lo: int, hi: int) -> str:
    return (f"SELECT 'doc/' || x AS doc_id, 'document ' || x AS title, "
            f"CASE WHEN x % 3 = 0 THEN 'harbour ' ELSE 'street ' END || repeat('text ', 10) || x AS text, "
            f"24.9 + (x % 1000) / 10000.0 AS lon, 60.1 + (x % 997) / 10000.0 AS lat, "
            f"TIMESTAMP '2024-01-01' AS retrieved_at, md5(x::VARCHAR) AS content_hash FROM range({lo}, {hi}) t(x)")


def _attach(read_only: bool) -> Any:
    from georeset.data_catalog import connect
    from georeset.data_catalog.lake import LakeSettings, attach

    con = connect(":memory:", extensions=())
    attach(con, LakeSettings.for_workdir("/tmp/bench-analyst"), read_only=read_only)
    return con


def reader(n: int) -> dict[str, Any]:
    con = _attach(True)
    times, snaps = [], set()
    for _ in range(n):
        t0 = time.perf_counter()
        con.execute(QUERY).fetchall()
        times.append(time.perf_counter() - t0)
        snaps.add(int(con.execute("FROM lake.current_snapshot()").fetchone()[0]))
    con.close()
    return {"times": times, "snapshots_seen": len(snaps)}


def writer(start: int, batch: int, stop_file: str) -> dict[str, int]:
    from georeset.data_catalog.lake import upsert

    con = _attach(False)
    commits, lo = 0, start
    while not os.path.exists(stop_file):
        upsert(con, "documents", _rows(lo, lo + batch), ["doc_id"])
        lo += batch
        commits += 1
    con.close()
    return {"commits": commits}


def _run(role: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--role", role, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _result(p: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = p.communicate(timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(err[-3000:])
    return dict(json.loads(out.strip().splitlines()[-1]))


def _stats(times: list[float]) -> dict[str, float]:
    s = sorted(times)
    return {"median_ms": round(statistics.median(s) * 1000, 1),
            "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))] * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--batch", type=int, default=20_000, help="rows per writer commit")
    ap.add_argument("--role", default=None, help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.role == "reader":
        print(json.dumps(reader(int(a.args[0]))))
        return 0
    if a.role == "writer":
        print(json.dumps(writer(int(a.args[0]), int(a.args[1]), a.args[2])))
        return 0
    from lake_servers import postgres_server, s3_server

    out: dict[str, Any] = {"bench": "analyst_latency", "backend": "postgres+s3 (moto) on 127.0.0.1", "docs": a.docs,
                           "queries_per_phase": a.queries, "writer_batch": a.batch, "query": QUERY}
    stop = f"/tmp/bench-analyst-stop-{os.getpid()}"
    with postgres_server() as dsn, s3_server() as s3:
        env = {**os.environ, **s3.env("analyst"), "GEORESET_LAKE_METADATA": f"postgres:{dsn}",
               "GEORESET_LAKE_SCHEMA": "", "PYTHONPATH": str(REPO)}
        os.environ.update(env)
        con = _attach(False)
        con.execute("CREATE TABLE lake.documents (doc_id VARCHAR, title VARCHAR, text VARCHAR, lon DOUBLE, "
                    "lat DOUBLE, retrieved_at TIMESTAMP, content_hash VARCHAR)")
        con.execute(f"INSERT INTO lake.documents {_rows(0, a.docs)}")
        con.close()
        idle = _result(_run("reader", str(a.queries), env=env))
        w = _run("writer", str(a.docs), str(a.batch), stop, env=env)
        time.sleep(1.0)  # let the writer start committing
        busy = _result(_run("reader", str(a.queries), env=env))
        Path(stop).touch()
        wres = _result(w)
        Path(stop).unlink(missing_ok=True)
    out["idle"] = {**_stats(idle["times"]), "snapshots_seen": idle["snapshots_seen"]}
    out["writing"] = {**_stats(busy["times"]), "snapshots_seen": busy["snapshots_seen"],
                      "writer_commits": wres["commits"]}
    out["median_ratio_writing_over_idle"] = round(out["writing"]["median_ms"] / max(out["idle"]["median_ms"], 1e-9), 2)
    out["p95_ratio_writing_over_idle"] = round(out["writing"]["p95_ms"] / max(out["idle"]["p95_ms"], 1e-9), 2)
    out["cpus"], out["load_avg_1m"] = os.cpu_count(), round(os.getloadavg()[0], 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
