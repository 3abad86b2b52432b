"""Geoparse catalogue documents into ``toponyms`` rows (staged as Parquet, then merged)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from georeset.pipelines.geoparse.parser import METHOD, Geoparser, Toponym
from georeset.pipelines.harvest._common import content_hash, utc

__all__ = ["run_geoparse", "toponym_rows"]

_DOCS_PER_FILE = 2000


def toponym_rows(doc_id: str, doc_hash: str, licence: str, toponyms: list[Toponym], *,
                 processed_at: datetime, method: str = METHOD) -> list[dict[str, Any]]:
    """``toponyms`` table rows for one document (licence inherited from it; ``method``: the geoparser's
    :attr:`~georeset.pipelines.geoparse.parser.Geoparser.method`)."""
    rows = []
    for t in toponyms:
        rows.append({
            "toponym_id": f"{doc_id}#{t.start}-{t.end}",
            "doc_id": doc_id,
            "start_char": t.start,
            "end_char": t.end,
            "surface": t.surface,
            "label": t.label,
            "place_id": t.place_id,
            "score": float(t.score),
            "probability": float(t.probability),
            "feature_class": t.feature_class,
            "extent_m": t.extent_m,
            "kind": t.kind,
            "lon": t.lon,
            "lat": t.lat,
            "reason": t.reason,
            "method": method,
            "licence": licence,
            "retrieved_at": processed_at,
            "content_hash": content_hash(doc_hash, t.start, t.end, t.label, t.place_id, t.score, t.probability,
                                         t.kind, method),
        })
    return rows


def run_geoparse(con: Any, *, staging_dir: Path, batch_size: int = 64, progress: bool = True,
                 geoparser: Geoparser | None = None, processed_at: datetime | None = None,
                 limit: int | None = None, merge: bool = True) -> int:
    from tqdm import tqdm

    from georeset.data_catalog import merge as merge_table
    from georeset.data_catalog import stage

    parser = geoparser or Geoparser.from_catalog(con)
    when = utc(processed_at)
    where = "WHERE NOT EXISTS (SELECT 1 FROM toponyms t WHERE t.doc_id = d.doc_id)"
    lim = f" LIMIT {int(limit)}" if limit is not None else ""
    total = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM documents d {where}{lim})").fetchone()[0]
    cur = con.cursor()  # its own connection: gazetteer lookups on ``con`` do not disturb this result
    db, schema = con.execute("SELECT current_database(), current_schema()").fetchone()
    cur.execute(f'USE "{db}"."{schema}"')  # a cursor starts in the default database, not the attached lake
    cur.execute(f"SELECT d.doc_id, d.text, d.lon, d.lat, d.licence, d.content_hash FROM documents d {where} "
                f"ORDER BY d.doc_id{lim}")
    staged = 0
    with tqdm(total=total, disable=not progress, unit="doc", desc="geoparse") as bar:
        while docs := cur.fetchmany(_DOCS_PER_FILE):
            rows: list[dict[str, Any]] = []
            items = ((text, lon, lat) for _, text, lon, lat, _, _ in docs)
            for (doc_id, _, _, _, licence, doc_hash), tops in zip(docs, parser.parse_many(items,
                                                                                       batch_size=batch_size),
                                                                  strict=True):
                rows.extend(toponym_rows(doc_id, doc_hash, licence, tops, processed_at=when, method=parser.method))
                bar.update(1)
            name = "geoparse-" + hashlib.sha1(docs[0][0].encode("utf-8")).hexdigest()[:16]
            stage(rows, table="toponyms", staging_dir=staging_dir, name=name)
            staged += len(rows)
    cur.close()
    if merge:
        merge_table(con, table="toponyms", staging_dir=staging_dir)
    return staged
