"""Geographic centres of first-order divisions from the ISO 3166-2 data the ``iso3166-2`` package ships.

A division's point built from its member cities (:func:`georeset.pipelines.geoparse.regions.trimmed_box`) is a fair
stand-in for GeoNames' own point when the division's towns spread over it (Ohio: 28 km off on LGL), but a wide
division whose towns crowd into one part of it gets a point hundreds of kilometres off: Ontario's box of cities is
centred near Toronto's hinterland, 388 km from GeoNames' point, Quebec 539 km, Western Australia 647 km, Alaska
324 km. ``iso3166-2`` (PyPI, MIT) carries a centre (``latLng``) for each of the 5,046 ISO 3166-2 subdivisions, which
its documentation describes as the geographic centroid of the subdivision's outline; those are within 137, 54, 102
and 52 km of GeoNames' points for the four above, but on compact divisions they are no closer than the box of cities
(Florida 150 km vs 106, Hawaii 170 vs 82).

:func:`choose_point` therefore keeps the box centre unless the two disagree by more than :data:`MAX_SEPARATION_KM`
(the cities then sit in one part of a wide division) and takes the centroid then. The data file is read directly
(the package's module imports ``requests`` and fuzzy matching the gazetteer does not need); without the package every
division keeps its box centre.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from georeset.pipelines.geoparse.names import name_key
from georeset.pipelines.geoparse.ranking import haversine_km

__all__ = ["CENTROID_SOURCE", "MAX_SEPARATION_KM", "Centroids", "choose_point", "load_centroids"]

#: box centre and centroid further apart than this: the centroid is the division's point (chosen between the
#: largest separation where the box centre was the better point, Hawaii 231 km, and the smallest where the centroid
#: was, Alaska 374 km, on LGL's fitted half and five divisions of Canada and Australia; a round number between)
MAX_SEPARATION_KM = 250.0
CENTROID_SOURCE = "division centroids via iso3166-2 (ISO 3166-2 subdivisions, MIT)"


class Centroids:
    """``(lon, lat)`` per ISO 3166-2 code (``"CA-ON"``) and per (country, normalised name)."""

    def __init__(self, by_code: dict[str, tuple[float, float]], by_name: dict[tuple[str, str], tuple[float, float]]
                 ) -> None:
        self.by_code = by_code
        self.by_name = by_name

    def get(self, cc: str, *, code: str | None = None, name: str | None = None) -> tuple[float, float] | None:
        """The centroid of the division with ISO code ``code``, else of the one named ``name`` in ``cc``."""
        if code and code in self.by_code:
            return self.by_code[code]
        if name:
            return self.by_name.get((cc, name_key(name)))
        return None


def _data_file() -> Path | None:
    spec = find_spec("iso3166_2")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "iso3166-2.json"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def load_centroids() -> Centroids | None:
    """The installed ``iso3166-2``'s centroids; None without the package. An installed but unreadable file raises.
    (Its version is part of the gazetteer's cache key: ``gazetteer._optional_versions``.)"""
    path = _data_file()
    if path is None:
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    by_code: dict[str, tuple[float, float]] = {}
    names: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for cc, subs in data.items():
        for code, rec in subs.items():
            ll = rec.get("latLng")
            if not (isinstance(ll, list) and len(ll) == 2):
                continue
            try:
                point = (float(ll[1]), float(ll[0]))
            except (TypeError, ValueError):
                continue
            by_code[code] = point
            if isinstance(rec.get("name"), str):
                names.setdefault((cc, name_key(rec["name"])), []).append(point)
    by_name = {k: v[0] for k, v in names.items() if len(v) == 1}  # a name two subdivisions share says nothing
    return Centroids(by_code, by_name)


def choose_point(box_centre: tuple[float, float] | None, centroid: tuple[float, float] | None,
                 max_separation_km: float = MAX_SEPARATION_KM) -> tuple[tuple[float, float] | None, bool]:
    """``(point, from_centroid)``: the box centre unless the centroid lies more than ``max_separation_km`` away
    (or there is no box centre)."""
    if centroid is None:
        return box_centre, False
    if box_centre is None:
        return centroid, True
    if haversine_km(*box_centre, *centroid) > max_separation_km:
        return centroid, True
    return box_centre, False
