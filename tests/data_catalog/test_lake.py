"""DuckLake 1.5.5 (embedded: DuckDB metadata + Parquet data in the workdir): what it supports, the upsert that keeps
natural keys unique without constraints, snapshot lineage, and bad settings."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from georeset.data_catalog import connect
from georeset.data_catalog.lake import (
    SETTING_DATA,
    SETTING_METADATA,
    LakeSettings,
    attach,
    maintain,
    rows_at,
    snapshot_id,
    upsert,
)
from georeset.errors import InputError

T1, T2 = dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2)
DDL = ("CREATE TABLE lake.documents (doc_id VARCHAR NOT NULL, text VARCHAR, geom GEOMETRY, "
       "retrieved_at TIMESTAMP, content_hash VARCHAR)")


@pytest.fixture
def lake(tmp_path: Path):  # type: ignore[no-untyped-def]
    con = connect(":memory:")
    attach(con, LakeSettings.for_workdir(tmp_path, env={}))
    con.execute(DDL)
    yield con
    con.close()


def _src(rows: list[tuple[str, str, dt.datetime]]) -> str:
    values = ", ".join(f"('{d}', '{t}', ST_Point(24.9, 60.1), TIMESTAMP '{w}', md5('{t}'))" for d, t, w in rows)
    return f"SELECT * FROM (VALUES {values}) v(doc_id, text, geom, retrieved_at, content_hash)"


def test_embedded_default_lives_in_the_workdir(tmp_path: Path) -> None:
    s = LakeSettings.for_workdir(tmp_path, env={})
    assert s.embedded and not s.remote_data
    con = connect(":memory:")
    try:
        attach(con, s)
        con.execute(DDL)
        con.execute("INSERT INTO lake.documents VALUES ('a', 'x', ST_Point(1, 2), TIMESTAMP '2024-01-01', 'h')")
    finally:
        con.close()
    assert (tmp_path / "lake" / "metadata.sqlite").is_file() and s.metadata.startswith("sqlite:")
    assert (tmp_path / "lake" / "data").is_dir()


def test_what_ducklake_supports(lake: duckdb.DuckDBPyConnection) -> None:
    lake.execute("USE lake")
    lake.execute("COMMENT ON TABLE documents IS 'harvested texts'")
    lake.execute("COMMENT ON COLUMN documents.text IS 'plain text'")
    lake.execute("CREATE VIEW located AS SELECT doc_id FROM documents WHERE geom IS NOT NULL")
    lake.execute("CREATE MACRO plus_one(a) AS a + 1")
    lake.execute("ALTER TABLE documents ADD COLUMN lang VARCHAR")
    lake.execute("CREATE TABLE emb (owner_id VARCHAR, vec FLOAT[])")
    lake.execute("INSERT INTO emb VALUES ('a', [1, 2, 3])")
    assert lake.execute("SELECT plus_one(1)").fetchone() == (2,)
    assert lake.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'documents'").fetchone() == (
        "harvested texts",)
    with pytest.raises(duckdb.Error, match="PRIMARY KEY"):
        lake.execute("CREATE TABLE pk (id VARCHAR PRIMARY KEY)")
    with pytest.raises(duckdb.Error, match="FLOAT\\[3\\]"):
        lake.execute("CREATE TABLE arr (vec FLOAT[3])")  # HNSW needs fixed arrays: a derived index database


def test_upsert_keeps_keys_unique_and_never_goes_back_in_time(lake: duckdb.DuckDBPyConnection) -> None:
    r = upsert(lake, "documents", _src([("a", "one", T2), ("b", "two", T1), ("b", "two", T1)]), ["doc_id"])
    assert (r.staged, r.inserted, r.updated) == (2, 2, 0)
    again = upsert(lake, "documents", _src([("a", "one", T2), ("b", "two", T1)]), ["doc_id"])
    assert (again.inserted, again.updated) == (0, 0)
    older = upsert(lake, "documents", _src([("a", "stale", T1)]), ["doc_id"])
    assert (older.inserted, older.updated) == (0, 0)
    newer = upsert(lake, "documents", _src([("b", "revised", T2)]), ["doc_id"])
    assert (newer.inserted, newer.updated) == (0, 1)
    rows = lake.execute("SELECT doc_id, text FROM lake.documents ORDER BY 1").fetchall()
    assert rows == [("a", "one"), ("b", "revised")]


def test_a_snapshot_id_reproduces_its_rows_after_later_commits(lake: duckdb.DuckDBPyConnection) -> None:
    first = upsert(lake, "documents", _src([("a", "one", T1), ("b", "two", T1)]), ["doc_id"])
    upsert(lake, "documents", _src([("c", "three", T2), ("a", "one, revised", T2)]), ["doc_id"])
    assert snapshot_id(lake) > first.snapshot_id
    assert rows_at(lake, "documents", first.snapshot_id, columns="doc_id, text") == [("a", "one"), ("b", "two")]
    assert lake.execute("SELECT count(*) FROM lake.documents").fetchone() == (3,)


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    con = connect(":memory:")
    try:
        with pytest.raises(InputError, match=SETTING_METADATA):
            attach(con, LakeSettings(str(tmp_path / "nope" / "m.ducklake"), str(tmp_path / "d")), create=False)
        with pytest.raises(InputError, match=SETTING_METADATA):
            attach(con, LakeSettings(str(tmp_path / "m.ducklake"), str(tmp_path / "d")), read_only=True)
        (tmp_path / "file").write_text("x")
        with pytest.raises(InputError, match=SETTING_DATA):
            attach(con, LakeSettings(str(tmp_path / "m.ducklake"), str(tmp_path / "file")))
        # a PostgreSQL that refuses (nothing listens on port 9): the ducklake extension cannot reach it
        refused = LakeSettings("postgres:dbname=lake host=127.0.0.1 port=9 connect_timeout=2", str(tmp_path / "d"))
        with pytest.raises(InputError, match=SETTING_METADATA):
            attach(con, refused)
    finally:
        con.close()
    assert not (tmp_path / "nope").exists()


def test_duckdb_file_metadata_is_held_by_one_process_sqlite_metadata_is_not(tmp_path: Path) -> None:
    """Finding that shapes the design: DuckDB-file metadata admits one process at a time, so the embedded default
    keeps its metadata in SQLite, where a second process attaches (reads, or commits) while the first holds it."""
    code = ("import sys; from georeset.data_catalog import connect; "
            "from georeset.data_catalog.lake import LakeSettings, attach; "
            "from georeset.errors import InputError\n"
            "try:\n    c = connect(':memory:'); attach(c, LakeSettings(sys.argv[1], sys.argv[2]), read_only=True)\n"
            "    print('ROWS', c.execute('SELECT count(*) FROM lake.documents').fetchone()[0])\n"
            "except InputError as e:\n    print('REFUSED', e); sys.exit(3)\n")
    for meta, held in ((str(tmp_path / "d" / "metadata.ducklake"), True),
                       ("sqlite:" + str(tmp_path / "s" / "metadata.sqlite"), False)):
        s = LakeSettings(meta, str(tmp_path / ("d" if held else "s") / "data") + "/")
        con = connect(":memory:")
        try:
            attach(con, s)
            con.execute(DDL)
            con.execute("INSERT INTO lake.documents VALUES ('a', 'x', NULL, TIMESTAMP '2024-01-01', 'h')")
            r = subprocess.run([sys.executable, "-c", code, s.metadata, s.data_path], capture_output=True,
                               text=True, timeout=120)
        finally:
            con.close()
        if held:
            assert r.returncode == 3 and SETTING_METADATA in r.stdout, r.stdout + r.stderr
        else:
            assert r.returncode == 0 and "ROWS 1" in r.stdout, r.stdout + r.stderr


def test_maintenance_compacts_small_files_and_keeps_recent_snapshots(lake: duckdb.DuckDBPyConnection,
                                                                     tmp_path: Path) -> None:
    lake.execute("CALL lake.set_option('data_inlining_row_limit', 0)")  # every commit writes a Parquet file
    snaps = []
    for i in range(6):
        snaps.append(upsert(lake, "documents", _src([(f"k{i}", f"text {i}", T1)]), ["doc_id"]).snapshot_id)
    upsert(lake, "documents", _src([("k0", "text 0 revised", T2)]), ["doc_id"])  # a delete + re-insert
    r = maintain(lake, keep_days=30)
    assert r["tables"]["documents"]["files_before"] >= 6
    assert r["tables"]["documents"]["files_after"] < r["tables"]["documents"]["files_before"]
    assert r["snapshots_expired"] == []  # all younger than 30 days
    assert len(rows_at(lake, "documents", snaps[2])) == 3
    assert lake.execute("SELECT count(*), count(DISTINCT doc_id) FROM lake.documents").fetchone() == (6, 6)
    # keep_days=0: every snapshot expires but the current one and the one a shard names; rows stay
    r0 = maintain(lake, keep_days=0, keep_versions=[snaps[2]])
    assert r0["snapshots_expired"] and snaps[2] not in r0["snapshots_expired"] and snaps[3] in r0["snapshots_expired"]
    assert r0["tables"]["documents"]["rows_after"] == r0["tables"]["documents"]["rows_before"] == 6
    assert r0["files_deleted"] > 0
    assert sorted(r[0] for r in rows_at(lake, "documents", snaps[2], columns="doc_id")) == ["k0", "k1", "k2"]
    assert lake.execute("SELECT text FROM lake.documents WHERE doc_id = 'k0'").fetchone() == ("text 0 revised",)
    with pytest.raises(duckdb.Error):  # an expired snapshot is gone
        rows_at(lake, "documents", snaps[3])



def _use_throwaway_lake() -> tuple[list[Path], tuple[int, ...] | None]:
    """Open a throwaway lake, write and read a row, close it; no assert here (pytest's assert rewriting snapshots
    the frame's locals, which would keep the connection alive)."""
    import tempfile

    from georeset.data_catalog.connect import open_lake

    con = open_lake(":memory:")
    con.execute("CREATE TABLE lake.t AS SELECT 1 AS x")
    made = [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("georeset-lake-")]
    row = con.execute("SELECT x FROM lake.t").fetchone()
    con.close()
    return made, row


def test_throwaway_lake_folder_goes_with_its_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``open_lake(":memory:")`` makes a lake in a temporary folder; once the connection is gone the folder is
    removed, so tests and probes leave nothing in the temp dir."""
    import gc
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made, row = _use_throwaway_lake()
    gc.collect()
    assert row == (1,)
    assert len(made) == 1 and made[0].parent == tmp_path
    assert not made[0].exists()
