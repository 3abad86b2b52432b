"""Index stage: encoder embeddings of patches and documents (HNSW) and the BM25 index, built by every path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from georeset.stages import writer
from georeset.workspace import Workspace

__all__ = ["index_stage"]


def index_stage(ws: Workspace, *, checkpoint: Path | str | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Embed what has no embedding for this run yet, rebuild the vector and BM25 indexes, publish."""
    from georeset.data_catalog.search import embed_catalog, rebuild_fts
    from georeset.stages.evaluate import latest_run

    ckpt = Path(checkpoint) if checkpoint is not None else ws.runs_dir / (run_id or latest_run(ws)) / "checkpoint.pt"
    con = writer.open_writer(ws)
    try:
        added = embed_catalog(con, checkpoint=ckpt, data_dir=ws.data_dir, staging_dir=ws.staging_dir)
        fts_docs = rebuild_fts(con)
        n = int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0])
        writer.publish(ws, con)
    finally:
        con.close()
    return {"embeddings_added": added, "embeddings": n, "fts_documents": fts_docs}
