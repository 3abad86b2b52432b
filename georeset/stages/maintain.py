"""Maintain stage: DuckLake's own upkeep of the catalogue lake -- small-file compaction, snapshot expiry with a
retention, and deletion of the files nothing references any more. Rows never change.

The snapshots training shards name (``lake_snapshot_id`` in every ``manifest.json`` under the workdir's shards)
are never expired, whatever their age, so a trained model's rows stay reproducible with ``AT (VERSION => id)``.
Called by ``georeset maintain`` and by the ``catalog_maintenance`` DAG alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.workspace import Workspace

__all__ = ["KEEP_DAYS_SETTING", "DEFAULT_KEEP_DAYS", "shard_snapshots", "maintain_stage"]

KEEP_DAYS_SETTING = "GEORESET_LAKE_KEEP_DAYS"
DEFAULT_KEEP_DAYS = 30.0


def shard_snapshots(root: Path) -> list[int]:
    """The lake snapshot ids the shard manifests under ``root`` name."""
    found: set[int] = set()
    for manifest in sorted(root.glob("**/manifest.json")) if root.is_dir() else []:
        try:
            sid = json.loads(manifest.read_text()).get("lake_snapshot_id")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(sid, int):
            found.add(sid)
    return sorted(found)


def _keep_days(keep_days: float | None) -> float:
    if keep_days is not None:
        return float(keep_days)
    raw = os.environ.get(KEEP_DAYS_SETTING, "")
    try:
        return float(raw) if raw else DEFAULT_KEEP_DAYS
    except ValueError:
        raise InputError(f"{KEEP_DAYS_SETTING}={raw!r} is not a number of days",
                         hint=f"set {KEEP_DAYS_SETTING} to e.g. 30, or unset it") from None


def maintain_stage(ws: Workspace, *, keep_days: float | None = None) -> dict[str, Any]:
    """Compact, expire snapshots older than ``keep_days`` (default ``GEORESET_LAKE_KEEP_DAYS`` or 30; the current
    one and the ones shards name are kept), clean up old files. Returns per-table rows/files before and after."""
    from georeset.data_catalog.connect import open_lake
    from georeset.data_catalog.lake import maintain

    days = _keep_days(keep_days)
    con = open_lake(ws.root, extensions=(), create=False)  # an existing lake only: InputError naming --workdir
    try:
        report = maintain(con, keep_days=days, keep_versions=shard_snapshots(ws.shards_dir))
    finally:
        con.close()
    return {"workdir": str(ws.root), "keep_days": days, **report}
