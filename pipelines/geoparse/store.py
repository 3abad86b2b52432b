"""``toponyms`` rows of a geoparsed document, as the geoparse stage (:mod:`georeset.stages.geoparse`) stages them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from georeset.pipelines.geoparse.parser import METHOD, Toponym
from georeset.pipelines.harvest._common import content_hash

__all__ = ["toponym_rows"]


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
