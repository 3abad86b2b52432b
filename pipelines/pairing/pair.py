"""Pair documents with patches by location, in SQL (DuckDB spatial).

- ``point_in_patch``: the document's point (``documents.lon/lat``, else the centroid of its geometry) lies inside
  the patch footprint; score 1.0, ``distance_m`` = great-circle distance to the patch centre.
- ``toponym_in_patch``: a resolved toponym of the document (``toponyms.place_id`` not null) lies inside the
  footprint; score = the toponym's score, ``distance_m`` to the patch centre.
One pair per (doc_id, patch_id): the best score, ``point_in_patch`` first on ties, then the nearest.
``pair_id = '<doc_id>|<patch_id>'``; licence = '<document licence> + <patch licence>'. Rows are staged into
``pairs`` with a content hash, so re-running and merging changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from georeset.data_catalog import stage

__all__ = ["PAIRING_METHOD", "pair_documents"]

PAIRING_METHOD = "georeset.pairing/1"

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
cand AS (
    SELECT d.doc_id, p.patch_id, 'point_in_patch' AS how, NULL::VARCHAR AS toponym_id, 1.0 AS score,
           {dist_doc} AS distance_m, d.licence AS doc_licence, p.licence AS patch_licence,
           d.content_hash AS doc_hash, p.content_hash AS patch_hash, NULL::VARCHAR AS toponym_hash
    FROM docs d JOIN patches p ON ST_Intersects(p.geom, ST_Point(d.lon, d.lat))
    WHERE d.lon IS NOT NULL AND d.lat IS NOT NULL
    UNION ALL
    SELECT t.doc_id, p.patch_id, 'toponym_in_patch', t.toponym_id, coalesce(t.score, 0.0),
           {dist_top}, d.licence, p.licence, d.content_hash, p.content_hash, t.content_hash
    FROM toponyms t JOIN docs d USING (doc_id)
         JOIN patches p ON ST_Intersects(p.geom, ST_Point(t.lon, t.lat))
    WHERE t.place_id IS NOT NULL AND t.lon IS NOT NULL AND t.lat IS NOT NULL
)
SELECT doc_id, patch_id, how, toponym_id, score, distance_m, doc_licence, patch_licence,
       doc_hash, patch_hash, toponym_hash
FROM cand
WHERE ? IS NULL OR distance_m <= ?
QUALIFY row_number() OVER (
    PARTITION BY doc_id, patch_id
    ORDER BY score DESC, (how = 'point_in_patch') DESC, distance_m ASC, toponym_id ASC NULLS FIRST) = 1
ORDER BY doc_id, patch_id
"""


def pair_documents(
    con: duckdb.DuckDBPyConnection,
    *,
    staging_dir: Path,
    retrieved_at: datetime | None = None,
    max_distance_m: float | None = None,
) -> int:
    """Stage one ``pairs`` row per (document, patch) that meet by location; returns the number staged."""
    sql = _SQL.format(
        dist_doc=_HAVERSINE.format(lon1="d.lon", lat1="d.lat", lon2="p.lon", lat2="p.lat"),
        dist_top=_HAVERSINE.format(lon1="t.lon", lat1="t.lat", lon2="p.lon", lat2="p.lat"),
    )
    rows = con.execute(sql, [max_distance_m, max_distance_m]).fetchall()
    when = retrieved_at or datetime.now(UTC)
    when = when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
    out = []
    for doc_id, patch_id, how, toponym_id, score, dist, dl, pl, dh, ph, th in rows:
        pair_id = f"{doc_id}|{patch_id}"
        dist_r = None if dist is None else round(float(dist), 3)
        canon = "|".join(map(str, (pair_id, how, toponym_id, round(float(score), 6), dist_r, dh, ph, th, PAIRING_METHOD)))
        out.append(
            {
                "pair_id": pair_id,
                "doc_id": doc_id,
                "patch_id": patch_id,
                "how": how,
                "toponym_id": toponym_id,
                "score": float(score),
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
