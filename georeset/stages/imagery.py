"""Imagery stage: Sentinel-1/2 patches around the located documents, through any STAC API.

Contract: :func:`plan` (reads the catalogue) grids the located documents into patch-sized cells, in batches;
:func:`run` fetches one batch and stages ``scenes``/``patches`` as ``imagery-<cells>-<interval>`` (pixels go to
``data/patches/<patch_id>.npy``, content-addressed); the commit takes both tables of those names together.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.stages import writer
from georeset.stages._base import CLI_INTERVAL, batched, now, partition_name
from georeset.workspace import Workspace

__all__ = ["plan", "run", "imagery_stage"]


def plan(con: Any, *, gsd: float, size: int, max_cells: int = 0, cells_per_batch: int = 50, grid: str = "utm"
         ) -> list[list[dict[str, Any]]]:
    """Grid cells (one patch each) holding the located documents, in batches of plain dicts."""
    from georeset.pipelines.imagery import grid_cells

    pts = con.execute("SELECT lon, lat FROM documents WHERE lon IS NOT NULL AND lat IS NOT NULL ORDER BY doc_id"
                      ).fetchall()
    if not pts:
        raise InputError("no documents with a location in the catalogue", hint="harvest documents first")
    cells = grid_cells([(float(a), float(b)) for a, b in pts], cell_m=gsd * size, grid=grid)
    cells = cells[:max_cells] if max_cells else cells
    return batched([asdict(c) for c in cells], cells_per_batch)


def run(
    cells: Sequence[Mapping[str, Any]], *, stac_url: str, collections: Sequence[str], datetime_range: str,
    staging_dir: Path, data_dir: Path, retrieved_at: dt.datetime, interval: str, gsd: float = 10.0, size: int = 32,
    max_cloud: float | None = None, **fetch_options: Any,
) -> dict[str, Any]:
    """Fetch one patch per cell and sensor; stage ``scenes``/``patches`` as ``imagery-<cells>-<interval>``.

    ``fetch_options`` go to :func:`~georeset.pipelines.imagery.fetch_patches` as they are (sign, min_clear, ...)."""
    import duckdb

    from georeset.pipelines.imagery import GridCell, fetch_patches

    locs = [GridCell(**dict(c)) for c in cells]
    name = partition_name("imagery", ",".join(c.key for c in locs), interval)
    tmp = Path(staging_dir) / ".partitions" / f"{name}.{uuid.uuid4().hex}"
    con = duckdb.connect()  # stage-only: an empty patches table, so every patch of the partition is (re)staged
    con.execute("CREATE TABLE patches (patch_id VARCHAR)")
    try:
        res = fetch_patches(con, stac_url=stac_url, locations=locs, collections=list(collections),
                            datetime=datetime_range, staging_dir=tmp, data_dir=Path(data_dir), gsd=gsd, size=size,
                            max_cloud=max_cloud, retrieved_at=retrieved_at, progress=False, **fetch_options)
        for table in ("scenes", "patches"):
            produced = sorted((tmp / table).glob("*.parquet"))
            final = Path(staging_dir) / table / f"{name}.parquet"
            final.parent.mkdir(parents=True, exist_ok=True)
            if produced:
                os.replace(produced[0], final)
            else:
                final.unlink(missing_ok=True)
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"cells": len(locs), "patches_read": res.patches_read, "failures": len(res.failures),
            "no_item": res.no_item, "below_min_clear": res.below_min_clear, "names": [name]}


def imagery_stage(
    ws: Workspace, *, stac_url: str, datetime: str, gsd: float = 10.0, size: int = 32, max_cells: int = 400,
    collections: Sequence[str] = ("sentinel-2-l2a", "sentinel-1-grd"), progress: bool = True,
    cells_per_batch: int = 50, max_cloud: float | None = None, retrieved_at: dt.datetime | None = None,
    grid: str = "utm", **fetch_options: Any,
) -> dict[str, Any]:
    """Plan the cells, fetch every batch in process, commit scenes and patches together.

    ``fetch_options`` go to :func:`~georeset.pipelines.imagery.fetch_patches` as they are (sign, min_clear, ...)."""
    from tqdm import tqdm

    when = retrieved_at or now()
    con = writer.open_writer(ws)
    try:
        batches = plan(con, gsd=gsd, size=size, max_cells=max_cells, cells_per_batch=cells_per_batch, grid=grid)
    finally:
        con.close()
    done = [run(b, stac_url=stac_url, collections=collections, datetime_range=datetime, staging_dir=ws.staging_dir,
                data_dir=ws.data_dir, retrieved_at=when, interval=CLI_INTERVAL, gsd=gsd, size=size,
                max_cloud=max_cloud, **fetch_options)
            for b in tqdm(batches, disable=not progress, unit="batch", desc="imagery")]
    merged = writer.commit(ws, ["scenes", "patches"], names=[n for d in done for n in d["names"]])
    return {"cells": sum(d["cells"] for d in done), "failed": sum(d["failures"] for d in done),
            "patches_read": sum(d["patches_read"] for d in done), "scenes": merged["scenes"]["total"],
            "patches": merged["patches"]["total"], "below_min_clear": sum(d["below_min_clear"] for d in done)}
