"""First-order division points: the box of member cities, or the ISO 3166-2 centroid where the two disagree widely.

Reference points are GeoNames' own (geonames.org, feature pages of the divisions), the convention LGL's gold
annotations follow."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import pytest

from georeset.pipelines.geoparse import name_key
from georeset.pipelines.geoparse.candidates import CandidateIndex
from georeset.pipelines.geoparse.centroids import (
    CENTROID_SOURCE,
    MAX_SEPARATION_KM,
    choose_point,
    load_centroids,
)
from georeset.pipelines.geoparse.ranking import haversine_km

if find_spec("iso3166_2") is None:  # not importorskip: importing the package is what the loader avoids
    pytest.skip("iso3166-2 is not installed", allow_module_level=True)

# GeoNames' points (lat, lon) of some first-order divisions
GEONAMES = {
    ("CA", "Ontario"): (49.25014, -84.49983),
    ("CA", "Quebec"): (52.00017, -71.99907),
    ("US", "Alaska"): (64.00028, -150.00028),
    ("AU", "Western Australia"): (-25.0, 122.0),
    ("US", "Ohio"): (40.25034, -83.00018),
    ("US", "Connecticut"): (41.66704, -72.66648),
}


@pytest.fixture(scope="module")
def index(gazetteer: tuple[Any, Any]) -> CandidateIndex:
    return CandidateIndex.from_tables(*gazetteer)


def _adm1(index: CandidateIndex, cc: str, name: str) -> Any:
    cands = index.lookup([name_key(name)]).get(name_key(name), [])
    return next(c for c in cands if c.feature_code == "ADM1" and c.country_code == cc)


def test_choose_point_rule() -> None:
    toronto, north = (-79.4, 43.7), (-86.0, 50.0)
    assert choose_point(toronto, None) == (toronto, False)
    assert choose_point(None, north) == (north, True)
    assert choose_point(toronto, north) == (north, True)  # ~850 km apart
    near = (-79.0, 44.5)  # ~95 km from the box centre: the box centre stands
    assert haversine_km(*toronto, *near) < MAX_SEPARATION_KM
    assert choose_point(toronto, near) == (toronto, False)


def test_centroids_loaded_without_importing_the_package() -> None:
    import sys

    cents = load_centroids()
    assert cents is not None and len(cents.by_code) > 4000
    assert "iso3166_2" not in sys.modules  # its module imports requests and fuzzy matching: only the data is read
    lon, lat = cents.get("CA", code="CA-ON") or (0.0, 0.0)
    assert -90 < lon < -80 and 47 < lat < 53
    assert cents.get("CA", name="Ontario") == cents.get("CA", code="CA-ON")
    assert cents.get("CA", code="XX-99") is None and cents.get("CA", code="XX-99", name="Nowhere") is None


@pytest.mark.parametrize("cc,name", [("CA", "Ontario"), ("CA", "Quebec"), ("US", "Alaska"),
                                     ("AU", "Western Australia")])
def test_wide_divisions_take_the_centroid(index: CandidateIndex, cc: str, name: str) -> None:
    place = _adm1(index, cc, name)
    lat, lon = GEONAMES[(cc, name)]
    assert haversine_km(place.lon, place.lat, lon, lat) < 161  # the box of cities was 324-647 km off


@pytest.mark.parametrize("cc,name", [("US", "Ohio"), ("US", "Connecticut")])
def test_compact_divisions_keep_the_box_centre(index: CandidateIndex, gazetteer: tuple[Any, Any], cc: str,
                                               name: str) -> None:
    place = _adm1(index, cc, name)
    lat, lon = GEONAMES[(cc, name)]
    assert haversine_km(place.lon, place.lat, lon, lat) < 161
    places = gazetteer[0].to_pylist()
    row = next(p for p in places if p["place_id"] == place.place_id)
    assert CENTROID_SOURCE not in (row["source"] or "")
    moved = [p for p in places if CENTROID_SOURCE in (p["source"] or "")]
    assert 10 < len(moved) < 200 and all(p["feature_code"] == "ADM1" for p in moved)
