"""A per-source prior: where a news source's stories usually are, learned from gold toponyms of that source.

Local newspapers write about their own area, and a name that is ambiguous worldwide ("Athens", "Paris",
"Dublin") is usually the local one in the local paper (Lieberman et al.'s "local lexicon" of each source). A user
who harvests known feeds knows where each feed is; this module learns that point from gold-annotated documents
of the source, so it can be passed to the geoparser as the document's own point (the ``(text, lon, lat)`` input
of :meth:`Geoparser.parse_many`), the same input a user with a feed list would give.

It is an *explicit* input: nothing reads a document's source unless asked (``georeset geoparse evaluate
--source-prior gold``, which learns the points from the fitted half's gold only, or ``--source-prior self``, which
learns them from the geoparser's own asserted toponyms on the fitted half's documents, no annotation used; either
is reported as a separate row beside the plain figures).

:func:`learn_source_points`: for each source, the gold point with the most gold toponyms of that source within
:data:`RADIUS_KM` (the medoid of the densest cluster, a real place rather than an average of far places); kept
when at least :data:`MIN_TOPONYMS` gold toponyms with coordinates support the source and the cluster holds at
least :data:`MIN_SHARE` of them (a national or international source -- a wire, ``jpost.com`` -- gets no point).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from georeset.pipelines.geoparse.corpora import GoldDocument
from georeset.pipelines.geoparse.ranking import haversine_matrix

__all__ = ["MIN_SHARE", "MIN_TOPONYMS", "RADIUS_KM", "SourcePoint", "learn_source_points", "point_of",
           "points_from_places"]

RADIUS_KM = 161.0
MIN_TOPONYMS = 5
# Fixed a priori (not tuned on any half): a source whose gold toponyms lie for less than this share around one
# point is not local.
MIN_SHARE = 0.4


@dataclass(frozen=True)
class SourcePoint:
    source: str
    lon: float
    lat: float
    share: float  # of the source's gold toponyms within RADIUS_KM of the point
    n_toponyms: int
    n_docs: int


def learn_source_points(docs: Iterable[GoldDocument], *, radius_km: float = RADIUS_KM,
                        min_toponyms: int = MIN_TOPONYMS, min_share: float = MIN_SHARE) -> dict[str, SourcePoint]:
    """``{source: SourcePoint}`` from the *gold* toponyms of ``docs``, for every source that looks local (see the
    module docstring). Documents without a source are ignored."""
    return points_from_places(((d.source, [(g.lon, g.lat) for g in d.toponyms if g.lon is not None
                                           and g.lat is not None]) for d in docs),
                              radius_km=radius_km, min_toponyms=min_toponyms, min_share=min_share)


def points_from_places(groups: Iterable[tuple[str | None, Sequence[tuple[float, float]]]], *,
                       radius_km: float = RADIUS_KM, min_toponyms: int = MIN_TOPONYMS,
                       min_share: float = MIN_SHARE) -> dict[str, SourcePoint]:
    """``{source: SourcePoint}`` from ``(source, [(lon, lat), ...])`` per document: gold points
    (:func:`learn_source_points`) or the geoparser's own asserted toponyms on a source's earlier documents (no
    annotation needed: what a harvester of known feeds can do, ``evaluate --source-prior self``)."""
    pts: dict[str, list[tuple[float, float]]] = {}
    ndocs: dict[str, int] = {}
    for src, places in groups:
        if not src:
            continue
        ndocs[src] = ndocs.get(src, 0) + 1
        pts.setdefault(src, []).extend(places)
    out: dict[str, SourcePoint] = {}
    for src, p in sorted(pts.items()):
        if len(p) < min_toponyms:
            continue
        lon, lat = np.array([x for x, _ in p]), np.array([y for _, y in p])
        close = haversine_matrix(lon, lat, lon, lat) <= radius_km
        support = close.sum(axis=1)
        c = int(np.argmax(support))  # first among ties: deterministic
        share = float(support[c]) / len(p)
        if share >= min_share:
            out[src] = SourcePoint(src, float(lon[c]), float(lat[c]), round(share, 4), len(p), ndocs[src])
    return out


def point_of(points: dict[str, SourcePoint], doc: GoldDocument) -> tuple[float | None, float | None]:
    """The document's point from its source's prior, or ``(None, None)``."""
    sp = points.get(doc.source or "")
    return (sp.lon, sp.lat) if sp is not None else (None, None)
