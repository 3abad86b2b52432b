"""Attacks on the analyst SQL surface: each is refused with a clear message and the catalogue is unchanged.

The attacks come from the issue (ATTACH READ_WRITE + DELETE, COPY TO over an existing file, read_csv('/etc/passwd'),
glob('/root/*'), EXPORT DATABASE, SET memory_limit, INSTALL httpfs, a runaway query, Ctrl-C) and from DuckDB's
"Securing DuckDB" page (LOAD, PRAGMA, read_text/read_blob, URLs, secrets, getenv, configuration resets).
Every one runs through the real `georeset sql` command on a real DuckLake catalogue (SQLite metadata, Parquet data)
with its derived search index.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from analyst_fixtures import build_workspace
from typer.testing import CliRunner

from georeset.cli import app
from georeset.data_catalog.connect import extension_path, open_lake
from georeset.data_catalog.sandbox import analyst_connection

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
RUNAWAY = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000) b"


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One catalogue for the module: every attack must leave it unchanged, which each test checks."""
    tmp_path = tmp_path_factory.mktemp("sandbox")
    ws = build_workspace(tmp_path / "ws")
    db = ws.db_path
    con = open_lake(db)
    try:
        from georeset.data_catalog.search import refresh_index

        refresh_index(ws.root, con)
    finally:
        con.close()
    victim = tmp_path / "victim.csv"
    victim.write_text("keep,me\n1,2\n")
    geojson = tmp_path / "f.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"a": 1}, "geometry": {"type": "Point", "coordinates": [1, 2]}}]}))
    return {"db": db, "meta": ws.root / "lake" / "metadata.sqlite", "data": ws.root / "lake" / "data",
            "index": ws.index_path, "victim": victim, "geojson": geojson, "tmp": tmp_path}


def _fingerprint(c: dict[str, Path]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in ("meta", "index", "victim"):
        out[key] = hashlib.sha256(c[key].read_bytes()).hexdigest()
    out["data"] = {str(p.relative_to(c["data"])): hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in sorted(c["data"].rglob("*")) if p.is_file()}
    con = open_lake(c["db"], read_only=True, extensions=())
    try:
        out["rows"] = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                       for t in ("documents", "patches", "pairs", "runs")}
    finally:
        con.close()
    out["files"] = sorted(p.name for p in c["tmp"].iterdir())
    return out


ATTACKS: dict[str, str] = {
    "attach_live_rw_delete": "ATTACH '{db}' AS cat (READ_WRITE); DELETE FROM cat.pairs",
    "attach_live_rw": "ATTACH '{db}' AS cat (READ_WRITE)",
    "attach_memory": "ATTACH ':memory:' AS m",
    "attach_lake_rw_delete": "ATTACH 'ducklake:sqlite:{meta}' AS cat (DATA_PATH '{data}/'); DELETE FROM cat.pairs",
    "attach_lake_metadata": "ATTACH '{meta}' AS m (TYPE sqlite)",
    "attach_index_rw": "ATTACH '{index}' AS idx (READ_WRITE)",
    "copy_into_lake_data": "COPY pairs TO '{data}/main/pairs/x.parquet'",
    "detach": "DETACH lake",
    "use": "USE memory",
    "copy_over_existing": "COPY (SELECT * FROM pairs) TO '{victim}' (HEADER false)",
    "copy_new_file": "COPY pairs TO '{tmp}/new.csv'",
    "copy_database": "COPY FROM DATABASE lake TO memory",
    "export_database": "EXPORT DATABASE '{tmp}/exported'",
    "import_database": "IMPORT DATABASE '{tmp}'",
    "read_passwd": "SELECT * FROM read_csv('/etc/passwd')",
    "sniff_passwd": "SELECT * FROM sniff_csv('/etc/passwd')",
    "glob_root": "SELECT * FROM glob('/root/*')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "read_blob_catalogue": "SELECT * FROM read_blob('{db}')",
    "read_json": "SELECT * FROM read_json_auto('{geojson}')",
    "st_read": "SELECT * FROM ST_Read('{geojson}')",
    "https_url": "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "s3_url": "SELECT * FROM read_csv('s3://bucket/x.csv')",
    "set_memory_limit": "SET memory_limit = '100GB'",
    "pragma_memory_limit": "PRAGMA memory_limit = '100GB'",
    "reset_lock": "RESET lock_configuration",
    "unlock": "SET lock_configuration = false",
    "enable_external_access": "SET enable_external_access = true",
    "set_variable": "SET VARIABLE x = 1",
    "install_httpfs": "INSTALL httpfs",
    "load_httpfs": "LOAD httpfs",
    "load_spatial_path": "LOAD '{spatial}'",
    "create_secret": "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "create_persistent_secret": "CREATE PERSISTENT SECRET p (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "list_secrets": "SELECT * FROM duckdb_secrets()",
    "getenv": "SELECT getenv('HOME')",
    "delete": "DELETE FROM pairs",
    "drop": "DROP TABLE pairs",
    "update": "UPDATE documents SET title = 'x'",
    "insert": "INSERT INTO runs (run_id) VALUES ('evil')",
    "create_temp": "CREATE TEMP TABLE t AS SELECT 1",
    "alter": "ALTER TABLE pairs ADD COLUMN evil INTEGER",
    "select_then_delete": "SELECT 1; DELETE FROM pairs",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    "transaction": "BEGIN TRANSACTION",
}

# What the message must say, beyond "error:" (DuckDB's own wording for the two that never reach a file check).
EXPECT = {"getenv": "getenv", "st_read": "GDAL"}


def _fmt(sql: str, c: dict[str, Path]) -> str:
    return sql.format(db=c["db"], victim=c["victim"], tmp=c["tmp"], geojson=c["geojson"], meta=c["meta"],
                      data=c["data"], index=c["index"], spatial=extension_path("spatial"))


def _cli(sql: str, c: dict[str, Path], *extra: str) -> tuple[int, str]:
    q = _fmt(sql, c)
    r = runner.invoke(app, ["sql", "--db", str(c["db"]), *extra, q])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.output


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused_and_catalogue_unchanged(name: str, cat: dict[str, Path]) -> None:
    before = _fingerprint(cat)
    code, out = _cli(ATTACKS[name], cat)
    assert code == 2, out
    assert "Traceback" not in out
    assert "error:" in out
    assert EXPECT.get(name, "refused by the analyst sandbox") in out, out
    if name not in EXPECT:
        assert "fix:" in out
    assert _fingerprint(cat) == before


# Not here, refused by the statement filter only: re-attaching the lake's own metadata file (DuckDB allows the
# paths of attached databases after the lock), COPY into the lake's data folder (readable, so allowed) and ATTACH
# ':memory:' (the connection is itself in-memory).
RAW = ["attach_live_rw", "attach_index_rw", "copy_over_existing", "copy_new_file", "export_database", "read_passwd", "glob_root",
       "read_text", "read_blob_catalogue", "https_url", "set_memory_limit", "reset_lock", "unlock",
       "enable_external_access", "install_httpfs", "load_httpfs", "create_secret", "delete", "drop"]


@pytest.mark.parametrize("name", RAW)
def test_duckdb_settings_alone_refuse(name: str, cat: dict[str, Path]) -> None:
    """The DuckDB settings (what docs/duckdb-clients.md gives plain clients) refuse without the statement filter."""
    before = _fingerprint(cat)
    q = _fmt(ATTACKS[name], cat)
    with analyst_connection(cat["db"]) as ac:
        with pytest.raises(duckdb.Error):
            ac.con.execute(q).fetchall()
        ok = ac.con.execute("SELECT current_setting('enable_external_access'), "
                            "current_setting('lock_configuration')").fetchone()
    assert ok == (False, True)
    assert _fingerprint(cat) == before


def test_reads_still_work(cat: dict[str, Path]) -> None:
    code, out = _cli("SELECT count(*) AS n, max(within_km(lon, lat, 24.95, 60.17, 1.0)::INT) AS near "
                     "FROM documents", cat, "--format", "json")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == [{"n": 6, "near": 1}]
    code, out = _cli("SHOW TABLES", cat, "--format", "csv")
    assert code == 0 and "pairs" in out


def test_runaway_query_hits_the_timeout(cat: dict[str, Path]) -> None:
    before = _fingerprint(cat)
    code, out = _cli(RUNAWAY, cat, "--timeout", "1")
    assert code == 2, out
    assert "time limit (1 s)" in out and "--timeout" in out
    assert "Traceback" not in out
    assert _fingerprint(cat) == before


def test_row_cap_says_the_result_was_cut(cat: dict[str, Path]) -> None:
    code, out = _cli("SELECT * FROM range(50)", cat, "--max-rows", "7", "--format", "csv")
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith("note:")]
    assert len(lines) == 1 + 7
    assert "more than 7 rows" in out and "--max-rows" in out
    code, out = _cli("SELECT * FROM range(7)", cat, "--max-rows", "7", "--format", "csv")
    assert code == 0 and "note:" not in out


def test_parquet_output_without_copy(cat: dict[str, Path]) -> None:
    out_file = cat["tmp"] / "res.parquet"
    code, out = _cli("SELECT doc_id, title FROM documents ORDER BY doc_id", cat, "--format", "parquet",
                     "--out", str(out_file))
    assert code == 0, out
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM read_parquet('{out_file}')").fetchone() == (6,)


def test_ctrl_c_ends_cleanly(cat: dict[str, Path]) -> None:
    private_tmp = cat["tmp"] / "proc-tmp"
    private_tmp.mkdir()
    before = _fingerprint(cat)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(private_tmp)}
    p = subprocess.Popen([sys.executable, "-m", "georeset.cli", "sql", "--db", str(cat["db"]), "--timeout", "0",
                          RUNAWAY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    # wait until the query runs (the command has opened its private temp dir), then press Ctrl-C
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        if list(private_tmp.glob("georeset-sql-*")):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    assert "interrupted (Ctrl-C)" in err
    assert "Traceback" not in err
    assert _fingerprint(cat) == before
