"""Export stage: the paired catalogue as Parquet training shards + ``manifest.json`` naming the snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from georeset.stages import writer
from georeset.workspace import Workspace

__all__ = ["export_stage", "read_snapshot"]


def read_snapshot(manifest: Path) -> str | None:
    """The snapshot id of a shard manifest (None when missing or unreadable)."""
    try:
        return str(json.loads(Path(manifest).read_text())["snapshot_id"])
    except (OSError, ValueError, KeyError):
        return None


def export_stage(ws: Workspace, *, test_fraction: float = 0.2, seed: int = 0, block_deg: float = 0.005,
                 **export_options: Any) -> dict[str, Any]:
    """Export the shards (reusing an identical snapshot) and record the snapshot; says whether it is new."""
    from georeset.data_catalog.export import export_shards

    manifest_path = ws.shards_dir / "manifest.json"
    previous = read_snapshot(manifest_path)
    con = writer.open_writer(ws)  # export_shards records the snapshot in the `snapshots` table
    try:
        manifest = export_shards(con, out_dir=ws.shards_dir, data_dir=ws.data_dir, test_fraction=test_fraction,
                                 seed=seed, block_deg=block_deg, **export_options)
    finally:
        con.close()
    return {"snapshot_id": manifest["snapshot_id"], "lake_snapshot_id": manifest.get("lake_snapshot_id"),
            "previous_snapshot_id": previous,
            "new": manifest["snapshot_id"] != previous, "manifest": str(manifest_path),
            "splits": dict(manifest["splits"])}
