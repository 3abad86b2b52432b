"""Regions the gazetteer knows only through their compass-named parts (parts.py)."""

from __future__ import annotations

from typing import Any

from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.parts import part_keys, regions_from_parts
from georeset.pipelines.geoparse.ranking import haversine_km


def _division(name: str, cc: str, code: str, lat: float, lon: float, pop: int = 1000) -> Candidate:
    return Candidate(f"t:{name}", name, "A", code, cc, "01", pop, lon, lat, True, 100_000.0)


class _Index:
    def __init__(self, places: dict[str, list[Candidate]]) -> None:
        self.places = places

    def lookup(self, keys: Any) -> dict[str, list[Candidate]]:
        return {k: self.places[k] for k in keys if k in self.places}


INDEX = _Index({
    "north darfur": [_division("North Darfur", "SD", "ADM1", 15.8, 25.5, 300)],
    "south darfur": [_division("South Darfur", "SD", "ADM1", 11.2, 24.9, 500),
                     Candidate("t:town", "South Darfur", "P", None, "SD", "01", 50, 24.0, 11.0, False)],
    "west darfur": [_division("West Darfur", "SD", "ADM1", 12.8, 23.0, 100)],
    "north ossetia": [_division("North Ossetia", "RU", "ADM1", 43.2, 44.3)],
    "north tyrol": [_division("North Tyrol", "AT", "ADM1", 47.3, 11.4)],
    "south tyrol": [_division("South Tyrol", "IT", "ADM2", 46.7, 11.4)],
})


def test_a_region_is_the_union_of_its_parts() -> None:
    out = regions_from_parts(["darfur"], INDEX)
    [region] = out["darfur"]
    assert region.name == "Darfur" and region.feature_code == "RGN" and region.country_code == "SD"
    assert abs(region.lat - (15.8 + 11.2 + 12.8) / 3) < 1e-9 and region.population == 900  # type: ignore[operator]
    # the box of the parts' points (about 510 km north-south) and the parts' own extent
    assert region.extent_m is not None and region.extent_m > 500_000
    assert all(haversine_km(region.lon, region.lat, c.lon, c.lat) < 400  # type: ignore[arg-type]
               for c in (INDEX.places["north darfur"][0], INDEX.places["west darfur"][0]))


def test_one_part_or_parts_in_two_countries_make_no_region() -> None:
    assert regions_from_parts(["ossetia", "tyrol", "kivu"], INDEX) == {}
    assert part_keys("north darfur") == [] and part_keys("a b c") == [] and "east timor" in part_keys("timor")


def test_the_geoparser_places_darfur_and_kivu(geoparser: Any) -> None:
    """With the shipped gazetteer: a name the gazetteer lacks, placed by its parts."""
    darfur = next(t for t in geoparser.parse("Fighting continued in Darfur on Tuesday.") if t.surface == "Darfur")
    kivu = next(t for t in geoparser.parse("Rebels advanced in Kivu near Goma.") if t.surface == "Kivu")
    assert (darfur.country_code, darfur.feature_code, kivu.country_code) == ("SD", "RGN", "CD")
    assert haversine_km(darfur.lon, darfur.lat, 24.5, 13.0) < 161  # Darfur's middle
    assert haversine_km(kivu.lon, kivu.lat, 28.9, -1.8) < 161


def test_the_index_names_what_follows_a_compass_word_and_regions_skip_the_rest() -> None:
    """One scan tells which names can have compass-named parts, so a text's other unknown names cost no lookup."""
    from georeset.pipelines.geoparse.candidates import CandidateIndex

    places = [{"place_id": f"p{i}", "name": n, "feature_class": "A", "feature_code": "ADM1", "country_code": "SD",
               "admin1_code": f"0{i}", "population": 100, "lon": 24.0 + i, "lat": 12.0 + i, "extent_m": None}
              for i, n in enumerate(("North Darfur", "South Darfur", "Lower Saxony"))]
    names = [{"name_key": p["name"].lower(), "place_id": p["place_id"], "is_primary": True} for p in places]
    index = CandidateIndex.from_tables(places, names)
    assert index.rests_after(("north", "south", "lower")) == {"darfur", "saxony"}
    asked: list[str] = []
    real = index.lookup

    def spy(keys: Any) -> dict[str, list[Candidate]]:
        keys = list(keys)
        asked.extend(keys)
        return real(keys)

    index.lookup = spy  # type: ignore[method-assign]
    out = regions_from_parts(["darfur", "schiff", "reserve america"], index)
    assert out["darfur"][0].country_code == "SD" and set(out) == {"darfur"}
    assert asked and all(k.endswith("darfur") for k in asked)  # nothing asked for the others
