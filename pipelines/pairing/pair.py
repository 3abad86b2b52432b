"""Pair documents with patches by location, in SQL (DuckDB spatial).

- ``point_in_patch``: the document's point (``documents.lon/lat``, else the centroid of its geometry) lies inside
  the patch footprint (for grid-aligned patches: the same grid cell, an integer equi-join through
  ``document_cells``, see ``georeset.data_catalog.grid``; for any other footprint: ``ST_Intersects``);
  score 1.0, ``distance_m`` = great-circle distance to the patch centre.
- ``toponym_in_patch``: an *asserted* toponym of the document (resolved, ``toponyms.place_id`` not null, with the
  geoparser's calibrated ``probability`` at least its commit threshold, ``pipelines.geoparse.commit``; a toponym
  without a probability is not asserted) lies inside the footprint *and the place fits the patch scale*: its
  extent (``places`` geometry, else a typical size of its GeoNames feature code or class; :mod:`georeset.pipelines.pairing.scale`) is at most ``fit_ratio`` times the
  patch extent (``gsd * size``). A park, building or street pairs with a 160 m patch; a city, region or country
  never does (it stays in ``toponyms`` for analysts and location targets). Places of unknown scale never pair.
  score = the toponym's score, ``distance_m`` to the patch centre.
Every pair keeps its kind (``how``) and a ``weight``: 1.0 for ``point_in_patch`` (the strong case),
``TOPONYM_WEIGHT * score`` for ``toponym_in_patch``. Balancing per patch (no patch dominates training) is done at
export (``max_pairs_per_patch``, highest weight first), so the catalogue keeps every pair.
One pair per (doc_id, patch_id): the highest weight, ``point_in_patch`` first on ties, then the nearest.
``pair_id = '<doc_id>|<patch_id>'``; licence = '<document licence> + <patch licence>'. Rows are staged into
``pairs`` with a content hash, so re-running and merging changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from georeset.data_catalog import stage
from georeset.data_catalog.grid import grids, point_cells_sql, refresh_grid_index
from georeset.pipelines.pairing.scale import FIT_RATIO, extent_sql
from georeset.timeutil import naive_utc

__all__ = ["PAIRING_METHOD", "TOPONYM_WEIGHT", "pair_documents"]

PAIRING_METHOD = "georeset.pairing/2"
TOPONYM_WEIGHT = 0.5

_HAVERSINE = (
    "2 * 6371008.8 * asin(sqrt(pow(sin(radians({lat2} - {lat1}) / 2), 2) + "
    "cos(radians({lat1})) * cos(radians({lat2})) * pow(sin(radians({lon2} - {lon1}) / 2), 2)))"
)

_SQL = """
WITH docs AS (
    SELECT doc_id, licence, content_hash,
           coalesce(lon, ST_X(ST_Centroid(geom))) AS lon, coalesce(lat, ST_Y(ST_Centroid(geom))) AS lat
    FROM documents
),
tops AS (
    SELECT t.toponym_id, t.doc_id, t.lon, t.lat, t.score, t.content_hash, {extent} AS extent_m
    FROM toponyms t JOIN places pl ON pl.place_id = t.place_id {extent_joins}
    WHERE t.lon IS NOT NULL AND t.lat IS NOT NULL AND {extent} IS NOT NULL AND t.probability >= {min_probability}
),
top_cells AS ({top_cells}),
off_grid AS (SELECT * FROM patches WHERE patch_id NOT IN (SELECT patch_id FROM patch_cells)),
doc_patch AS (
    -- grid-aligned patches: equal grid keys (document_cells is refreshed just before)
    SELECT dc.doc_id, pc.patch_id FROM document_cells dc JOIN patch_cells pc USING (grid, cell)
    UNION ALL
    -- any other footprint: geometric test
    SELECT d.doc_id, p.patch_id FROM docs d JOIN off_grid p ON ST_Intersects(p.geom, ST_Point(d.lon, d.lat))
    WHERE d.lon IS NOT NULL AND d.lat IS NOT NULL
),
top_patch AS (
    SELECT tc.toponym_id, pc.patch_id FROM top_cells tc JOIN patch_cells pc USING (grid, cell)
    UNION ALL
    SELECT t.toponym_id, p.patch_id FROM tops t JOIN off_grid p ON ST_Intersects(p.geom, ST_Point(t.lon, t.lat))
),
cand AS (
    SELECT d.doc_id, p.patch_id, 'point_in_patch' AS how, NULL::VARCHAR AS toponym_id, 1.0 AS score, 1.0 AS weight,
           {dist_doc} AS distance_m, d.licence AS doc_licence, p.licence AS patch_licence,
           d.content_hash AS doc_hash, p.content_hash AS patch_hash, NULL::VARCHAR AS toponym_hash
    FROM doc_patch x JOIN docs d USING (doc_id) JOIN patches p USING (patch_id)
    UNION ALL
    SELECT t.doc_id, p.patch_id, 'toponym_in_patch', t.toponym_id, coalesce(t.score, 0.0),
           {toponym_weight} * coalesce(t.score, 0.0), {dist_top}, d.licence, p.licence, d.content_hash,
           p.content_hash, t.content_hash
    FROM top_patch x JOIN tops t USING (toponym_id) JOIN docs d USING (doc_id) JOIN patches p USING (patch_id)
    WHERE t.extent_m <= ? * p.gsd * p.size
)
SELECT doc_id, patch_id, how, toponym_id, score, weight, distance_m, doc_licence, patch_licence,
       doc_hash, patch_hash, toponym_hash
FROM cand
WHERE ? IS NULL OR distance_m <= ?
QUALIFY row_number() OVER (
    PARTITION BY doc_id, patch_id
    ORDER BY weight DESC, (how = 'point_in_patch') DESC, distance_m ASC, toponym_id ASC NULLS FIRST) = 1
ORDER BY doc_id, patch_id
"""


def pair_documents(
    con: duckdb.DuckDBPyConnection,
    *,
    staging_dir: Path,
    retrieved_at: datetime | None = None,
    max_distance_m: float | None = None,
    fit_ratio: float = FIT_RATIO,
    min_probability: float | None = None,
) -> int:
    """Stage one ``pairs`` row per (document, patch) that meet by location; returns the number staged.

    ``fit_ratio``: a toponym pairs only when its place's extent is at most this many patch extents.
    ``min_probability``: a toponym pairs only from this probability on (default: the geoparser's commit
    threshold, the probability from which it asserts a toponym)."""
    if min_probability is None:
        from georeset.pipelines.geoparse import commit

        min_probability = commit.COMMIT_THRESHOLD
    refresh_grid_index(con)
    joins, extent = extent_sql("pl")
    sql = _SQL.format(
        extent=extent, extent_joins=joins, min_probability=repr(float(min_probability)),
        toponym_weight=repr(float(TOPONYM_WEIGHT)),
        top_cells=point_cells_sql("tops", "toponym_id", grids(con)),
        dist_doc=_HAVERSINE.format(lon1="d.lon", lat1="d.lat", lon2="p.lon", lat2="p.lat"),
        dist_top=_HAVERSINE.format(lon1="t.lon", lat1="t.lat", lon2="p.lon", lat2="p.lat"),
    )
    rows = con.execute(sql, [float(fit_ratio), max_distance_m, max_distance_m]).fetchall()
    when = naive_utc(retrieved_at or datetime.now(UTC))
    out = []
    for doc_id, patch_id, how, toponym_id, score, weight, dist, dl, pl, dh, ph, th in rows:
        pair_id = f"{doc_id}|{patch_id}"
        dist_r = None if dist is None else round(float(dist), 3)
        canon = "|".join(map(str, (pair_id, how, toponym_id, round(float(score), 6), round(float(weight), 6), dist_r, dh,
                                   ph, th, PAIRING_METHOD)))
        out.append(
            {
                "pair_id": pair_id,
                "doc_id": doc_id,
                "patch_id": patch_id,
                "how": how,
                "toponym_id": toponym_id,
                "score": float(score),
                "weight": round(float(weight), 6),
                "distance_m": dist_r,
                "source": PAIRING_METHOD,
                "licence": f"{dl} + {pl}",
                "retrieved_at": when,
                "content_hash": hashlib.sha256(canon.encode()).hexdigest(),
            }
        )
    if out:
        name = "pairing-" + hashlib.sha1("|".join(r["content_hash"] for r in out).encode()).hexdigest()[:16]
        stage(out, table="pairs", staging_dir=Path(staging_dir), name=name)
    return len(out)
