"""Gold points that lost their sign, and how far the gazetteer goes: checks of the gold itself, not of the geoparser.

Some gold annotations carry a coordinate without its hemisphere. In WikToR, "Portland is a city in Ionia County of
the U.S. state of Michigan" is annotated at (42.87 N, 84.90 **E**), in western China, and "Dallas is a suburb of
Melbourne, Victoria, Australia" at (37.67 **N**, 144.94 E), off Japan. Scored against such a point every reading
is wrong, however well the text ("Ionia County", "Michigan") is read.

:func:`check_signs` tests each gold point against the gazetteer alone (the places that carry the gold span's
name; no ranking, no context): a point is *sign-flipped* when no place of that name lies within ``radius_km`` of
it, and one does within ``radius_km`` of the point with its longitude, latitude or both negated. Only the
gazetteer decides; the geoparser's own choice is never read, so the check cannot confirm the geoparser.

:func:`repaired` returns documents with those points negated back (for a user who wants to score or fit on
them; round 14's fit on repaired gold used them and was dropped). ``georeset geoparse evaluate`` scores against
the corpus as published, so its figures stay comparable with other systems', and reports beside them how many
gold points lost a sign (``n_gold_sign_flipped``) and the accuracy on gold spans with them repaired
(``acc161_gold_sign_repaired``). The fit (``scripts/fit_geoparser.py``) reads the published points: fitted on
repaired ones, the weights scored lower on both fitted halves (docs/geoparsing.md, round 14).

The same test says how far the gazetteer goes (:func:`reachable`): a gold toponym whose name has no place within
161 km of its point cannot be resolved right by choosing among its name's places (only a point estimated from the
text's other places, the focus fallback, can still land near it). The share of gold toponyms that can
(``name_in_gazetteer_161``) is the most a choice among candidates reaches, and the accuracy among them
(``acc161_gold_in_gazetteer``) is what the ranking itself achieves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.corpora import GoldDocument, GoldToponym
from georeset.pipelines.geoparse.names import name_key
from georeset.pipelines.geoparse.ranking import haversine_matrix

__all__ = ["FLIPS", "SignFlip", "check_signs", "reachable", "repaired", "sign_flip"]

RADIUS_KM = 161.0
# (name, latitude factor, longitude factor), tried in this order: the first that fits wins.
FLIPS: tuple[tuple[str, float, float], ...] = (("longitude", 1.0, -1.0), ("latitude", -1.0, 1.0),
                                                ("both", -1.0, -1.0))


@dataclass(frozen=True)
class SignFlip:
    doc_id: str
    index: int  # of the toponym in its document's list
    flipped: str  # "longitude", "latitude" or "both"
    lat: float  # the repaired point
    lon: float


def _nearest_km(cands: Sequence[Candidate], lat: float, lon: float) -> float:
    lons = np.array([c.lon for c in cands], dtype=float)
    lats = np.array([c.lat for c in cands], dtype=float)
    return float(haversine_matrix(lons, lats, np.array([lon]), np.array([lat])).min())


def reachable(cands: Sequence[Candidate], lat: float, lon: float, *, radius_km: float = RADIUS_KM) -> bool:
    """Whether some place of ``cands`` (the gazetteer's places of the gold span's name) lies within ``radius_km``
    of the gold point: only then can a ranking of them be right at 161 km."""
    usable = [c for c in cands if c.lat is not None and c.lon is not None]
    return bool(usable) and _nearest_km(usable, lat, lon) <= radius_km


def sign_flip(cands: Sequence[Candidate], lat: float, lon: float, *,
              radius_km: float = RADIUS_KM) -> tuple[str, float, float] | None:
    """``(which, lat, lon)``: the repaired point when the gold point (``lat``, ``lon``) lost a sign (no place of
    ``cands`` near it, one near it with a sign negated), else None."""
    usable = [c for c in cands if c.lat is not None and c.lon is not None]
    if not usable or _nearest_km(usable, lat, lon) <= radius_km:
        return None
    for name, fa, fo in FLIPS:
        if _nearest_km(usable, lat * fa, lon * fo) <= radius_km:
            return name, lat * fa, lon * fo
    return None


def check_signs(docs: Iterable[GoldDocument], index: object, *, radius_km: float = RADIUS_KM) -> list[SignFlip]:
    """The gold points of ``docs`` that lost a sign, judged by the names in ``index`` (a
    :class:`~georeset.pipelines.geoparse.candidates.CandidateIndex`, or anything with its ``lookup``)."""
    out: list[SignFlip] = []
    for doc in docs:
        keys = {name_key(doc.text[t.start:t.end]) for t in doc.toponyms if t.lat is not None and t.lon is not None}
        found = index.lookup(keys)  # type: ignore[attr-defined]
        for i, t in enumerate(doc.toponyms):
            if t.lat is None or t.lon is None:
                continue
            flip = sign_flip(found.get(name_key(doc.text[t.start:t.end]), []), t.lat, t.lon, radius_km=radius_km)
            if flip is not None:
                out.append(SignFlip(doc.doc_id, i, *flip))
    return out


def repaired(docs: Sequence[GoldDocument], flips: Iterable[SignFlip]) -> list[GoldDocument]:
    """``docs`` with the points of ``flips`` replaced by their repaired ones (new objects; ``docs`` unchanged)."""
    by_doc: dict[str, dict[int, SignFlip]] = {}
    for f in flips:
        by_doc.setdefault(f.doc_id, {})[f.index] = f
    out = []
    for d in docs:
        fix = by_doc.get(d.doc_id)
        if not fix:
            out.append(d)
            continue
        tops: list[GoldToponym] = [replace(t, lat=fix[i].lat, lon=fix[i].lon) if i in fix else t
                                   for i, t in enumerate(d.toponyms)]
        out.append(replace(d, toponyms=tops))
    return out
