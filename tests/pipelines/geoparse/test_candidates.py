"""The candidate index: a name is looked up under either of its spellings ("Mt." and "Mount", "St." and "Saint")."""

from __future__ import annotations

from georeset.pipelines.geoparse.candidates import CandidateIndex, spellings

PLACES = [
    {"place_id": "ia", "name": "Mount Pleasant", "feature_class": "P", "feature_code": "PPL", "country_code": "US",
     "admin1_code": "IA", "population": 8433, "lon": -91.56, "lat": 40.96},
    {"place_id": "sc", "name": "Mount Pleasant", "feature_class": "P", "feature_code": "PPL", "country_code": "US",
     "admin1_code": "SC", "population": 81317, "lon": -79.86, "lat": 32.79},
    {"place_id": "mo", "name": "St. Louis", "feature_class": "P", "feature_code": "PPL", "country_code": "US",
     "admin1_code": "MO", "population": 279695, "lon": -90.20, "lat": 38.63},
    {"place_id": "sn", "name": "Saint-Louis", "feature_class": "P", "feature_code": "PPL", "country_code": "SN",
     "admin1_code": "14", "population": 176000, "lon": -16.49, "lat": 16.03},
]
NAMES = [
    {"name_key": "mount pleasant", "place_id": "ia", "is_primary": True},
    {"name_key": "mount pleasant", "place_id": "sc", "is_primary": True},
    {"name_key": "mt pleasant", "place_id": "sc", "is_primary": False},  # only one of them filed under "Mt"
    {"name_key": "st louis", "place_id": "mo", "is_primary": True},
    {"name_key": "saint louis", "place_id": "sn", "is_primary": True},
    {"name_key": "saint louis", "place_id": "mo", "is_primary": False},
]


def test_spellings_of_a_name() -> None:
    assert spellings("mt pleasant") == ["mt pleasant", "mount pleasant"]
    assert spellings("saint louis") == ["saint louis", "st louis"]
    assert spellings("ft worth") == ["ft worth", "fort worth"]
    assert spellings("mount") == ["mount"]  # one word: no other spelling
    assert spellings("paris") == ["paris"]


def test_lookup_finds_the_places_filed_under_the_other_spelling() -> None:
    index = CandidateIndex.from_tables(PLACES, NAMES)
    found = index.lookup(["mt pleasant", "st louis", "saint louis", "mount pleasant"])
    # "Mt. Pleasant" finds the Iowa town too, which GeoNames files only as "Mount Pleasant"
    assert [c.place_id for c in found["mt pleasant"]] == ["sc", "ia"]
    assert [c.place_id for c in found["mount pleasant"]] == ["sc", "ia"]
    # a place filed under both spellings counts once, as a match of its own name when either spelling is
    by_id = {c.place_id: c for c in found["mt pleasant"]}
    assert by_id["sc"].is_primary and by_id["ia"].is_primary
    assert [c.place_id for c in found["st louis"]] == ["mo", "sn"] == [c.place_id for c in found["saint louis"]]
    assert all(c.is_primary for c in found["saint louis"])
    assert index.lookup(["paris"]) == {"paris": []}
