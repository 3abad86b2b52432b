"""Regions the gazetteer knows only through their parts: "Darfur" from North, South and West Darfur.

News names regions that no division carries whole: "Darfur", "Kivu", "Waziristan", "Sumatra". The gazetteer
(GeoNames' divisions) holds their parts, named with a compass word: "North Darfur", "South Kivu", "North
Waziristan", "West Sumatra". A name with no candidate of its own is looked up with each compass word in front of it
(:data:`DIRECTIONS`); when at least :data:`MIN_PARTS` divisions of one country answer, the region is their union:
one candidate (feature class ``A``, GeoNames' region code ``RGN``) at the mean of the parts' points, its extent
the box of the parts (their own extents included), its population their sum.

One part alone is not enough ("Ossetia": only Russia's North Ossetia answers, and South Ossetia lies in Georgia),
nor are parts in two countries. Only names the gazetteer lacks are tried, so "Carolina" and "Dakota", which have
places of their own, are never read as a union of states.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.ranking import haversine_km

__all__ = ["DIRECTIONS", "MIN_PARTS", "part_keys", "regions_from_parts"]

DIRECTIONS = ("north", "south", "east", "west", "central", "northern", "southern", "eastern", "western",
              "upper", "lower")
MIN_PARTS = 2
_LEVEL = {"ADM1": 3, "ADM2": 2, "ADM3": 1}


def part_keys(key: str) -> list[str]:
    """The name keys of the parts a region ``key`` may have (``"darfur"`` -> ``"north darfur"``, ...); none for a
    name that already starts with a compass word or is longer than two words."""
    words = key.split()
    if not words or len(words) > 2 or words[0] in DIRECTIONS:
        return []
    return [f"{d} {key}" for d in DIRECTIONS]


def _part(cands: Iterable[Candidate]) -> Candidate | None:
    """The division a part's name stands for: the highest level, then the most populous."""
    areas = [c for c in cands if c.feature_class == "A" and c.feature_code in _LEVEL and c.lat is not None
             and c.lon is not None and c.country_code]
    return max(areas, key=lambda c: (_LEVEL[c.feature_code or ""], c.population), default=None)


def _union(key: str, parts: list[Candidate]) -> Candidate:
    lats = [float(c.lat) for c in parts]  # type: ignore[arg-type]
    lons = [float(c.lon) for c in parts]  # type: ignore[arg-type]
    lat, lon = sum(lats) / len(lats), sum(lons) / len(lons)
    south, north, west, east = min(lats), max(lats), min(lons), max(lons)
    side_km = max(haversine_km(west, lat, east, lat), haversine_km(lon, south, lon, north))
    extent = side_km * 1000.0 + max((c.extent_m or 0.0) for c in parts)
    admin1 = {c.admin1_code for c in parts}
    return Candidate(
        place_id="region:" + "+".join(sorted(c.place_id for c in parts)),
        name=" ".join(w.capitalize() for w in key.split()),
        feature_class="A", feature_code="RGN", country_code=parts[0].country_code,
        admin1_code=admin1.pop() if len(admin1) == 1 else None,
        population=sum(max(0, c.population) for c in parts), lon=lon, lat=lat, is_primary=False,
        extent_m=extent)


def regions_from_parts(keys: Iterable[str], index: Any) -> dict[str, list[Candidate]]:
    """``{key: [region candidate]}`` for each name of ``keys`` whose parts (:func:`part_keys`) are at least
    :data:`MIN_PARTS` divisions of one country in ``index`` (a
    :class:`~georeset.pipelines.geoparse.candidates.CandidateIndex`, or anything with its ``lookup``)."""
    wanted = set(keys)
    if hasattr(index, "rests_after"):  # only names that follow a compass word somewhere in the gazetteer
        wanted &= index.rests_after(DIRECTIONS)
    probes = {pk: k for k in wanted for pk in part_keys(k)}
    if not probes:
        return {}
    found = index.lookup(probes)
    parts: dict[str, dict[str, Candidate]] = {}
    for pk in sorted(found):
        part = _part(found[pk])
        if part is not None:
            parts.setdefault(probes[pk], {}).setdefault(part.place_id, part)
    out: dict[str, list[Candidate]] = {}
    for k, by_id in parts.items():
        ps = list(by_id.values())
        if len(ps) >= MIN_PARTS and len({c.country_code for c in ps}) == 1:
            out[k] = [_union(k, ps)]
    return out
