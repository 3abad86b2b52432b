"""A work directory whose catalogue holds a few documents with locations (for `georeset imagery fetch` tests)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from georeset.data_catalog import open_catalog

__all__ = ["make_workdir", "snapshot"]


def make_workdir(root: Path, points: list[tuple[float, float]]) -> Path:
    from georeset.workspace import Workspace

    ws = Workspace.at(root)
    con = open_catalog(str(ws.db_path))
    try:
        for k, (lon, lat) in enumerate(points):
            con.execute(
                "INSERT INTO documents (doc_id, source, source_id, title, text, lon, lat, licence, retrieved_at, "
                "content_hash) VALUES (?, 'file', ?, ?, ?, ?, ?, 'CC0-1.0', ?, ?)",
                [f"file:doc{k}", f"doc{k}", f"Doc {k}", f"A place {k}.", lon, lat, datetime(2024, 7, 1), f"h{k}"],
            )
    finally:
        con.close()
    return ws.root


def snapshot(root: Path) -> dict[str, tuple[int, float]]:
    """Every file under ``root`` with its size and mtime (to check that a failed command wrote nothing)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime) for p in sorted(root.rglob("*")) if p.is_file()}
