#!/usr/bin/env python
"""Commit cost of one batch of new documents into catalogues of growing size: the old single-file path vs a
DuckLake commit, side by side in one run on the same documents.

    .venv/bin/python bench/catalog_commit.py --sizes 1000000                 # 1M in the catalogue, 100k batch
    .venv/bin/python bench/catalog_commit.py --sizes 1000000,10000000 --out results.json
    bash bench/device_catalog.sh WHEELS_DIR                                  # 1M and 10M on a bigger machine

Needs only duckdb and its extension wheels (spatial, fts, ducklake) plus ``georeset.data_catalog.lake`` (which
imports only duckdb). Same synthetic documents for both (seeded DuckDB SQL: short texts from a 64-word
vocabulary, points near Helsinki; the batch is all new documents):

- ``old`` (the peer, kept inline here as the stages committed before the lake): one DuckDB catalogue file with a
  ``doc_id`` PRIMARY KEY; ``INSERT ... ON CONFLICT DO UPDATE`` with the ``content_hash``/``retrieved_at`` guards,
  CHECKPOINT; full BM25 rebuild (``PRAGMA create_fts_index ... overwrite``), CHECKPOINT; copy of the whole file to
  ``<db>.read.duckdb`` for readers. Each part timed.
- ``ducklake``: an embedded DuckLake (metadata file + Parquet) and :func:`georeset.data_catalog.lake.upsert` of the
  same batch (dedup on the key, changed rows replaced, the claim row that makes overlapping writers conflict). In
  the lake design the BM25/HNSW indexes are a derived database built per snapshot off the commit path, and readers
  read snapshots, so there is no copy; ``--with-index`` also times a full BM25 build of the new snapshot into a
  separate index file, for the whole picture.

The base catalogue is loaded untimed. Prints one JSON object (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
COLUMNS = ("doc_id VARCHAR{pk}, source VARCHAR, source_id VARCHAR, title VARCHAR, text VARCHAR, lang VARCHAR, "
           "url VARCHAR, lon DOUBLE, lat DOUBLE, geom GEOMETRY, tags JSON, licence VARCHAR, retrieved_at TIMESTAMP, "
           "content_hash VARCHAR")


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


def _src(path: Path) -> str:
    return f"SELECT * EXCLUDE (tags), tags::JSON AS tags, ST_Point(lon, lat) AS geom FROM read_parquet('{path.as_posix()}')"


def _connect(path: str, extensions: tuple[str, ...], threads: int) -> Any:
    from georeset.data_catalog.connect import connect

    con = connect(path, extensions=extensions)
    if threads:
        con.execute(f"SET threads = {threads}")
    return con


def _fts(con: Any) -> None:
    con.execute("PRAGMA create_fts_index('documents', 'doc_id', 'title', 'text', stemmer = 'english', "
                "stopwords = 'english', strip_accents = 1, lower = 1, overwrite = 1)")


def bench_old(root: Path, base: Path, batch: Path, threads: int) -> dict[str, Any]:
    """The single-file catalogue: guarded upsert, full BM25 rebuild, copy for readers."""
    root.mkdir(parents=True)
    db, read = root / "georeset.duckdb", root / "georeset.read.duckdb"
    con = _connect(str(db), ("spatial", "fts"), threads)
    try:
        con.execute(f"CREATE TABLE documents ({COLUMNS.format(pk=' PRIMARY KEY')})")
        con.execute(f"INSERT INTO documents BY NAME {_src(base)}")  # untimed: the existing catalogue
        _fts(con)
        con.execute("CHECKPOINT")
        shutil.copyfile(db, read)
        cols = [r[0] for r in con.execute("DESCRIBE documents").fetchall() if r[0] != "doc_id"]
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
        t0 = time.perf_counter()
        cur = con.execute(f"INSERT INTO documents BY NAME {_src(batch)} ON CONFLICT (doc_id) DO UPDATE SET {sets} "
                          "WHERE documents.content_hash IS DISTINCT FROM excluded.content_hash "
                          "AND excluded.retrieved_at >= documents.retrieved_at")
        written = int(cur.fetchone()[0])
        con.execute("CHECKPOINT")
        t1 = time.perf_counter()
        _fts(con)
        con.execute("CHECKPOINT")
        t2 = time.perf_counter()
        shutil.copyfile(db, read.with_suffix(".tmp"))  # the publish: copy, then atomic rename over the old copy
        os.replace(read.with_suffix(".tmp"), read)
        t3 = time.perf_counter()
        total = int(con.execute("SELECT count(*) FROM documents").fetchone()[0])
    finally:
        con.close()
    return {"merge_s": round(t1 - t0, 2), "bm25_rebuild_s": round(t2 - t1, 2), "publish_copy_s": round(t3 - t2, 2),
            "commit_s": round(t3 - t0, 2), "written": written, "rows_after": total, "db_bytes": db.stat().st_size}


def bench_lake(root: Path, base: Path, batch: Path, threads: int, with_index: bool) -> dict[str, Any]:
    from georeset.data_catalog.lake import LakeSettings, attach, upsert

    settings = LakeSettings(str(root / "lake" / "metadata.ducklake"), str(root / "lake" / "data") + "/")
    con = _connect(":memory:", ("spatial", "fts"), threads)
    out: dict[str, Any] = {}
    try:
        attach(con, settings)
        con.execute(f"CREATE TABLE lake.documents ({COLUMNS.format(pk='')})")
        con.execute(f"INSERT INTO lake.documents BY NAME {_src(base)}")  # untimed
        t0 = time.perf_counter()
        r = upsert(con, "documents", _src(batch), ["doc_id"])
        t1 = time.perf_counter()
        out = {"commit_s": round(t1 - t0, 2), "written": r.inserted + r.updated, "attempts": r.attempts,
               "snapshot_id": r.snapshot_id}
        if with_index:  # the derived BM25 index of the new snapshot, in its own file (off the commit path)
            t2 = time.perf_counter()
            con.execute(f"ATTACH '{(root / 'index.duckdb').as_posix()}' AS idx")
            con.execute(f"CREATE TABLE idx.documents AS SELECT doc_id, title, text FROM lake.documents "
                        f"AT (VERSION => {r.snapshot_id})")
            con.execute("USE idx")
            _fts(con)
            con.execute("CHECKPOINT idx")
            out["derived_bm25_build_s"] = round(time.perf_counter() - t2, 2)
            con.execute("USE memory")
        out["rows_after"] = int(con.execute("SELECT count(*) FROM lake.documents").fetchone()[0])
        out["data_files"] = len(con.execute("FROM ducklake_list_files('lake', 'documents')").fetchall())
    finally:
        con.close()
    return out


def run_size(tmp: Path, n: int, batch_n: int, threads: int, with_index: bool) -> dict[str, Any]:
    import duckdb

    gen = duckdb.connect()
    if threads:
        gen.execute(f"SET threads = {threads}")
    base, batch = tmp / f"in{n}" / "base.parquet", tmp / f"in{n}" / "batch.parquet"
    base.parent.mkdir(parents=True)
    gen.execute(f"COPY ({_docs_sql(0, n, 0)}) TO '{base.as_posix()}' (FORMAT parquet)")
    gen.execute(f"COPY ({_docs_sql(n, n + batch_n, 1)}) TO '{batch.as_posix()}' (FORMAT parquet)")
    gen.close()
    old = bench_old(tmp / f"old{n}", base, batch, threads)
    shutil.rmtree(tmp / f"old{n}")
    lake = bench_lake(tmp / f"lake{n}", base, batch, threads, with_index)
    shutil.rmtree(tmp / f"lake{n}")
    shutil.rmtree(base.parent)
    assert old["rows_after"] == lake["rows_after"] == n + batch_n, (old, lake)
    return {"base_docs": n, "batch_docs": batch_n, "old": old, "ducklake": lake,
            "speedup_commit": round(old["commit_s"] / max(lake["commit_s"], 1e-9), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="1000000", help="comma-separated catalogue sizes (documents already there)")
    ap.add_argument("--batch", type=int, default=100_000, help="new documents committed in one batch")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0 = DuckDB's default: all cores)")
    ap.add_argument("--with-index", action="store_true", help="also time the lake's derived BM25 build")
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: the system temp dir)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    import duckdb

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    runs = []
    with tempfile.TemporaryDirectory(prefix="georeset-bench-commit-", dir=args.tmp) as tmp:
        for n in sizes:
            runs.append(run_size(Path(tmp), n, args.batch, args.threads, args.with_index))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    out: dict[str, Any] = {"bench": "catalog_commit", "runs": runs,
                           "ducklake_commit_growth": round(runs[-1]["ducklake"]["commit_s"]
                                                           / max(runs[0]["ducklake"]["commit_s"], 1e-9), 2),
                           "old_commit_growth": round(runs[-1]["old"]["commit_s"] / max(runs[0]["old"]["commit_s"],
                                                                                         1e-9), 2),
                           "size_growth": round(sizes[-1] / sizes[0], 2), "duckdb": duckdb.__version__,
                           "python": platform.python_version(), "cpus": os.cpu_count(),
                           "load_avg_1m": round(os.getloadavg()[0], 1)}
    text = json.dumps(out)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
