"""Catalogue: offline extensions, migrations, staging -> merge without duplicates, crash safety."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from georeset.data_catalog import connect, merge, migrate, open_catalog, open_lake, schema_version, stage
from georeset.data_catalog.migrate import migrations
from georeset.errors import CatalogError


def _doc(i: int, text: str = "a park", h: str | None = None) -> dict[str, object]:
    return {
        "doc_id": f"osm:node/{i}", "source": "osm", "source_id": f"node/{i}", "title": f"P{i}", "text": text,
        "lon": 24.9 + i * 0.001, "lat": 60.17, "licence": "ODbL-1.0",
        "retrieved_at": dt.datetime(2026, 1, 1), "content_hash": h or f"h{i}-{text}",
    }


def test_extensions_load_from_packages_and_work() -> None:
    con = connect(":memory:")
    # spatial: distance in metres between two points (lat/lon axis order for the sphere function)
    d = con.execute("SELECT ST_Distance_Sphere(ST_Point(48.8566, 2.3522), ST_Point(51.5074, -0.1278))").fetchone()[0]
    assert 330_000 < d < 360_000
    loaded = {r[0] for r in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    assert {"spatial", "fts", "vss"} <= loaded


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    con = open_lake(tmp_path)  # the catalogue lake of a work directory
    applied = migrate(con)
    assert applied == [m[1] for m in migrations()]
    assert migrate(con) == []
    assert schema_version(con) == migrations()[-1][0]
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert {"documents", "toponyms", "places", "scenes", "patches", "pairs", "runs", "embeddings"} <= tables


def test_merge_upserts_without_duplicates(tmp_path: Path) -> None:
    con = open_catalog(tmp_path / "ws")
    stage([_doc(1), _doc(2)], table="documents", staging_dir=tmp_path)
    r1 = merge(con, table="documents", staging_dir=tmp_path)
    assert (r1.inserted, r1.total_rows) == (2, 2)
    assert list(tmp_path.joinpath("documents").glob("*.parquet")) == []
    # same rows again -> nothing changes
    stage([_doc(1), _doc(2)], table="documents", staging_dir=tmp_path)
    r2 = merge(con, table="documents", staging_dir=tmp_path)
    assert (r2.inserted, r2.updated, r2.total_rows) == (0, 0, 2)
    # a changed row (and a duplicate of it in the same batch) -> one update, still two rows
    stage([_doc(1, "a harbour"), _doc(1, "a harbour")], table="documents", staging_dir=tmp_path)
    r3 = merge(con, table="documents", staging_dir=tmp_path)
    assert (r3.inserted, r3.updated, r3.total_rows) == (0, 1, 2)
    assert con.execute("SELECT text FROM documents WHERE doc_id='osm:node/1'").fetchone()[0] == "a harbour"
    geom = con.execute("SELECT ST_X(geom) FROM documents WHERE doc_id='osm:node/2'").fetchone()[0]
    assert geom == pytest.approx(24.902)


def test_failed_merge_rolls_back_and_keeps_staged_files(tmp_path: Path) -> None:
    con = open_catalog(tmp_path / "ws")
    stage([_doc(1)], table="documents", staging_dir=tmp_path)
    merge(con, table="documents", staging_dir=tmp_path)
    bad = _doc(3)
    bad["text"] = None  # violates NOT NULL
    stage([_doc(2), bad], table="documents", staging_dir=tmp_path)
    with pytest.raises(CatalogError, match="rolled back"):
        merge(con, table="documents", staging_dir=tmp_path)
    assert con.execute("SELECT count(*) FROM documents").fetchone()[0] == 1
    assert len(list(tmp_path.joinpath("documents").glob("*.parquet"))) == 1


def test_unknown_columns_are_refused(tmp_path: Path) -> None:
    con = open_catalog(tmp_path / "ws")
    row = _doc(1)
    row["colour"] = "red"
    stage([row], table="documents", staging_dir=tmp_path)
    with pytest.raises(CatalogError, match="colour"):
        merge(con, table="documents", staging_dir=tmp_path)


def test_read_only_connection_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    open_catalog(str(db)).close()
    ro = open_lake(db, read_only=True)
    with pytest.raises(duckdb.Error):
        ro.execute("DELETE FROM documents")


def test_a_copied_work_directory_reads_and_writes_its_own_lake(tmp_path: Path) -> None:
    """DuckLake stores the absolute data path; the embedded default follows its work directory when it is moved."""
    import shutil

    con = open_catalog(tmp_path / "a")
    stage([_doc(1)], table="documents", staging_dir=tmp_path / "st")
    merge(con, table="documents", staging_dir=tmp_path / "st")
    con.close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    con = open_catalog(tmp_path / "b")
    stage([_doc(2)], table="documents", staging_dir=tmp_path / "st")
    merge(con, table="documents", staging_dir=tmp_path / "st")
    assert con.execute("SELECT count(*) FROM documents").fetchone()[0] == 2
    con.close()
    ro = open_lake(tmp_path / "a", read_only=True, extensions=())
    assert ro.execute("SELECT count(*) FROM documents").fetchone()[0] == 1  # the original is its own lake
    ro.close()
