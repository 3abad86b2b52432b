"""Semantic search (vss HNSW) and BM25 over a tiny catalogue embedded with a fake checkpoint: the indexes live in the
derived search index database, built from a named lake snapshot, and a search never answers from a stale one."""

from __future__ import annotations

import json

import pytest
from analyst_fixtures import DIM, TEXTS, fake_checkpoint, text_vec
from typer.testing import CliRunner

from georeset.data_catalog import connect, open_catalog
from georeset.data_catalog.lake import snapshot_id
from georeset.data_catalog.sandbox import analyst_connection
from georeset.data_catalog.search import (
    bm25,
    embed_catalog,
    ensure_index,
    index_snapshot,
    search,
    search_con,
    vector_literal,
)
from georeset.errors import CatalogError, InputError
from georeset.workspace import Workspace


def test_embed_is_idempotent_and_builds_the_index(embedded: Workspace) -> None:
    con = open_catalog(str(embedded.db_path))
    try:
        counts = dict(con.execute("SELECT owner_kind, count(*) FROM embeddings GROUP BY 1").fetchall())
        assert counts == {"patch": 6, "document": 6}
        assert embed_catalog(con, checkpoint=embedded.runs_dir / "run1" / "checkpoint.pt",
                             data_dir=embedded.data_dir, loaded=fake_checkpoint()) == 0
        assert con.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 12
        assert not list((embedded.staging_dir / "embeddings").glob("*.parquet"))
        lake_snap = snapshot_id(con)
    finally:
        con.close()
    idx_con = connect(embedded.index_path, read_only=True)
    try:
        assert idx_con.execute("SELECT run_id, dim, patches, documents FROM vss_meta").fetchall() == [
            ("run1", DIM, 6, 6)]
        idx = {r[0] for r in idx_con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
        assert {"vss_patch_hnsw", "vss_document_hnsw"} <= idx
        assert idx_con.execute("SELECT snapshot_id FROM index_meta").fetchone()[0] == lake_snap
    finally:
        idx_con.close()


def test_query_uses_hnsw_and_ranks_the_exact_match_first(embedded: Workspace) -> None:
    ac = analyst_connection(embedded.db_path)  # lake read-only + the index on the search path
    con = ac.con
    try:
        q = text_vec(TEXTS[3]).tolist()
        plan = "\n".join(r[1] for r in con.execute(
            f"EXPLAIN SELECT owner_id, array_cosine_distance(v, {vector_literal(q)}) AS d FROM vss_document "
            "ORDER BY d LIMIT 3").fetchall())
        assert "HNSW_INDEX_SCAN" in plan
        res = search_con(con, q, k=3, kind="document")
        assert [r["rank"] for r in res] == [1, 2, 3]
        assert res[0]["doc_id"] == "test:3" and res[0]["score"] == pytest.approx(1.0, abs=1e-5)
        assert res[0]["score"] >= res[1]["score"] >= res[2]["score"]
        pres = search_con(con, q, k=4, kind="patch")
        assert len(pres) == 4 and {"patch_id", "score", "lon", "lat", "sensor"} <= set(pres[0])
    finally:
        ac.close()


def test_search_function_and_cli_json(embedded: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    res = search(embedded.db_path, TEXTS[0], 2, "document", loaded=fake_checkpoint())
    assert res[0]["doc_id"] == "test:0"
    assert res[0]["snapshot_id"] == index_snapshot(embedded.index_path) is not None
    import georeset.models.checkpoint as ckmod

    monkeypatch.setattr(ckmod, "load_checkpoint", lambda path, **kw: fake_checkpoint())
    from georeset.analyst_cli import app

    out = CliRunner().invoke(app, ["search", "harbour", "--db", str(embedded.db_path), "--k", "5", "--json"])
    assert out.exit_code == 0, out.output
    last = json.loads(out.output.strip().splitlines()[-1])
    assert len(last["results"]) == 5 and all("patch_id" in r and "score" in r for r in last["results"])
    assert last["snapshot_id"] == index_snapshot(embedded.index_path)
    bad = CliRunner().invoke(app, ["search", "  ", "--db", str(embedded.db_path)])
    assert bad.exit_code == 2 and "empty" in bad.output


def test_search_without_index_is_a_clear_error(workspace: Workspace) -> None:
    with pytest.raises(CatalogError, match="no vector index"):
        search(workspace.db_path, "harbour", 3, loaded=fake_checkpoint())
    with pytest.raises(InputError):
        search(workspace.db_path, "a\x00b", 3, loaded=fake_checkpoint())


def test_bm25_is_never_answered_from_a_stale_index(embedded: Workspace) -> None:
    ac = analyst_connection(embedded.db_path)
    try:
        assert {h["doc_id"] for h in bm25(ac.con, "harbour", 5)} == {"test:0", "test:5"}
    finally:
        ac.close()
    before = index_snapshot(embedded.index_path)
    con = open_catalog(str(embedded.db_path))
    try:
        con.execute("INSERT INTO documents (doc_id, source, source_id, text, licence, retrieved_at, content_hash) "
                    "VALUES ('test:9', 'test', '9', 'harbour harbour harbour', 'CC0-1.0', now(), 'z')")
        now_snap = snapshot_id(con)
    finally:
        con.close()
    with pytest.raises(CatalogError, match=f"serves lake snapshot {before} but the lake is at {now_snap}"):
        ensure_index(embedded.db_path, rebuild=False)
    status = ensure_index(embedded.db_path)
    assert status == {"index_snapshot": now_snap, "lake_snapshot": now_snap, "stale": False}
    ac = analyst_connection(embedded.db_path)
    try:
        assert bm25(ac.con, "harbour", 1)[0]["doc_id"] == "test:9"
    finally:
        ac.close()
