"""Index stage: encoder embeddings of patches and documents, then the derived search index (BM25 + HNSW) rebuilt
from the lake snapshot that holds them; the same code from the CLI, the demo and the DAGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from georeset.stages import writer
from georeset.workspace import Workspace

__all__ = ["index_stage"]


def index_stage(ws: Workspace, *, checkpoint: Path | str | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Embed what has no embedding for this run yet, then rebuild the search index from the new snapshot."""
    from georeset.data_catalog.connect import index_path
    from georeset.data_catalog.search import embed_catalog, index_snapshot
    from georeset.stages.evaluate import latest_run

    ckpt = Path(checkpoint) if checkpoint is not None else ws.runs_dir / (run_id or latest_run(ws)) / "checkpoint.pt"
    con = writer.open_writer(ws)
    try:
        added = embed_catalog(con, checkpoint=ckpt, data_dir=ws.data_dir, staging_dir=ws.staging_dir, run_id=run_id)
        built = writer.refresh_index(ws, con)
        n = int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0])
        docs = int(con.execute("SELECT count(*) FROM documents").fetchone()[0])
    finally:
        con.close()
    return {"embeddings_added": added, "embeddings": n, "fts_documents": docs,
            "index_snapshot": index_snapshot(index_path(ws.root)), "index_rebuilt": built is not None}
