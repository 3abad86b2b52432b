"""The one catalogue writer: scoped commits, one transaction for all tables, no older row over a newer one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from georeset.data_catalog import staging
from georeset.pipelines.harvest._common import document_row
from georeset.stages import writer
from georeset.workspace import Workspace

T1, T2 = dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2)


def _doc(i: int, text: str, when: dt.datetime) -> dict:  # type: ignore[type-arg]
    return document_row(source="file", source_id=f"d/{i}", title=f"doc {i}", text=text, lon=24.9 + i * 1e-4,
                        lat=60.17, licence="CC0-1.0", retrieved_at=when)


def _rows(ws: Workspace) -> dict[str, tuple[str, dt.datetime]]:
    con = writer.open_writer(ws)
    try:
        return {r[0]: (r[1], r[2]) for r in con.execute("SELECT source_id, text, retrieved_at FROM documents").fetchall()}
    finally:
        con.close()


def test_a_commit_takes_only_the_files_its_partitions_named(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path)
    staging.stage([_doc(i, f"day one {i}", T1) for i in range(5)], table="documents", staging_dir=ws.staging_dir,
                  name="osm-x-20240301")
    staging.stage([_doc(i, f"day two {i}", T2) for i in range(5, 8)], table="documents",
                  staging_dir=ws.staging_dir, name="osm-x-20240302")
    day1 = writer.commit(ws, ["documents"], names=["osm-x-20240301"])["documents"]
    assert (day1["files"], day1["inserted"], day1["total"]) == (1, 5, 5)  # day 2's rows are not reported here
    assert (ws.staging_dir / "documents" / "osm-x-20240302.parquet").is_file()  # ... nor taken
    day2 = writer.commit(ws, ["documents"], names=["osm-x-20240302"])["documents"]
    assert (day2["files"], day2["inserted"], day2["total"]) == (1, 3, 8)
    assert not list((ws.staging_dir / "documents").glob("*.parquet"))


def test_an_older_row_never_replaces_a_newer_one(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path)
    staging.stage([_doc(1, "newer text", T2)], table="documents", staging_dir=ws.staging_dir, name="late")
    writer.commit(ws, ["documents"], names=["late"])
    # a backfill of an earlier interval arrives afterwards, with the old text
    staging.stage([_doc(1, "older text", T1), _doc(2, "only old", T1)], table="documents",
                  staging_dir=ws.staging_dir, name="early")
    r = writer.commit(ws, ["documents"], names=["early"])["documents"]
    assert (r["inserted"], r["updated"]) == (1, 0)
    rows = _rows(ws)
    assert rows["d/1"] == ("newer text", T2) and rows["d/2"][0] == "only old"
    # a genuinely newer revision does replace it
    staging.stage([_doc(1, "newest text", T2 + dt.timedelta(days=1))], table="documents",
                  staging_dir=ws.staging_dir, name="later")
    assert writer.commit(ws, ["documents"], names=["later"])["documents"]["updated"] == 1
    assert _rows(ws)["d/1"][0] == "newest text"


def test_all_tables_of_a_commit_land_together_or_not_at_all(tmp_path: Path) -> None:
    from georeset.errors import CatalogError

    ws = Workspace.at(tmp_path)
    staging.stage([_doc(1, "a document", T1)], table="documents", staging_dir=ws.staging_dir, name="p")
    # a toponyms file that the table cannot take (unknown column): the whole commit is rolled back
    staging.stage([{"toponym_id": "t1", "doc_id": "file:d/1", "no_such_column": 1}], table="toponyms",
                  staging_dir=ws.staging_dir, name="p")
    with pytest.raises(CatalogError, match="no_such_column"):
        writer.commit(ws, ["documents", "toponyms"], names=["p"])
    assert _rows(ws) == {}
    assert (ws.staging_dir / "documents" / "p.parquet").is_file()  # kept for the retry


def test_every_documents_commit_rebuilds_bm25(tmp_path: Path) -> None:
    from georeset.data_catalog.sandbox import analyst_connection
    from georeset.data_catalog.search import bm25

    ws = Workspace.at(tmp_path)
    staging.stage([_doc(1, "the harbour crane", T1)], table="documents", staging_dir=ws.staging_dir, name="a")
    writer.commit(ws, ["documents"], names=["a"])
    staging.stage([_doc(2, "a lighthouse by the harbour", T1)], table="documents", staging_dir=ws.staging_dir,
                  name="b")
    writer.commit(ws, ["documents"], names=["b"])
    ac = analyst_connection(ws.root)  # readers: the lake read-only + the derived index the commit rebuilt
    try:
        hits = {h["doc_id"] for h in bm25(ac.con, "lighthouse", k=5)}
    finally:
        ac.close()
    assert hits == {"file:d/2"}


WRITER = """
import sys
from georeset.data_catalog import staging
from georeset.stages import writer
from georeset.workspace import Workspace
sys.path.insert(0, sys.argv[3])
from test_commit import _doc, T1
ws, i = Workspace.at(sys.argv[1]), int(sys.argv[2])
for b in range(3):  # writer i: documents 10*i .. 10*i+19 in three commits, so every key is written by two writers
    name = f"w{i}-b{b}"
    staging.stage([_doc(k, f"doc {k}", T1) for k in range(10 * i, 10 * i + 20) if k % 3 == b], table="documents",
                  staging_dir=ws.staging_dir, name=name)
    writer.commit(ws, ["documents", "places"], names=[name])
"""


@pytest.mark.slow
def test_four_writer_processes_with_overlapping_inputs_leave_no_duplicates(tmp_path: Path) -> None:
    """Four processes commit overlapping documents into one embedded lake (SQLite metadata) at the same time,
    each commit also rebuilding the search index: every key once, none lost, the index on the last snapshot."""
    import os
    import subprocess
    import sys

    from georeset.data_catalog.sandbox import analyst_connection
    from georeset.data_catalog.search import index_snapshot, index_status

    writer.open_writer(Workspace.at(tmp_path)).close()  # the schema, once
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(i), str(Path(__file__).parent)],
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ)) for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    ac = analyst_connection(tmp_path, timeout_s=0)
    try:
        n, distinct = ac.con.execute("SELECT count(*), count(DISTINCT doc_id) FROM documents").fetchone()  # type: ignore[misc]
        assert n == distinct == 50  # keys 0..49, written 2x each, no duplicate, none lost
        assert not index_status(ac.con, index_snapshot(tmp_path / "index" / "search.duckdb"))["stale"]
    finally:
        ac.close()
