"""Semantic (vss HNSW) and full-text (fts BM25) search over the catalogue.

Embeddings
----------
:func:`embed_catalog` encodes every patch (image tower: pixels from ``patches.path`` under the data directory, the
checkpoint's per-band normalisation, ``eval_max_tokens`` tokens with a seed derived from the patch id) and every
document (text tower) that has no embedding yet for the run, and writes ``(mean, variance)`` to ``embeddings``
through staging -> merge (keyed on ``owner_kind, owner_id, run_id``, so a re-run adds nothing).

The search index: derived, named by a snapshot
-----------------------------------------------
BM25 and HNSW indexes are not DuckLake features, so they live in a derived database, ``<workdir>/index/search.duckdb``,
that :func:`refresh_index` builds from ONE named lake snapshot (``index_meta.snapshot_id``) and swaps in atomically.
Every commit that takes documents or embeddings calls it (the CLI, the demo and the DAGs commit through the same
writer), and a retried commit rebuilds an index that is behind. Deleting the file loses nothing.

The ``embeddings`` columns are variable-length ``FLOAT[]``; HNSW needs a fixed-size ``FLOAT[D]``: the index holds
``vss_patch(owner_id, v FLOAT[D])`` and ``vss_document(owner_id, v FLOAT[D])`` of one run (the latest by default),
each with an HNSW index (``metric='cosine'``), plus ``vss_meta`` naming the run, its checkpoint and D.

Queries bind the query vector as one SQL literal (STACK_PROBE §4: two parameters, or a bound list, stop the HNSW
scan or cost ~30 ms each), and the top-k is taken in an inner query so the join to patches/documents that adds
lon/lat/sensor does not hide the ``ORDER BY ... LIMIT`` from the index.

Full text
---------
The index holds ``documents(doc_id, title, text, lon, lat)`` as of its snapshot with the BM25 index
``fts_main_documents``. Readers attach the index as ``search`` with ``search_path = lake.main, search.main,
search.fts_main_documents``, so ``fts_main_documents.match_bm25(doc_id, 'words')`` works in analyst SQL next to the
lake's tables. :func:`search` says which snapshot it serves and rebuilds an index that is behind the lake.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from georeset.errors import CatalogError, InputError

__all__ = [
    "KINDS",
    "embed_catalog",
    "refresh_index",
    "index_snapshot",
    "index_status",
    "ensure_index",
    "search",
    "search_con",
    "bm25",
    "vector_literal",
    "safe_data_path",
]

KINDS = ("patch", "document")
_TABLE = {"patch": "vss_patch", "document": "vss_document"}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def safe_data_path(data_dir: Path, rel: str) -> Path:
    """``data_dir / rel``, refusing a path that leaves ``data_dir`` (absolute, ``..``, symlink escapes)."""
    base = Path(data_dir).resolve()
    p = (base / rel).resolve()
    if not p.is_relative_to(base):
        raise CatalogError(f"catalogue path {rel!r} points outside the data directory {base}",
                           hint="patches.path must be relative to the data directory; fix the row or re-run imagery")
    return p


def vector_literal(vec: Sequence[float]) -> str:
    """A DuckDB ``FLOAT[D]`` literal (repr of each float, so it round-trips)."""
    vals = [float(x) for x in vec]
    if not vals or not all(math.isfinite(x) for x in vals):
        raise InputError("the query vector is empty or not finite", hint="check the checkpoint")
    return "[" + ",".join(repr(x) for x in vals) + f"]::FLOAT[{len(vals)}]"


def _run_id_of(con: duckdb.DuckDBPyConnection, checkpoint: Path) -> str:
    row = con.execute("SELECT run_id FROM runs WHERE checkpoint = ? ORDER BY finished_at DESC NULLS LAST LIMIT 1",
                      [str(checkpoint)]).fetchone()
    return str(row[0]) if row else checkpoint.parent.name


def _patch_row(r: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    from georeset.bands import band_metadata
    from georeset.data_catalog.export import masked_nodata

    arr = np.load(safe_data_path(data_dir, r["path"]), allow_pickle=False)
    arr = masked_nodata(np.ascontiguousarray(arr, dtype=np.float32))  # nodata as NaN, as in the shards
    meta = [band_metadata(b) for b in r["bands"]]
    return {
        "image": arr.tobytes(), "shape": list(arr.shape), "bands": list(r["bands"]), "sensor": r["sensor"],
        "wavelengths_um": [m[0] for m in meta], "bandwidths_um": [m[1] for m in meta],
        "polarizations": [m[2] for m in meta], "gsd": float(r["gsd"]),
        "datetime": r["datetime"].isoformat() if r["datetime"] is not None else None,
        "sample_id": r["patch_id"],
    }


def embed_catalog(
    con: duckdb.DuckDBPyConnection, *, checkpoint: Path, data_dir: Path, staging_dir: Path | None = None,
    run_id: str | None = None, batch_size: int = 32, kinds: Sequence[str] = KINDS, loaded: Any = None,
) -> int:
    """Embed the patches and documents that have no embedding for this run yet; returns how many rows were added.

    ``staging_dir`` defaults to ``<data_dir>/../staging`` (the workspace layout). ``run_id`` defaults to the
    ``runs`` row whose checkpoint this is, else the checkpoint's folder name. The caller then rebuilds the search
    index (:func:`refresh_index`).
    """
    import torch

    from georeset.data_catalog import merge, stage
    from georeset.models.checkpoint import load_checkpoint
    from georeset.models.data import row_to_tokens
    from georeset.models.text_encoder import TEXT_CACHE
    from georeset.models.tokens import pad_tokens

    checkpoint, data_dir = Path(checkpoint).resolve(), Path(data_dir)
    staging_dir = Path(staging_dir) if staging_dir is not None else data_dir.parent / "staging"
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise InputError(f"unknown embedding kind(s) {bad}", hint=f"use {KINDS}")
    run_id = run_id or _run_id_of(con, checkpoint)
    todo_p: list[dict[str, Any]] = []
    todo_d: list[tuple[str, str]] = []
    if "patch" in kinds:
        cur = con.execute(
            "SELECT patch_id, sensor, gsd, datetime, bands, path FROM patches p WHERE NOT EXISTS (SELECT 1 FROM "
            "embeddings e WHERE e.owner_kind = 'patch' AND e.owner_id = p.patch_id AND e.run_id = ?) ORDER BY 1",
            [run_id])
        cols = [c[0] for c in cur.description]
        todo_p = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    if "document" in kinds:
        todo_d = [(str(a), str(b)) for a, b in con.execute(
            "SELECT doc_id, text FROM documents d WHERE NOT EXISTS (SELECT 1 FROM "
            "embeddings e WHERE e.owner_kind = 'document' AND e.owner_id = d.doc_id AND e.run_id = ?) ORDER BY 1",
            [run_id]).fetchall()]
    if todo_p or todo_d:
        ck = loaded or load_checkpoint(checkpoint)
        ck.model.text.backbone.load_cache(checkpoint.parent / TEXT_CACHE)
        budget = ck.config.train.eval_max_tokens
        created = _now()
        rows: list[dict[str, Any]] = []
        with torch.no_grad():
            for i in range(0, len(todo_p), batch_size):
                batch = todo_p[i : i + batch_size]
                toks = []
                for r in batch:
                    seed = int(hashlib.sha1(r["patch_id"].encode()).hexdigest()[:8], 16)
                    toks.append(row_to_tokens(_patch_row(r, data_dir), ck.norm, max_tokens=budget,
                                              rng=np.random.default_rng(seed)))
                desc, mask = pad_tokens(toks)
                mean, logvar = ck.model.encode_image(desc, mask)
                for r, m, lv in zip(batch, mean.float(), logvar.float().exp(), strict=True):
                    rows.append({"owner_kind": "patch", "owner_id": r["patch_id"], "run_id": run_id,
                                 "mean": m.tolist(), "variance": lv.tolist(), "created_at": created})
            for i in range(0, len(todo_d), batch_size):
                batch_d = todo_d[i : i + batch_size]
                mean, logvar = ck.model.encode_text([t for _, t in batch_d])
                for (doc_id, _), m, lv in zip(batch_d, mean.float(), logvar.float().exp(), strict=True):
                    rows.append({"owner_kind": "document", "owner_id": doc_id, "run_id": run_id,
                                 "mean": m.tolist(), "variance": lv.tolist(), "created_at": created})
        import pyarrow as pa

        tbl = pa.Table.from_pylist(rows, schema=pa.schema([
            ("owner_kind", pa.string()), ("owner_id", pa.string()), ("run_id", pa.string()),
            ("mean", pa.list_(pa.float32())), ("variance", pa.list_(pa.float32())), ("created_at", pa.timestamp("us")),
        ]))
        key = hashlib.sha1("|".join(sorted(f"{r['owner_kind']}:{r['owner_id']}" for r in rows)).encode()).hexdigest()
        stage(tbl, table="embeddings", staging_dir=staging_dir, name=f"embed-{run_id}-{key[:16]}")
    res = merge(con, table="embeddings", staging_dir=staging_dir)
    return res.inserted


INDEX_TABLES = ("index_meta", "documents", "vss_patch", "vss_document", "vss_meta")


def _last_change(con: duckdb.DuckDBPyConnection, since: int, tables: Sequence[str] = ("documents", "embeddings"),
                 alias: str = "lake") -> int:
    """The newest snapshot after ``since`` that changed one of ``tables`` (0 when none did)."""
    try:
        ids = {str(r[0]) for r in con.execute(
            f"SELECT table_id FROM __ducklake_metadata_{alias}.ducklake_table WHERE table_name IN "
            f"({', '.join('?' for _ in tables)})", list(tables)).fetchall()}
    except duckdb.Error:
        ids = set()
    names = {f"main.{t}" for t in tables} | ids
    newest = 0
    for snap, changes in con.execute(f"SELECT snapshot_id, changes FROM {alias}.snapshots() WHERE snapshot_id > ? "
                                     "ORDER BY snapshot_id", [int(since)]).fetchall():
        values = {str(v) for vs in (changes or {}).values() for v in (vs or [])}
        if values & names:
            newest = int(snap)
    return newest


def index_snapshot(path: Path) -> int | None:
    """The lake snapshot the search index at ``path`` was built from (None: no index there)."""
    if not Path(path).is_file():
        return None
    from georeset.data_catalog.connect import connect

    con = connect(path, read_only=True, extensions=())
    try:
        row = con.execute("SELECT snapshot_id FROM index_meta").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return int(row[0]) if row else None


def index_status(con: duckdb.DuckDBPyConnection, built: int | None) -> dict[str, Any]:
    """Which snapshot the index serves, the lake's current one, and whether documents or embeddings changed since."""
    from georeset.data_catalog.lake import snapshot_id

    current = snapshot_id(con)
    stale = built is None or _last_change(con, built) > built
    return {"index_snapshot": built, "lake_snapshot": current, "stale": stale}


def refresh_index(root: Path | str, con: duckdb.DuckDBPyConnection, *, force: bool = False, run_id: str | None = None,
                  checkpoint: Path | None = None) -> dict[str, Any] | None:
    """Rebuild the derived search index ``<workdir>/index/search.duckdb`` from the lake's current snapshot when it
    is behind (documents or embeddings changed after the snapshot it was built from), or always with ``force``.

    ``con``: a connection with the lake attached as ``lake`` (the writer's). The index is built in a new file and
    swapped in with ``os.replace``: a reader that has the old index open keeps it, a new reader finds the new one.
    Holds ``documents(doc_id, title, text, lon, lat)`` at the snapshot with its BM25 index (``fts_main_documents``),
    ``vss_patch``/``vss_document`` (``FLOAT[D]`` + HNSW cosine) of one run's embeddings with ``vss_meta``, and
    ``index_meta`` naming the snapshot. Returns what was built (None when it was current)."""
    import os
    import uuid

    from georeset.data_catalog.connect import index_path
    from georeset.data_catalog.lake import snapshot_id

    path = index_path(root)
    built = index_snapshot(path)
    if not force and built is not None and _last_change(con, built) <= built:
        return None
    snap = snapshot_id(con)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}-{os.getpid()}-{uuid.uuid4().hex[:8]}.duckdb")
    con.execute(f"ATTACH '{tmp}' AS _index_build")
    try:
        con.execute("CREATE TABLE _index_build.documents AS SELECT doc_id, title, text, lon, lat "
                    f"FROM lake.documents AT (VERSION => {snap}) ORDER BY doc_id")
        con.execute("USE _index_build")
        try:
            docs = _build_fts(con)
            vss = _build_vss(con, snap, run_id=run_id, checkpoint=checkpoint)
            con.execute("CREATE TABLE index_meta (snapshot_id BIGINT, built_at TIMESTAMP, documents BIGINT)")
            con.execute("INSERT INTO index_meta VALUES (?, ?, ?)", [snap, _now(), docs])
            for stmt in _INDEX_COMMENTS:
                con.execute(stmt)
        finally:
            con.execute("USE lake")
        con.execute("CHECKPOINT _index_build")
    finally:
        con.execute("DETACH _index_build")
    newer = index_snapshot(path)
    if newer is not None and newer > snap:  # a concurrent writer already swapped in a newer index
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, path)
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return {"snapshot_id": snap, "documents": docs, **vss}


def _build_fts(con: duckdb.DuckDBPyConnection) -> int:
    """BM25 index ``fts_main_documents`` over the index's ``documents(title, text)``; returns documents indexed."""
    con.execute("PRAGMA create_fts_index('documents', 'doc_id', 'title', 'text', stemmer = 'english', "
                "stopwords = 'english', strip_accents = 1, lower = 1, overwrite = 1)")
    return int(con.execute("SELECT count(*) FROM documents").fetchone()[0])  # type: ignore[index]


def _build_vss(con: duckdb.DuckDBPyConnection, snap: int, *, run_id: str | None = None,
               checkpoint: Path | None = None) -> dict[str, Any]:
    """``vss_patch`` / ``vss_document`` (``FLOAT[D]`` + HNSW cosine) and ``vss_meta`` from one run's embeddings at
    snapshot ``snap`` (the newest run by default); nothing when there are no embeddings."""
    emb = f"lake.embeddings AT (VERSION => {int(snap)})"
    if run_id is None:
        row = con.execute(f"SELECT run_id FROM {emb} GROUP BY run_id ORDER BY max(created_at) DESC, run_id LIMIT 1"
                          ).fetchone()
        if row is None:
            return {}
        run_id = str(row[0])
    if checkpoint is None:
        row = con.execute(f"SELECT checkpoint FROM lake.runs AT (VERSION => {int(snap)}) WHERE run_id = ?",
                          [run_id]).fetchone()
        checkpoint = Path(row[0]) if row and row[0] else None
    dims = con.execute(f"SELECT DISTINCT len(mean) FROM {emb} WHERE run_id = ?", [run_id]).fetchall()
    if len(dims) != 1:
        raise CatalogError(f"embeddings of run {run_id!r} have dimensions {sorted(d[0] for d in dims)}",
                           hint="re-run embed_catalog for one checkpoint")
    dim = int(dims[0][0])
    counts: dict[str, int] = {}
    for kind, table in _TABLE.items():
        con.execute(f"CREATE TABLE {table} AS SELECT owner_id, mean::FLOAT[{dim}] AS v FROM {emb} "
                    "WHERE run_id = ? AND owner_kind = ? ORDER BY owner_id", [run_id, kind])
        con.execute(f"CREATE INDEX {table}_hnsw ON {table} USING HNSW (v) WITH (metric = 'cosine')")
        counts[kind] = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
    con.execute("CREATE TABLE vss_meta (run_id VARCHAR, checkpoint VARCHAR, dim INTEGER, patches BIGINT, "
                "documents BIGINT, built_at TIMESTAMP)")
    con.execute("INSERT INTO vss_meta VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, str(checkpoint) if checkpoint else None, dim, counts["patch"], counts["document"], _now()])
    for stmt in _VSS_COMMENTS:
        con.execute(stmt)
    return {"run_id": run_id, "patches": counts["patch"], "documents_embedded": counts["document"]}


_VSS_COMMENTS = [
    *(x for kind, table in _TABLE.items() for x in (
        f"COMMENT ON TABLE {table} IS 'Derived vector index: {kind} embeddings of the run in vss_meta as FLOAT[D] "
        "with an HNSW index (cosine); rebuilt with the search index.'",
        f"COMMENT ON COLUMN {table}.owner_id IS '{'patches.patch_id' if kind == 'patch' else 'documents.doc_id'}.'",
        f"COMMENT ON COLUMN {table}.v IS 'Embedding mean (embeddings.mean) as FLOAT[D], D = vss_meta.dim.'")),
    "COMMENT ON TABLE vss_meta IS 'Which run the vss_patch and vss_document indexes were built from (one row).'",
    "COMMENT ON COLUMN vss_meta.run_id IS 'runs.run_id of the embeddings indexed.'",
    "COMMENT ON COLUMN vss_meta.checkpoint IS 'Checkpoint path of that run (its text tower embeds search queries).'",
    "COMMENT ON COLUMN vss_meta.dim IS 'Embedding dimension D.'",
    "COMMENT ON COLUMN vss_meta.patches IS 'Rows in vss_patch.'",
    "COMMENT ON COLUMN vss_meta.documents IS 'Rows in vss_document.'",
    "COMMENT ON COLUMN vss_meta.built_at IS 'When the indexes were built (UTC).'",
]
_INDEX_COMMENTS = [
    "COMMENT ON TABLE index_meta IS 'The DuckLake snapshot this search index was built from (one row).'",
    "COMMENT ON COLUMN index_meta.snapshot_id IS 'Lake snapshot id: the documents and embeddings as of it.'",
    "COMMENT ON COLUMN index_meta.built_at IS 'When the index was built (UTC).'",
    "COMMENT ON COLUMN index_meta.documents IS 'Documents in the BM25 index.'",
    "COMMENT ON TABLE documents IS 'Copy of documents (doc_id, title, text, lon, lat) at index_meta.snapshot_id, "
    "indexed for BM25 (fts_main_documents).'",
    "COMMENT ON COLUMN documents.doc_id IS 'documents.doc_id.'",
    "COMMENT ON COLUMN documents.title IS 'documents.title.'",
    "COMMENT ON COLUMN documents.text IS 'documents.text.'",
    "COMMENT ON COLUMN documents.lon IS 'documents.lon, WGS 84 degrees.'",
    "COMMENT ON COLUMN documents.lat IS 'documents.lat, WGS 84 degrees.'",
]


def bm25(con: duckdb.DuckDBPyConnection, query: str, k: int = 10) -> list[dict[str, Any]]:
    """Documents ranked by BM25 for ``query``, on a connection where ``fts_main_documents`` resolves (an analyst
    connection, or the search index database itself)."""
    try:
        cur = con.execute(
            "SELECT doc_id, title, score, lon, lat FROM (SELECT *, fts_main_documents.match_bm25(doc_id, ?) AS score "
            "FROM documents) WHERE score IS NOT NULL ORDER BY score DESC, doc_id LIMIT ?", [query, int(k)])
    except duckdb.CatalogException as exc:
        raise CatalogError("the catalogue has no search index yet", hint="commit documents (georeset harvest ...) or "
                           "run `georeset index`; every commit of documents rebuilds it") from exc
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _meta(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    try:
        cur = con.execute("SELECT * FROM vss_meta LIMIT 1")
    except duckdb.CatalogException:
        cur = None
    row = cur.fetchone() if cur is not None else None
    if cur is None or row is None:
        raise CatalogError("the catalogue has no vector index (no embeddings yet)",
                           hint="embed the catalogue first: georeset.data_catalog.search.embed_catalog (demo stage)")
    return dict(zip([c[0] for c in cur.description], row, strict=True))


_SQL = {
    "patch": ("SELECT t.owner_id AS patch_id, 1 - t.dist AS score, p.lon, p.lat, p.sensor, p.datetime, "
              "p.clear_fraction, p.scene_id FROM ({inner}) t JOIN patches p ON p.patch_id = t.owner_id "
              "ORDER BY t.dist, t.owner_id"),
    "document": ("SELECT t.owner_id AS doc_id, 1 - t.dist AS score, d.lon, d.lat, d.source, d.title "
                 "FROM ({inner}) t JOIN documents d ON d.doc_id = t.owner_id ORDER BY t.dist, t.owner_id"),
}


def search_con(con: duckdb.DuckDBPyConnection, vector: Sequence[float], *, k: int = 10, kind: str = "patch"
               ) -> list[dict[str, Any]]:
    """The ``k`` nearest items of ``kind`` to ``vector`` (cosine) through the HNSW index."""
    if kind not in KINDS:
        raise InputError(f"--kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    if not 1 <= int(k) <= 10000:
        raise InputError(f"--k {k} is outside 1..10000", hint="e.g. --k 10")
    lit = vector_literal(vector)
    inner = (f"SELECT owner_id, array_cosine_distance(v, {lit}) AS dist FROM {_TABLE[kind]} "
             f"ORDER BY dist LIMIT {int(k)}")
    cur = con.execute(_SQL[kind].format(inner=inner))
    cols = [c[0] for c in cur.description]
    out = []
    for rank, r in enumerate(cur.fetchall(), 1):
        d = dict(zip(cols, r, strict=True))
        d["kind"], d["rank"] = kind, rank
        d["score"] = round(float(d["score"]), 6)
        if d.get("datetime") is not None:
            d["datetime"] = d["datetime"].isoformat()
        out.append(d)
    return out


def search(db: Path | str, text: str, k: int = 10, kind: str = "patch", *, loaded: Any = None,
           timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Embed ``text`` with the text tower of the indexed run's checkpoint and return the ``k`` nearest ``kind``s.

    Each result: ``rank``, ``kind``, the id (``patch_id`` / ``doc_id``), ``score`` (cosine similarity),
    ``lon``/``lat`` and ``sensor``/``datetime`` (patches) or ``title``/``source`` (documents), and ``snapshot_id``,
    the lake snapshot the index serves. An index behind the lake is rebuilt first (:func:`ensure_index`). The
    catalogue is read through the analyst sandbox (committed snapshots only, no external access, ``timeout_s`` per
    query).
    """
    import torch

    from georeset.data_catalog.sandbox import analyst_connection
    from georeset.models.checkpoint import load_checkpoint

    if not text or not text.strip():
        raise InputError("the search text is empty", hint='e.g. georeset search "harbour" --k 5')
    if "\x00" in text or len(text) > 10000:
        raise InputError("the search text has NUL bytes or more than 10000 characters", hint="shorten the query")
    status = ensure_index(db)
    ac = analyst_connection(db, timeout_s=timeout_s)  # committed snapshots only: works during commits
    con = ac.con
    try:
        with ac.guard():
            meta = _meta(con)
        if loaded is None:
            if not meta["checkpoint"] or not Path(meta["checkpoint"]).is_file():
                raise CatalogError(f"checkpoint {meta['checkpoint']!r} of run {meta['run_id']} is missing",
                                   hint="re-run training or embed_catalog with an existing checkpoint")
            loaded = load_checkpoint(Path(meta["checkpoint"]))
        with torch.no_grad():
            mean, _ = loaded.model.encode_text([text.strip()])
        with ac.guard():
            found = search_con(con, mean[0].float().tolist(), k=k, kind=kind)
        return [{**r, "snapshot_id": status["index_snapshot"]} for r in found]
    finally:
        ac.close()


def ensure_index(db: Path | str, *, rebuild: bool = True) -> dict[str, Any]:
    """The search index's status (:func:`index_status`); an index behind the lake (documents or embeddings changed
    after its snapshot) is rebuilt from the current snapshot, or refused with ``rebuild=False``."""
    from georeset.data_catalog.connect import index_path, open_lake

    path = index_path(db)
    con = open_lake(db, read_only=True, extensions=())
    try:
        status = index_status(con, index_snapshot(path))
    finally:
        con.close()
    if not status["stale"]:
        return status
    if not rebuild:
        raise CatalogError(f"the search index {path} serves lake snapshot {status['index_snapshot']} but the lake is "
                           f"at {status['lake_snapshot']} with newer documents or embeddings",
                           hint="run `georeset index --workdir DIR` (or any search, which rebuilds it)")
    from georeset.data_catalog import open_catalog

    wcon = open_catalog(db)
    try:
        refresh_index(db, wcon)
        return index_status(wcon, index_snapshot(path))
    finally:
        wcon.close()
