#!/usr/bin/env python
"""Catalogue benchmark: synthetic documents and patches, ingest, spatial pairing join, analyst query latency,
and the same join in GeoPandas, in one run. Prints one JSON object (last line).

    .venv/bin/python bench/catalog.py                       # 1M documents, 200k patches
    .venv/bin/python bench/catalog.py --docs 100000 --patches 20000 --repeats 10

Data (seeded): documents uniform over a ~75 x 75 km box near Helsinki with short texts from a 64-word vocabulary
(DuckDB SQL); patches as the imagery stage makes them: 160 m cells of the UTM zone 35N grid (16 px at 10 m), half the
patches S2 and half S1 of the same cells, at random distinct cells of the box, each with its affine transform, its
EPSG:4326 footprint (the four reprojected corners), a sensor, date, clear fraction and a 64-d embedding.

Stages: (1) staged Parquet -> the real catalogue schema (migrations, PK and UNIQUE indexes) in a DuckDB file: rows/s;
(2) the pairing join (documents inside patch footprints), materialised: the catalogue's way (``georeset.data_catalog.
grid``: ``refresh_grid_index`` builds the grid-key index of the documents, timed apart as an index build like
the FTS and HNSW ones, then an integer equi-join ``document_cells JOIN patch_cells``), and DuckDB's spatial join
operator on ``ST_Contains`` over the footprints; (3) the same join with ``geopandas.sjoin(predicate="within")`` on
the same footprints, its STRtree built before the timing (GeoDataFrame construction and tree timed apart), so
GeoPandas is measured at its best; (4) FTS and HNSW index builds; (5) p50/p95 latency of five analyst queries with
varying parameters. The pair sets are compared: the grid keys decide in the UTM grid, where the patch is an exact
square, the footprints join reprojected corners with straight lines, so points within micrometres of an edge can
differ (counted in ``grid_vs_geometry_diff``). Memory: DuckDB runs under ``--memory-limit``; the process peak RSS
is reported.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BOX = (24.3, 60.0, 25.7, 60.7)  # lon/lat box (~77 x 78 km)
VOCAB = ("harbour park church school museum station market bridge river island forest street square library "
         "hospital hotel restaurant cafe bar shop bakery pharmacy bank office factory warehouse port pier beach "
         "lake pond field farm garden cemetery stadium theatre cinema gallery university college kindergarten "
         "playground pool sauna tower castle fortress lighthouse monument statue fountain hill rock cliff bay "
         "cape ferry tram bus metro airport road").split()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _t(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def generate(con: Any, out: Path, n_docs: int, n_patches: int, dim: int) -> dict[str, float]:
    """Write staged Parquet files for documents and patches with DuckDB SQL."""
    minx, miny, maxx, maxy = BOX
    vocab = "[" + ",".join(f"'{w}'" for w in VOCAB) + "]"
    nv = len(VOCAB)
    t_docs, _ = _t(lambda: con.execute(f"""
        COPY (
          SELECT 'bench:' || i AS doc_id, 'bench' AS source, i::VARCHAR AS source_id,
                 {vocab}[(1 + hash(i, 1) % {nv})::BIGINT] || ' ' || i AS title,
                 {vocab}[(1 + hash(i, 1) % {nv})::BIGINT] || ' near the ' || {vocab}[(1 + hash(i, 2) % {nv})::BIGINT] || ' and the '
                   || {vocab}[(1 + hash(i, 3) % {nv})::BIGINT] || ', ' || {vocab}[(1 + hash(i, 4) % {nv})::BIGINT] || ' '
                   || {vocab}[(1 + hash(i, 5) % {nv})::BIGINT] AS text,
                 'en' AS lang,
                 {minx} + (hash(i, 10) % 1000000) / 1e6 * {maxx - minx} AS lon,
                 {miny} + (hash(i, 11) % 1000000) / 1e6 * {maxy - miny} AS lat,
                 'CC0-1.0' AS licence, TIMESTAMP '2026-01-01' AS retrieved_at, md5(i::VARCHAR) AS content_hash
          FROM range({n_docs}) t(i)
        ) TO '{out}/documents.parquet' (FORMAT parquet, COMPRESSION zstd)"""))
    t_patches, _ = _t(lambda: _generate_patches(out / "patches.parquet", n_patches, dim))
    return {"generate_docs_s": round(t_docs, 2), "generate_patches_s": round(t_patches, 2)}


CRS, CELL_M = "EPSG:32635", 160.0


def _generate_patches(path: Path, n_patches: int, dim: int) -> None:
    """Patches on the UTM grid (as pipelines/imagery makes them): n/2 distinct random cells, S2 and S1 each."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely
    from pyproj import Transformer

    rng = np.random.default_rng(0)
    fwd = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    inv = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    minx, miny, maxx, maxy = BOX
    xs, ys = fwd.transform(np.array([minx, maxx, minx, maxx]), np.array([miny, miny, maxy, maxy]))
    i0, i1 = int(max(xs[0], xs[2]) // CELL_M) + 1, int(min(xs[1], xs[3]) // CELL_M) - 1
    j0, j1 = int(max(ys[0], ys[1]) // CELL_M) + 1, int(min(ys[2], ys[3]) // CELL_M) - 1
    ncols, ncells = i1 - i0 + 1, (i1 - i0 + 1) * (j1 - j0 + 1)
    n_cells = max(1, n_patches // 2)
    if n_cells > ncells:
        raise SystemExit(f"--patches {n_patches} needs {n_cells} cells but the box has {ncells}")
    pick = rng.choice(ncells, n_cells, replace=False)
    ci = np.repeat(i0 + pick % ncols, 2)[:n_patches]
    cj = np.repeat(j0 + pick // ncols, 2)[:n_patches]
    n = len(ci)
    cx = np.stack([ci, ci + 1, ci + 1, ci, ci], 1) * CELL_M
    cy = np.stack([cj, cj, cj + 1, cj + 1, cj], 1) * CELL_M
    lon, lat = inv.transform(cx, cy)
    polys = shapely.polygons(np.stack([lon, lat], -1))
    clon, clat = inv.transform((ci + 0.5) * CELL_M, (cj + 0.5) * CELL_M)
    k = np.arange(n)
    table = pa.table({
        "patch_id": [f"{v:032x}" for v in rng.integers(0, 2**63 - 1, n)],
        "scene_id": [f"scene/{v % 40}" for v in k],
        "sensor": np.where(k % 2 == 0, "S2", "S1"),
        "lon": clon, "lat": clat,
        "transform": [[10.0, 0.0, float(a * CELL_M), 0.0, -10.0, float((b + 1) * CELL_M)] for a, b in zip(ci, cj, strict=True)],
        "datetime": np.datetime64("2024-05-01") + rng.integers(0, 150, n).astype("timedelta64[D]"),
        "clear_fraction": rng.integers(0, 1000, n) / 1000.0,
        "wkb": shapely.to_wkb(polys),
        "emb": list(rng.uniform(-1, 1, (n, dim)).astype("float32")),
    })
    pq.write_table(table, path, compression="zstd")


def ingest(con: Any, staged: Path, dim: int, vectors: int) -> dict[str, Any]:
    """Insert the staged rows into the catalogue schema (what merge does for new rows), timed."""
    t_docs, _ = _t(lambda: con.execute(
        "INSERT INTO documents (doc_id, source, source_id, title, text, lang, lon, lat, geom, licence, retrieved_at, "
        "content_hash) SELECT doc_id, source, source_id, title, text, lang, lon, lat, ST_Point(lon, lat), licence, "
        f"retrieved_at, content_hash FROM read_parquet('{staged}/documents.parquet')"))
    t_patches, _ = _t(lambda: con.execute(
        "INSERT INTO patches (patch_id, scene_id, sensor, lon, lat, crs, transform, gsd, size, bands, datetime, "
        "clear_fraction, geom, path, checksum, source, licence, retrieved_at, content_hash) SELECT patch_id, scene_id, "
        f"sensor, lon, lat, '{CRS}', transform, 10.0, 16, ['B02', 'B03', 'B04'], datetime, clear_fraction, "
        "ST_GeomFromWKB(wkb), 'patches/' || patch_id || '.npy', md5(patch_id), 'bench', 'CC0-1.0', "
        f"TIMESTAMP '2026-01-01', md5('h' || patch_id) FROM read_parquet('{staged}/patches.parquet')"))
    t_emb, _ = _t(lambda: con.execute(
        f"CREATE TABLE vss_patch AS SELECT patch_id AS owner_id, emb::FLOAT[{dim}] AS v "
        f"FROM read_parquet('{staged}/patches.parquet') LIMIT {vectors}"))
    nd = con.execute("SELECT count(*) FROM documents").fetchone()[0]
    npch = con.execute("SELECT count(*) FROM patches").fetchone()[0]
    return {"documents": nd, "patches": npch, "ingest_docs_s": round(t_docs, 2), "ingest_patches_s": round(t_patches, 2),
            "ingest_docs_rows_per_s": round(nd / t_docs), "ingest_patches_rows_per_s": round(npch / t_patches),
            "vectors_table_s": round(t_emb, 2)}


JOIN_SQL = "SELECT d.doc_id, p.patch_id FROM documents d JOIN patches p ON ST_Contains(p.geom, d.geom)"
GRID_JOIN_SQL = "SELECT dc.doc_id, pc.patch_id FROM document_cells dc JOIN patch_cells pc USING (grid, cell)"


def duck_join(con: Any) -> dict[str, Any]:
    from georeset.data_catalog.grid import refresh_grid_index

    t_index, cells = _t(lambda: refresh_grid_index(con))
    t_grid, _ = _t(lambda: con.execute(f"CREATE OR REPLACE TEMP TABLE bench_pairs AS {GRID_JOIN_SQL}"))
    n_grid = con.execute("SELECT count(*) FROM bench_pairs").fetchone()[0]
    plan = "\n".join(r[1] for r in con.execute("EXPLAIN " + JOIN_SQL).fetchall())
    t_geo, _ = _t(lambda: con.execute(f"CREATE OR REPLACE TEMP TABLE bench_pairs_geo AS {JOIN_SQL}"))
    n_geo = con.execute("SELECT count(*) FROM bench_pairs_geo").fetchone()[0]
    diff = con.execute("SELECT (SELECT count(*) FROM (SELECT * FROM bench_pairs EXCEPT SELECT * FROM bench_pairs_geo)) "
                       "+ (SELECT count(*) FROM (SELECT * FROM bench_pairs_geo EXCEPT SELECT * FROM bench_pairs))"
                       ).fetchone()[0]
    return {"duckdb_grid_index_build_s": round(t_index, 3), "document_cells": cells["document_cells"],
            "duckdb_grid_join_s": round(t_grid, 3), "duckdb_grid_total_s": round(t_index + t_grid, 3),
            "duckdb_grid_pairs": n_grid,
            "duckdb_spatial_join_s": round(t_geo, 3), "duckdb_spatial_pairs": n_geo,
            "duckdb_spatial_join_operator": "SPATIAL_JOIN" in plan, "grid_vs_geometry_diff": diff}


def geopandas_join(con: Any, staged: Path) -> dict[str, Any]:
    """``geopandas.sjoin(docs, patches, predicate="within")``. For ``within`` GeoPandas queries the tree of the
    *left* frame (the documents: it answers "which points does each footprint contain"), so that is the tree built
    here and timed apart, then the join with it; ``geopandas_total_s`` counts both. Its pairs are checked against
    DuckDB's spatial join, pair by pair."""
    import geopandas as gpd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    def build() -> tuple[Any, Any]:
        d = pq.read_table(staged / "documents.parquet", columns=["doc_id", "lon", "lat"]).to_pandas()
        p = pq.read_table(staged / "patches.parquet", columns=["patch_id", "wkb"]).to_pandas()
        docs = gpd.GeoDataFrame({"doc_id": d["doc_id"]}, geometry=gpd.points_from_xy(d["lon"], d["lat"]), crs=4326)
        patches = gpd.GeoDataFrame({"patch_id": p["patch_id"]}, geometry=shapely.from_wkb(p["wkb"].to_numpy()),
                                   crs=4326)
        return docs, patches

    t_build, (docs, patches) = _t(build)
    t_tree, _ = _t(lambda: docs.sindex)  # the tree sjoin(..., predicate="within") queries: the left frame's
    t_join, joined = _t(lambda: gpd.sjoin(docs, patches, predicate="within", how="inner"))
    n = len(joined)
    got = pa.table({"doc_id": joined["doc_id"].to_numpy(), "patch_id": joined["patch_id"].to_numpy()})
    del joined
    con.register("gpd_pairs", got)
    diff = con.execute("SELECT (SELECT count(*) FROM (SELECT * FROM gpd_pairs EXCEPT SELECT * FROM bench_pairs_geo)) "
                       "+ (SELECT count(*) FROM (SELECT * FROM bench_pairs_geo EXCEPT SELECT * FROM gpd_pairs))"
                       ).fetchone()[0]
    con.unregister("gpd_pairs")
    return {"geopandas_build_s": round(t_build, 3), "geopandas_tree_s": round(t_tree, 3),
            "geopandas_join_s": round(t_join, 3), "geopandas_total_s": round(t_tree + t_join, 3),
            "geopandas_pairs": n, "geopandas_vs_duckdb_spatial_diff": diff}


def rtree(con: Any, repeats: int, seed: int = 1) -> dict[str, Any]:
    """Where an R-tree helps: a point lookup ("which footprints contain this point") with ST_Contains only, without
    and with DuckDB's RTREE index on patches.geom (the index build timed apart). The pairing join does not use it:
    DuckDB's SPATIAL_JOIN operator builds its own tree per join."""
    rng = random.Random(seed)
    minx, miny, maxx, maxy = BOX
    pts = [(rng.uniform(minx, maxx), rng.uniform(miny, maxy)) for _ in range(repeats)]

    def run() -> tuple[float, list[int]]:
        times, counts = [], []
        for lon, lat in pts:
            t = time.perf_counter()
            counts.append(con.execute(f"SELECT count(*) FROM patches WHERE ST_Contains(geom, ST_Point({lon}, {lat}))"
                                      ).fetchone()[0])
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times), counts

    scan_ms, scan_counts = run()
    t_build, _ = _t(lambda: con.execute("CREATE INDEX bench_patches_rtree ON patches USING RTREE (geom)"))
    plan = "\n".join(r[1] for r in con.execute(
        f"EXPLAIN SELECT count(*) FROM patches WHERE ST_Contains(geom, ST_Point({pts[0][0]}, {pts[0][1]}))"
    ).fetchall())
    idx_ms, idx_counts = run()
    con.execute("DROP INDEX bench_patches_rtree")
    return {"point_lookup_scan_p50_ms": round(scan_ms, 2), "rtree_build_s": round(t_build, 3),
            "point_lookup_rtree_p50_ms": round(idx_ms, 2), "rtree_index_scan_used": "RTREE_INDEX_SCAN" in plan,
            "rtree_same_results": scan_counts == idx_counts}


def indexes(con: Any) -> dict[str, float]:
    t_fts, _ = _t(lambda: con.execute("PRAGMA create_fts_index('documents', 'doc_id', 'title', 'text', "
                                      "stemmer = 'english', stopwords = 'english', overwrite = 1)"))
    t_hnsw, _ = _t(lambda: con.execute("CREATE INDEX vss_patch_hnsw ON vss_patch USING HNSW (v) "
                                       "WITH (metric = 'cosine')"))
    return {"fts_build_s": round(t_fts, 2), "hnsw_build_s": round(t_hnsw, 2)}


def queries(con: Any, repeats: int, dim: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    minx, miny, maxx, maxy = BOX

    def pt() -> tuple[float, float]:
        return rng.uniform(minx, maxx), rng.uniform(miny, maxy)

    def q_radius() -> str:
        lon, lat = pt()
        return (f"SELECT doc_id, title, km_between(lon, lat, {lon}, {lat}) AS km FROM documents "
                f"WHERE lon BETWEEN {lon - 0.01} AND {lon + 0.01} AND lat BETWEEN {lat - 0.005} AND {lat + 0.005} "
                f"AND within_km(lon, lat, {lon}, {lat}, 0.5) ORDER BY km LIMIT 20")

    def q_bm25() -> str:
        words = " ".join(rng.sample(VOCAB, 2))
        return ("SELECT doc_id, title, score FROM (SELECT doc_id, title, "
                f"fts_main_documents.match_bm25(doc_id, '{words}') AS score FROM documents) "
                "WHERE score IS NOT NULL ORDER BY score DESC LIMIT 10")

    def q_cover() -> str:
        lon, lat = pt()
        return (f"SELECT patch_id, sensor, datetime, clear_fraction FROM patches WHERE lon BETWEEN {lon - 0.003} AND "
                f"{lon + 0.003} AND lat BETWEEN {lat - 0.002} AND {lat + 0.002} "
                f"AND ST_Contains(geom, ST_Point({lon}, {lat})) ORDER BY clear_fraction DESC")

    def q_agg() -> str:
        c = round(rng.uniform(0.5, 0.95), 2)
        return ("SELECT p.sensor, date_trunc('month', p.datetime) AS month, count(*) AS pairs, "
                "count(DISTINCT x.doc_id) AS docs FROM bench_pairs x JOIN patches p USING (patch_id) "
                f"WHERE p.clear_fraction >= {c} GROUP BY ALL ORDER BY ALL")

    def q_knn() -> str:
        vec = ",".join(f"{rng.uniform(-1, 1):.5f}" for _ in range(dim))
        return (f"SELECT owner_id, array_cosine_distance(v, [{vec}]::FLOAT[{dim}]) AS dist FROM vss_patch "
                "ORDER BY dist LIMIT 10")

    out: dict[str, Any] = {}
    for name, make in (("radius_500m", q_radius), ("bm25_top10", q_bm25), ("patches_covering_point", q_cover),
                       ("pairs_by_sensor_month", q_agg), ("vector_knn10_hnsw", q_knn)):
        con.execute(make()).fetchall()  # warm-up
        times = []
        for _ in range(repeats):
            sql = make()
            t = time.perf_counter()
            con.execute(sql).fetchall()
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[name] = {"p50_ms": round(statistics.median(times), 2),
                     "p95_ms": round(times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], 2),
                     "runs": repeats}
    plan = "\n".join(r[1] for r in con.execute("EXPLAIN " + q_knn()).fetchall())
    out["vector_knn10_hnsw"]["uses_hnsw_index"] = "HNSW_INDEX_SCAN" in plan
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="GEO-ReSeT catalogue benchmark (DuckDB vs GeoPandas)")
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--patches", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=64, help="embedding dimension of the vector table")
    ap.add_argument("--vectors", type=int, default=20_000,
                    help="patch embeddings put in the HNSW index (its build is the slow part: ~1 ms/vector on 2 cores)")
    ap.add_argument("--repeats", type=int, default=20, help="runs per analyst query")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="3GB")
    ap.add_argument("--workdir", type=Path, default=None, help="where the catalogue file goes (default: temp dir)")
    ap.add_argument("--skip-geopandas", action="store_true")
    args = ap.parse_args(argv)

    from georeset.data_catalog import connect, migrate

    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="georeset-bench-")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    staged = work / "staged"
    staged.mkdir(exist_ok=True)
    db = work / "bench.duckdb"
    db.unlink(missing_ok=True)
    con = connect(db)
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET temp_directory = '{work / 'spill'}'")
    migrate(con)
    res: dict[str, Any] = {"docs": args.docs, "patches": args.patches, "threads": args.threads,
                           "memory_limit": args.memory_limit}
    res.update(generate(con, staged, args.docs, args.patches, args.dim))
    res.update(ingest(con, staged, args.dim, min(args.vectors, args.patches)))
    res["vectors"] = min(args.vectors, args.patches)
    con.execute("CHECKPOINT")
    res.update(duck_join(con))
    if not args.skip_geopandas:
        res.update(geopandas_join(con, staged))
        gp_total = res["geopandas_total_s"]
        res["ratios_vs_geopandas"] = {  # GeoPandas seconds / DuckDB seconds: > 1 means DuckDB is faster
            # everything counted: GeoPandas' tree + join, the grid-key build + join, DuckDB's self-contained join
            "grid_join_incl_key_build": round(gp_total / res["duckdb_grid_total_s"], 2),
            "spatial_join_operator": round(gp_total / res["duckdb_spatial_join_s"], 2),
            # both with their index prebuilt (what a repeated join over unchanged data costs)
            "grid_join_keys_prebuilt_vs_tree_prebuilt": round(res["geopandas_join_s"] / res["duckdb_grid_join_s"], 2),
        }
        res["geopandas_pairs_equal_spatial_join"] = (res["geopandas_pairs"] == res["duckdb_spatial_pairs"]
                                                     and res["geopandas_vs_duckdb_spatial_diff"] == 0)
    con.execute("DROP TABLE bench_pairs_geo")
    res["rtree"] = rtree(con, args.repeats)
    res.update(indexes(con))
    res["queries"] = queries(con, args.repeats, args.dim)
    con.close()
    res["db_mb"] = round(db.stat().st_size / 1e6, 1)
    res["peak_rss_mb"] = round(_rss_mb(), 1)
    res["total_s"] = round(time.perf_counter() - t0, 1)
    tmp.cleanup()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
