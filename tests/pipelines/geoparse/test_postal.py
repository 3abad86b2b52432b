"""US villages from the postal table: which ZIP cities become places, and that the geoparser then finds them."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import pytest

from georeset.pipelines.geoparse.postal import SAME_PLACE_KM, postal_places


def _zip(city: str, state: str, lon: float, lat: float, kind: str = "STANDARD", active: bool = True) -> dict[str, Any]:
    return {"city": city, "state": state, "long": str(lon), "lat": str(lat), "zip_code_type": kind, "active": active}


def test_a_city_is_the_median_of_its_codes_and_known_towns_are_not_repeated() -> None:
    records = [
        _zip("Brackwater", "IA", -91.0, 41.0), _zip("Brackwater", "IA", -91.2, 41.2), _zip("Brackwater", "IA", -95.0, 41.1),
        _zip("Brackwater", "MN", -95.0, 46.0),            # same name, another state: its own place
        _zip("Fenmoor", "TX", -96.0, 31.0),               # a town the gazetteer has, 10 km away: not repeated
        _zip("Saltcombe", "VA", -77.0, 37.0),             # a namesake the gazetteer has far away: kept
        _zip("Saint Wexby", "MO", -90.5, 38.8),           # the gazetteer's "St. Wexby", written out: not repeated
        _zip("Ghostville", "OH", -81.0, 40.0, active=False),
        _zip("Fort Nowhere", "AE", 10.0, 50.0, kind="MILITARY"),
        _zip("Acme Corp", "NY", -73.0, 40.8, kind="UNIQUE"),
        _zip("Nocoords", "OH", -81.0, 40.0) | {"lat": ""},
    ]
    known = [("fenmoor", -96.1, 31.0), ("saltcombe", -120.0, 45.0), ("st wexby", -90.5, 38.8)]
    got = {(p.name, p.state): p for p in postal_places(known, records=records)}
    assert set(got) == {("Brackwater", "IA"), ("Brackwater", "MN"), ("Saltcombe", "VA")}
    ia = got[("Brackwater", "IA")]
    assert (ia.lon, ia.lat, ia.n_codes) == (-91.2, 41.1, 3)  # the median, not the mean pulled by the far code
    assert ia.place_id == "uspostal:IA.brackwater" != got[("Brackwater", "MN")].place_id
    assert SAME_PLACE_KM > 10


def test_nothing_known_keeps_every_city_once() -> None:
    records = [_zip("Brackwater", "IA", -91.0, 41.0, kind="PO BOX"), _zip("Brackwater", "IA", -91.0, 41.0)]
    assert [p.name for p in postal_places([], records=records)] == ["Brackwater"]


@pytest.fixture(scope="module")
def gazetteer500() -> tuple[Any, Any]:
    from georeset.pipelines.geoparse.gazetteer import cached_gazetteer_rows

    return cached_gazetteer_rows(500)


def test_the_default_gazetteer_has_villages_below_its_population_cut(gazetteer500: tuple[Any, Any],
                                                                     gazetteer: tuple[Any, Any]) -> None:
    places, _ = gazetteer500
    postal = places.filter(pc.starts_with(places["source"], "US postal"))
    assert 5000 < postal.num_rows < 40000
    rows = {r["name"]: r for r in postal.to_pylist()}
    atalissa = rows["Atalissa"]  # Iowa, about 300 people: not in GeoNames' cities500
    assert (atalissa["country_code"], atalissa["admin1_code"], atalissa["feature_class"]) == ("US", "IA", "P")
    assert atalissa["population"] == 0 and abs(atalissa["lat"] - 41.57) < 0.1 and abs(atalissa["lon"] + 91.17) < 0.1
    # towns the gazetteer has are not repeated; a village of the name elsewhere is its own place (Des Moines, NM)
    repeated = [(r["name"], r["admin1_code"]) for r in postal.to_pylist()
                if (r["name"], r["admin1_code"]) in {("Chicago", "IL"), ("Des Moines", "IA"), ("Houston", "TX")}]
    assert repeated == [] and rows["Des Moines"]["admin1_code"] == "NM"
    ids = places["place_id"].to_pylist()
    assert len(ids) == len(set(ids))
    small = gazetteer[0]  # the tests' 15,000 cut: no postal places (they would be towns of unknown population)
    assert small.filter(pc.starts_with(small["source"], "US postal")).num_rows == 0


def test_the_geoparser_places_a_village_only_the_postal_table_knows(gazetteer500: tuple[Any, Any]) -> None:
    from georeset.pipelines.geoparse import Geoparser

    geoparser = Geoparser.from_rows(*gazetteer500)
    text = "A barn fire near Atalissa, Iowa, was put out by volunteers from West Liberty on Tuesday."
    got = {t.surface: t for t in geoparser.parse(text)}
    assert "Atalissa" in got, sorted(got)
    t = got["Atalissa"]
    assert t.place_id == "uspostal:IA.atalissa", t
    assert t.lat is not None and abs(t.lat - 41.57) < 0.2 and t.lon is not None and abs(t.lon + 91.17) < 0.2
