"""The lake with metadata in a real PostgreSQL and data on a real S3-protocol server (moto, credentials enforced),
and every way those settings go wrong: a clear InputError naming the setting and the fix, nothing half-written."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from georeset.data_catalog import connect
from georeset.data_catalog.lake import LakeSettings, S3Settings, attach, rows_at, snapshot_id, upsert
from georeset.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from lake_servers import S3Server, create_database, postgres_server, require_servers, s3_server  # noqa: E402

DDL = "CREATE TABLE lake.documents (doc_id VARCHAR, text VARCHAR, retrieved_at TIMESTAMP, content_hash VARCHAR)"
ROWS = ("SELECT 'd' || x AS doc_id, repeat('text ', 20) || x AS text, TIMESTAMP '2024-01-01' AS retrieved_at, "
        "md5(x::VARCHAR) AS content_hash FROM range({0}, {1}) t(x)")


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    require_servers()
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    require_servers()
    with s3_server() as server:
        yield server


_n = iter(range(10_000))


@pytest.fixture
def fresh_db(pg: str) -> str:
    """A new, empty PostgreSQL database for one test."""
    return create_database(pg, f"t{next(_n)}")


def _settings(dsn: str, s3: S3Server, prefix: str, **over: str) -> LakeSettings:
    env = {**s3.env(prefix), "GEORESET_LAKE_METADATA": f"postgres:{dsn}", **over}
    return LakeSettings.for_workdir("/nonexistent-workdir", env=env)


def _ducklake_tables(dsn: str) -> int:
    con = connect(":memory:", extensions=("postgres_scanner",))
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    n = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'pg' AND table_name LIKE 'ducklake%'"
                    ).fetchone()
    con.close()
    return int(n[0])  # type: ignore[index]


def _s3_objects(s3: S3Server, prefix: str) -> list[str]:
    con = connect(":memory:", extensions=("httpfs",))
    con.execute(S3Settings.from_env(s3.env(prefix)).secret_sql("probe", f"s3://{s3.bucket}"))
    files = [r[0] for r in con.execute(f"SELECT file FROM glob('s3://{s3.bucket}/{prefix}/**')").fetchall()]
    con.close()
    return files


def test_postgres_metadata_and_s3_data_round_trip(fresh_db: str, s3: S3Server) -> None:
    settings = _settings(fresh_db, s3, "roundtrip")
    assert not settings.embedded and settings.data_path.startswith("s3://")
    con = connect(":memory:")
    attach(con, settings)
    con.execute(DDL)
    first = upsert(con, "documents", ROWS.format(0, 1000), ["doc_id"])
    second = upsert(con, "documents", ROWS.format(500, 1500), ["doc_id"])
    assert (first.inserted, second.inserted, second.updated) == (1000, 500, 0)
    con.close()
    files = _s3_objects(s3, "roundtrip")
    assert files and all(f.endswith(".parquet") for f in files)  # the rows live on the object store
    reader = connect(":memory:")  # a second connection (another worker) reads what the first committed
    attach(reader, settings, read_only=True)
    assert reader.execute("SELECT count(*), count(DISTINCT doc_id) FROM lake.documents").fetchone() == (1500, 1500)
    assert len(rows_at(reader, "documents", first.snapshot_id, columns="doc_id")) == 1000
    assert snapshot_id(reader) == second.snapshot_id
    reader.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_port_reading(digits: str) -> int:
    """A free port whose number contains ``digits`` (an endpoint like :40377 once read as an HTTP 403)."""
    for port in (p for p in range(1024, 65536) if digits in str(p)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port containing {digits}")


def _expect(settings: LakeSettings, *needles: str) -> InputError:
    con = connect(":memory:")
    try:
        with pytest.raises(InputError) as info:
            attach(con, settings)
    finally:
        con.close()
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    assert "fix:" in text
    return info.value


def test_postgres_that_refuses(s3: S3Server) -> None:
    dsn = f"dbname=lake host=127.0.0.1 port={_free_port()} user=lake"
    _expect(_settings(dsn, s3, "refused"), "GEORESET_LAKE_METADATA=postgres:", "start PostgreSQL")


def test_postgres_wrong_credentials_and_missing_database(pg: str, s3: S3Server) -> None:
    _expect(_settings(pg.replace("user=lake", "user=intruder"), s3, "creds"), "GEORESET_LAKE_METADATA",
            "user=intruder", "PGPASSWORD")
    _expect(_settings(pg.replace("dbname=lake", "dbname=nosuchdb"), s3, "nodb"), "GEORESET_LAKE_METADATA",
            "createdb")


@pytest.mark.parametrize("fault", ["store_down", "store_down_403", "store_down_404", "wrong_key", "wrong_secret",
                                   "no_bucket"])
def test_object_store_faults_name_the_setting_and_write_nothing(fault: str, fresh_db: str, s3: S3Server) -> None:
    down = ("GEORESET_LAKE_DATA", "cannot reach the object store", "AWS_ENDPOINT_URL")
    over = {"store_down": {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"},
            # a store that is down on a port whose number reads like an HTTP status is still down (CI, stop 29)
            "store_down_403": {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port_reading('403')}"},
            "store_down_404": {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port_reading('404')}"},
            "wrong_key": {"AWS_ACCESS_KEY_ID": "AKIANOBODY"},
            "wrong_secret": {"AWS_SECRET_ACCESS_KEY": "not-the-secret"},
            "no_bucket": {"GEORESET_LAKE_DATA": "s3://no-such-bucket/lake/"}}[fault]
    needles = {"store_down": down, "store_down_403": down, "store_down_404": down,
               "wrong_key": ("GEORESET_LAKE_DATA", "denies access", "InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
               "wrong_secret": ("denies access", "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"),
               "no_bucket": ("GEORESET_LAKE_DATA=s3://no-such-bucket/lake/", "does not exist",
                             "create the bucket")}[fault]
    _expect(_settings(fresh_db, s3, fault, **over), *needles)
    assert _ducklake_tables(fresh_db) == 0  # nothing half-written: no lake metadata was created


def test_embedded_location_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    _expect(LakeSettings.for_workdir(tmp_path, env={"GEORESET_LAKE_METADATA": str(missing / "m.ducklake")}),
            f"GEORESET_LAKE_METADATA={missing}/m.ducklake", "does not exist")
    _expect(LakeSettings.for_workdir(tmp_path, env={"GEORESET_LAKE_DATA": str(missing) + "/"}),
            f"GEORESET_LAKE_DATA={missing}/", "mkdir")
    assert not (tmp_path / "no").exists() and not (tmp_path / "lake").exists()  # nothing created
    _expect(LakeSettings.for_workdir(tmp_path, env={"GEORESET_LAKE_DATA": "gs://bucket/x/"}), "s3://")


def test_default_embedded_lake_is_created_in_the_workdir(tmp_path: Path) -> None:
    con = connect(":memory:")
    attach(con, LakeSettings.for_workdir(tmp_path / "work", env={}))
    con.execute(DDL)
    con.close()
    assert (tmp_path / "work" / "lake" / "metadata.sqlite").is_file()


def test_failed_write_to_a_store_that_went_down_commits_nothing(fresh_db: str) -> None:
    """The store dies after the attach: the commit fails, the metadata keeps no snapshot pointing at lost files."""
    with s3_server() as own:
        settings = _settings(fresh_db, own, "dies")
        con = connect(":memory:")
        attach(con, settings)
        con.execute(DDL)
        before = snapshot_id(con)
    with pytest.raises(duckdb.Error):
        con.execute(f"INSERT INTO lake.documents {ROWS.format(0, 1000)}")
    assert snapshot_id(con) == before
    con.close()


def test_workdir_placeholder_gives_each_workdir_its_own_schema_and_prefix(tmp_path: Path) -> None:
    env = {"GEORESET_LAKE_METADATA": "postgres:dbname=lake host=db", "GEORESET_LAKE_SCHEMA": "lake_{workdir}",
           "GEORESET_LAKE_DATA": "s3://bucket/{workdir}/"}
    a = LakeSettings.for_workdir(tmp_path / "a", env=env)
    b = LakeSettings.for_workdir(tmp_path / "b", env=env)
    assert a.metadata == b.metadata and a.metadata_schema != b.metadata_schema and a.data_path != b.data_path
    assert a.metadata_schema.startswith("lake_a_") and a.data_path.startswith("s3://bucket/a_")
    assert LakeSettings.for_workdir(tmp_path / "a", env=env) == a  # stable: a retry finds its own lake


def test_two_workdirs_share_one_server_without_seeing_each_other(pg: str, s3: S3Server, tmp_path: Path) -> None:
    env = {**s3.env("{workdir}"), "GEORESET_LAKE_METADATA": f"postgres:{pg}", "GEORESET_LAKE_SCHEMA": "lake_{workdir}"}
    counts = []
    for name, n in (("one", 100), ("two", 300)):
        con = connect(":memory:")
        attach(con, LakeSettings.for_workdir(tmp_path / name, env=env))
        con.execute(DDL)
        upsert(con, "documents", ROWS.format(0, n), ["doc_id"])
        counts.append(con.execute("SELECT count(*) FROM lake.documents").fetchone()[0])  # type: ignore[index]
        con.close()
    assert counts == [100, 300]


def test_the_suite_switch_puts_every_workdir_on_the_servers(tmp_path: Path) -> None:
    """Under GEORESET_TEST_LAKE=pg-s3 (scripts/test.sh's second pass) a workdir's default lake is PostgreSQL + S3."""
    if os.environ.get("GEORESET_TEST_LAKE", "embedded") != "pg-s3":
        pytest.skip("runs under GEORESET_TEST_LAKE=pg-s3 (scripts/test.sh's second pass)")
    settings = LakeSettings.for_workdir(tmp_path)
    assert settings.metadata.startswith("postgres:") and settings.data_path.startswith("s3://")
    con = connect(":memory:")
    attach(con, settings)
    con.execute(DDL)
    upsert(con, "documents", ROWS.format(0, 1000), ["doc_id"])
    files = con.execute("SELECT data_file FROM ducklake_list_files('lake', 'documents')").fetchall()
    con.close()
    assert files and all(f[0].startswith(settings.data_path) for f in files)


def test_search_index_sees_changes_on_a_lake_with_its_own_schema(pg: str, tmp_path: Path) -> None:
    """The derived search index's staleness check reads the lake's metadata tables, which live in the
    GEORESET_LAKE_SCHEMA schema when one is set (a change there was missed, so the index was never rebuilt)."""
    from georeset.data_catalog.search import _last_change

    con = connect(":memory:")
    attach(con, LakeSettings(f"postgres:{pg}", str(tmp_path / "d") + "/", metadata_schema="own_schema"))
    con.execute("CREATE TABLE lake.embeddings (x INTEGER)")
    before = snapshot_id(con)
    con.execute("INSERT INTO lake.embeddings SELECT range FROM range(10)")
    assert _last_change(con, before) == snapshot_id(con) > before
    con.close()
