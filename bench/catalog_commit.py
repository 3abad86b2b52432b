#!/usr/bin/env python
"""Commit cost of one batch of new documents into a large catalogue: today's writer vs a DuckLake upsert.

    .venv/bin/python bench/catalog_commit.py                          # 1M documents in the catalogue, 100k batch
    .venv/bin/python bench/catalog_commit.py --base 200000 --batch 20000

Same synthetic documents (seeded DuckDB SQL: short texts from a 64-word vocabulary, points near Helsinki) for both:

- ``duckdb``: the catalogue as the stages commit today (``georeset.stages.writer.commit``): upsert of the staged
  Parquet batch into the DuckDB file (primary key, ``content_hash`` and ``retrieved_at`` guards), full BM25 rebuild,
  copy of the whole file to ``<db>.read.duckdb`` for readers; each part timed;
- ``ducklake``: the embedded DuckLake (``georeset.data_catalog.lake``, metadata + Parquet in the work directory)
  with :func:`~georeset.data_catalog.lake.upsert` of the same batch (dedup, changed rows replaced, claim row for
  concurrent writers). No BM25 here: in the lake design the BM25/HNSW indexes are a derived database rebuilt per
  snapshot, off the commit path, so this measures the commit only.

The base catalogue is loaded untimed. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = ("harbour street park church museum market square bridge station island school library hotel cafe "
         "restaurant tower garden beach forest lake river hill road avenue district centre theatre hall gallery "
         "stadium pier ferry bay cathedral chapel castle fortress monument statue fountain plaza tram bus metro "
         "airport hospital university college office factory warehouse shop mall cinema bar pub club gym pool "
         "court palace villa manor").split()


def _docs_sql(lo: int, hi: int, seed: int) -> str:
    words = "[" + ", ".join(f"'{w}'" for w in WORDS) + "]"
    return f"""
    SELECT 'file:doc/' || i AS doc_id, 'file' AS source, 'doc/' || i AS source_id, 'document ' || i AS title,
           list_aggregate(list_transform(range(12), k -> {words}[1 + (hash(i * 31 + k + {seed}) % {len(WORDS)})::INT]),
                          'string_agg', ' ') AS text,
           NULL::VARCHAR AS lang, NULL::VARCHAR AS url,
           24.6 + (hash(i + 1) % 100000) / 100000.0 * 0.8 AS lon, 60.0 + (hash(i + 2) % 100000) / 100000.0 * 0.4 AS lat,
           NULL::VARCHAR AS tags, 'CC0-1.0' AS licence, TIMESTAMP '2024-01-01' + INTERVAL (i % 1000) SECOND AS retrieved_at,
           md5('doc' || i || '{seed}') AS content_hash
    FROM range({lo}, {hi}) t(i)"""


def _write_parquet(con: Any, sql: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({sql}) TO '{path.as_posix()}' (FORMAT parquet)")


def bench_duckdb(root: Path, base: Path, batch: Path) -> dict[str, Any]:
    from georeset.data_catalog import staging
    from georeset.data_catalog.publish import publish
    from georeset.data_catalog.search import rebuild_fts
    from georeset.stages import writer
    from georeset.workspace import Workspace

    ws = Workspace.at(root)
    con = writer.open_writer(ws)
    try:
        staging.merge_files(con, {"documents": [base]})  # untimed: the existing catalogue
        rebuild_fts(con)
        publish(ws.db_path, con)
        t0 = time.perf_counter()
        r = staging.merge_files(con, {"documents": [batch]})["documents"]
        t1 = time.perf_counter()
        rebuild_fts(con)
        t2 = time.perf_counter()
        publish(ws.db_path, con)
        t3 = time.perf_counter()
        total = int(con.execute("SELECT count(*) FROM documents").fetchone()[0])
    finally:
        con.close()
    return {"merge_s": round(t1 - t0, 2), "bm25_rebuild_s": round(t2 - t1, 2), "publish_copy_s": round(t3 - t2, 2),
            "commit_s": round(t3 - t0, 2), "inserted": r.inserted, "rows_after": total,
            "db_bytes": ws.db_path.stat().st_size}


def bench_ducklake(root: Path, base: Path, batch: Path) -> dict[str, Any]:
    from georeset.data_catalog import connect
    from georeset.data_catalog.lake import LakeSettings, attach, upsert

    con = connect(":memory:")
    try:
        attach(con, LakeSettings.for_workdir(root, env={}))
        con.execute("CREATE TABLE lake.documents (doc_id VARCHAR NOT NULL, source VARCHAR, source_id VARCHAR, "
                    "title VARCHAR, text VARCHAR, lang VARCHAR, url VARCHAR, lon DOUBLE, lat DOUBLE, geom GEOMETRY, "
                    "tags JSON, licence VARCHAR, retrieved_at TIMESTAMP, content_hash VARCHAR)")
        src = ("SELECT *, ST_Point(lon, lat) AS geom FROM read_parquet('{}')")
        con.execute(f"INSERT INTO lake.documents BY NAME {src.format(base.as_posix())}")  # untimed
        t0 = time.perf_counter()
        r = upsert(con, "documents", src.format(batch.as_posix()), ["doc_id"])
        t1 = time.perf_counter()
        total = int(con.execute("SELECT count(*) FROM lake.documents").fetchone()[0])
    finally:
        con.close()
    return {"commit_s": round(t1 - t0, 2), "inserted": r.inserted, "rows_after": total, "snapshot_id": r.snapshot_id}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=1_000_000, help="documents already in the catalogue")
    ap.add_argument("--batch", type=int, default=100_000, help="new documents committed in one batch")
    args = ap.parse_args(argv)
    import duckdb

    with tempfile.TemporaryDirectory(prefix="georeset-bench-commit-") as tmp:
        t = Path(tmp)
        gen = duckdb.connect()
        base, batch = t / "in" / "base.parquet", t / "in" / "batch.parquet"
        _write_parquet(gen, _docs_sql(0, args.base, 0), base)
        _write_parquet(gen, _docs_sql(args.base, args.base + args.batch, 1), batch)
        gen.close()
        old = bench_duckdb(t / "duckdb", base, batch)
        lake = bench_ducklake(t / "ducklake", base, batch)
    out = {"bench": "catalog_commit", "base_docs": args.base, "batch_docs": args.batch, "duckdb": old,
           "ducklake": lake, "speedup_commit": round(old["commit_s"] / max(lake["commit_s"], 1e-9), 1),
           "load_avg_1m": round(os.getloadavg()[0], 1), "cpus": os.cpu_count()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
