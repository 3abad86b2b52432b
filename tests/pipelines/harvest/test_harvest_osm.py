from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyrosm
import pytest
from shapely import wkt

from georeset.errors import InputError
from georeset.pipelines.harvest import caption, harvest_osm

WHEN = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def test_rows() -> list[dict]:  # type: ignore[type-arg]
    return harvest_osm(Path(pyrosm.get_data("test_pbf")), retrieved_at=WHEN)


def test_named_documents(test_rows: list[dict]) -> None:  # type: ignore[type-arg]
    assert len(test_rows) > 50
    ids = [r["doc_id"] for r in test_rows]
    assert len(ids) == len(set(ids))
    for r in test_rows:
        assert r["doc_id"] == f"osm:{r['source_id']}" and r["source"] == "osm"
        assert r["source_id"].split("/")[0] in {"node", "way", "relation"}
        assert r["title"] and r["title"] in r["text"]  # after the ground sentence (captions.add_ground_context)
        assert -180 <= r["lon"] <= 180 and -90 <= r["lat"] <= 90
        assert 26.5 < r["lon"] < 27.5 and 60.3 < r["lat"] < 60.7  # Kotka, Finland
        assert wkt.loads(r["geom_wkt"]).is_valid
        assert json.loads(r["tags"])["name"] == r["title"]
        assert r["licence"] == "ODbL-1.0" and len(r["content_hash"]) == 64
        assert r["retrieved_at"].tzinfo is None  # naive UTC for the TIMESTAMP column


def test_roads_deduplicated_by_name(test_rows: list[dict]) -> None:  # type: ignore[type-arg]
    roads = [r for r in test_rows if "highway" in json.loads(r["tags"])]
    names = [r["title"] for r in roads]
    assert roads and len(names) == len(set(names))


def test_deterministic_and_limit() -> None:
    pbf = Path(pyrosm.get_data("test_pbf"))
    a = harvest_osm(pbf, retrieved_at=WHEN, limit=10)
    b = harvest_osm(pbf, retrieved_at=WHEN, limit=10)
    assert len(a) == 10 and [r["content_hash"] for r in a] == [r["content_hash"] for r in b]


def test_bbox_and_empty_area() -> None:
    pbf = Path(pyrosm.get_data("test_pbf"))
    with pytest.raises(InputError, match="no named OSM features"):
        harvest_osm(pbf, bbox=(10.0, 10.0, 10.1, 10.1), retrieved_at=WHEN)
    assert harvest_osm(pbf, bbox=(10.0, 10.0, 10.1, 10.1), retrieved_at=WHEN, allow_empty=True) == []
    with pytest.raises(InputError, match="bbox"):
        harvest_osm(pbf, bbox=(27.0, 60.6, 26.9, 60.5), retrieved_at=WHEN)


@pytest.mark.parametrize("content", [b"", b"this is not a pbf file at all", b"\x00\x00\x00\x0dOSMHeader"])
def test_corrupt_pbf(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(content)
    with pytest.raises(InputError) as info:
        harvest_osm(bad, retrieved_at=WHEN)
    assert str(bad) in str(info.value) and info.value.hint


def test_missing_pbf(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        harvest_osm(tmp_path / "nope.osm.pbf", retrieved_at=WHEN)


def test_caption() -> None:
    tags = {"leisure": "park", "wheelchair": "yes"}
    assert caption("Kaivopuisto", tags, place="Helsinki") == (
        "Kaivopuisto, a park (leisure=park) in Helsinki; wheelchair accessible."
    )
    assert caption("X", {"amenity": "arts_centre", "addr:city": "Espoo"}) == "X, an arts centre (amenity=arts_centre) in Espoo."
    assert caption("Y", {}) == "Y."
