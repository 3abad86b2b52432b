"""The catalogue describes itself: every table, view and column carries a comment; `georeset schema` prints them;
the distance macros agree with pyproj's great-circle distance and need no spatial extension."""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pyproj
import pytest
from typer.testing import CliRunner

from georeset.cli import app
from georeset.data_catalog import open_catalog
from georeset.data_catalog.schema_doc import describe, uncommented

runner = CliRunner()


def test_every_column_of_a_fresh_catalogue_has_a_comment(tmp_path: Path) -> None:
    con = open_catalog(str(tmp_path / "c.duckdb"))
    try:
        rels = describe(con)
        assert {"documents", "patches", "pairs", "paired_corpus", "resolved_toponyms"} <= {r["name"] for r in rels}
        assert uncommented(con) == []
    finally:
        con.close()


def test_derived_search_index_is_commented_too(embedded) -> None:  # type: ignore[no-untyped-def]
    from georeset.data_catalog import connect

    con = connect(embedded.index_path, read_only=True)
    try:
        names = {r["name"] for r in describe(con)}
        assert {"vss_patch", "vss_document", "vss_meta", "index_meta", "documents"} <= names
        assert uncommented(con) == []
    finally:
        con.close()


def test_schema_command_explains_columns(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    open_catalog(str(db)).close()
    r = runner.invoke(app, ["schema", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output.strip().splitlines()[-1])
    pairs = next(x for x in doc["relations"] if x["name"] == "pairs")
    assert [c["name"] for c in pairs["columns"]][:3] == ["pair_id", "doc_id", "patch_id"]
    assert all(c["comment"] for c in pairs["columns"])
    assert {"within_km", "km_between", "haversine_km"} <= {m["name"] for m in doc["macros"]}
    r = runner.invoke(app, ["schema", "--db", str(db), "--table", "documents"])
    assert r.exit_code == 0 and "EPSG:4326" in r.output and "patches" not in r.output.split("\n", 1)[0]
    r = runner.invoke(app, ["schema", "--db", str(db), "--table", "nope"])
    assert r.exit_code == 2 and "--table" in r.output


@pytest.fixture(scope="module")
def macros_con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """The catalogue's macros on a plain connection without the spatial extension."""
    from georeset.data_catalog.connect import open_lake

    db = tmp_path_factory.mktemp("m") / "c.duckdb"
    open_catalog(str(db)).close()
    con = open_lake(db, read_only=True, extensions=())
    assert "spatial" not in {r[0] for r in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded"
                                                          ).fetchall()}
    return con


def _points(n: int, seed: int) -> list[tuple[float, float, float, float]]:
    rng = random.Random(seed)
    pts = [(rng.uniform(-180, 180), rng.uniform(-89, 89), rng.uniform(-180, 180), rng.uniform(-89, 89))
           for _ in range(n)]
    near = []
    for _ in range(n):  # pairs a few km apart, also across the antimeridian and near the poles
        lon, lat = rng.choice([(179.99, 10.0), (-179.99, -40.0), (24.95, 60.17), (0.0, 89.95), (10.0, -89.95)])
        near.append((lon, lat, ((lon + rng.uniform(-0.3, 0.3) + 180) % 360) - 180,
                     max(-90.0, min(90.0, lat + rng.uniform(-0.05, 0.05)))))
    return pts + near


def test_km_between_matches_pyproj_great_circle(macros_con: duckdb.DuckDBPyConnection) -> None:
    geod = pyproj.Geod(a=6371008.8, b=6371008.8)  # the sphere the macros and pairing use
    for lon1, lat1, lon2, lat2 in _points(200, 1):
        got = macros_con.execute("SELECT km_between(?, ?, ?, ?)", [lon1, lat1, lon2, lat2]).fetchone()[0]  # type: ignore[index]
        want = geod.inv(lon1, lat1, lon2, lat2)[2] / 1000
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_within_km_prefilter_never_drops_a_match(macros_con: duckdb.DuckDBPyConnection) -> None:
    rows = _points(300, 2)
    for km in (0.5, 5.0, 50.0, 2000.0):
        for lon1, lat1, lon2, lat2 in rows:
            within, dist = macros_con.execute("SELECT within_km(?, ?, ?, ?, ?), km_between(?, ?, ?, ?)",
                                              [lon1, lat1, lon2, lat2, km, lon1, lat1, lon2, lat2]).fetchone()  # type: ignore[misc]
            assert within == (dist <= km), (lon1, lat1, lon2, lat2, km, dist)
