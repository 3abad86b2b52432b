"""What every stage shares: partition keys and names, tiles, batches, times, staging helpers. No Airflow here.

A *partition* is one piece of a stage's work (a batch of tiles, of documents, of grid cells) inside one data
interval, described by a JSON-serialisable dict so an Airflow task can map over it. Partition staging files are
named from the partition key and the interval (:func:`partition_name`), so a retried partition overwrites its own
files, and the commit of a run takes only the files its partitions named (a backfill never commits another
interval's rows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from georeset.errors import InputError
from georeset.timeutil import naive_utc

CLI_INTERVAL = "cli"  # the partition interval of in-process (CLI) runs: a retried command overwrites its own files

__all__ = ["BBox", "CLI_INTERVAL", "now", "interval_key", "partition_name", "tile_key", "tile_grid", "wikipedia_tiles",
           "batched", "stage_or_clear", "parse_bbox", "sample_world_inputs"]

BBox = tuple[float, float, float, float]
T = TypeVar("T")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def now() -> dt.datetime:
    """Wall-clock UTC, naive, to the second (the CLI's reference time; DAG tasks pass the run's time instead)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def interval_key(start: dt.datetime, end: dt.datetime | None = None) -> str:
    """``20240101T000000Z`` or ``20240101T000000Z-20240102T000000Z`` (UTC) for a data interval."""
    fmt = "%Y%m%dT%H%M%SZ"
    s = naive_utc(start).strftime(fmt)
    return s if end is None else f"{s}-{naive_utc(end).strftime(fmt)}"


def partition_name(prefix: str, key: str, interval: str) -> str:
    """Deterministic, file-name-safe staging name for one partition; long keys are shortened with a hash."""
    safe_key = _SAFE.sub("_", key).strip("_")
    if len(safe_key) > 80:
        safe_key = safe_key[:40] + "-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    return f"{_SAFE.sub('_', prefix)}-{safe_key}-{_SAFE.sub('_', interval)}"


def tile_key(tile: Sequence[float] | None) -> str:
    """``minlon_minlat_maxlon_maxlat`` rounded to 1e-5 degrees (about a metre); ``all`` for no tile."""
    return "all" if tile is None else "_".join(f"{float(v):.5f}" for v in tile)


def check_bbox(bbox: Sequence[float]) -> BBox:
    from georeset.pipelines.harvest import validate_bbox

    return validate_bbox(tuple(bbox))


def tile_grid(bbox: Sequence[float], *, tile_deg: float) -> list[BBox]:
    """Square-ish tiles of at most ``tile_deg`` degrees covering ``bbox`` (row by row, south-west first)."""
    if not tile_deg > 0:
        raise InputError(f"tile_deg={tile_deg} must be > 0", hint="use e.g. tile_deg=0.05")
    minlon, minlat, maxlon, maxlat = check_bbox(bbox)
    nx = max(1, math.ceil(round((maxlon - minlon) / tile_deg, 9)))
    ny = max(1, math.ceil(round((maxlat - minlat) / tile_deg, 9)))
    dx, dy = (maxlon - minlon) / nx, (maxlat - minlat) / ny
    return [
        (minlon + i * dx, minlat + j * dy, minlon + (i + 1) * dx if i < nx - 1 else maxlon,
         maxlat if j == ny - 1 else minlat + (j + 1) * dy)
        for j in range(ny) for i in range(nx)
    ]


def wikipedia_tiles(bbox: Sequence[float], *, radius_m: float = 10000.0) -> list[BBox]:
    """The tiles the Wikipedia harvester itself searches (circles of radius <= ``radius_m``)."""
    from georeset.pipelines.harvest import tiles_for_bbox

    return [(t.minlon, t.minlat, t.maxlon, t.maxlat) for t in tiles_for_bbox(check_bbox(bbox), radius_m)]


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (the unit that one mapped task handles)."""
    if size < 1:
        raise InputError(f"batch size {size} must be >= 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def stage_or_clear(rows: list[dict[str, Any]], *, table: str, staging_dir: Path, name: str) -> Path | None:
    """Stage ``rows`` as ``<table>/<name>.parquet``; with no rows, remove an older file of that name."""
    from georeset.data_catalog import staging

    path = staging.stage(rows, table=table, staging_dir=staging_dir, name=name)
    if path is None:
        (Path(staging_dir) / table / f"{name}.parquet").unlink(missing_ok=True)
    staging.fault_point(f"staged:{table}")
    return path


def parse_bbox(text: str) -> BBox:
    """Parse 'minlon,minlat,maxlon,maxlat' and check it is a valid EPSG:4326 box."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError as exc:
        raise InputError(f"--bbox {text!r} is not four numbers", hint="use --bbox minlon,minlat,maxlon,maxlat") from exc
    if len(parts) != 4:
        raise InputError(f"--bbox {text!r} has {len(parts)} values, not 4", hint="use --bbox minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = parts
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InputError(
            f"--bbox {text!r} is outside lon [-180, 180] / lat [-90, 90]",
            hint="give longitude first: minlon,minlat,maxlon,maxlat (did you swap lat and lon?)",
        )
    if minx >= maxx or miny >= maxy:
        raise InputError(f"--bbox {text!r} is empty or inverted", hint="min values must be smaller than max values")
    return minx, miny, maxx, maxy


def sample_world_inputs(world_dir: Path) -> dict[str, Any]:
    """What the sample world built under ``world_dir`` offers as defaults: extracts, areas, dates, STAC dir."""
    stamp = Path(world_dir) / "world.json"
    if not stamp.is_file():
        raise InputError(f"no sample world at {world_dir} (no world.json)",
                         hint="pass the pbfs/areas Params, or build it first (the georeset_sample_world DAG, or "
                              "`georeset demo --workdir DIR`)")
    doc = json.loads(stamp.read_text())
    w = doc.get("world", doc)
    regions = [list(map(float, b)) for b in (w.get("regions") or {}).values()] or [list(map(float, w["bbox"]))]
    return {"pbfs": [str(p) for p in w["osm_pbfs"]], "areas": regions, "dates": sorted(w.get("dates") or []),
            "stac_dir": str(w["stac_dir"]), "collections": sorted((w.get("collections") or {}).values())}
