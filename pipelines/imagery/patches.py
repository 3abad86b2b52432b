"""Fetch patches for many locations: search once, choose an item per location and sensor, read, save, stage.

Per location (a (lon, lat) point or a :class:`~georeset.pipelines.imagery.grid.GridCell`) and per sensor:
- S2: among the items whose footprint contains the point, the one with the best patch-level SCL clear fraction
  (rounded to 0.01), then the nearest date to ``target_date`` (default: the middle of ``datetime``);
- S1: the nearest date.
``patch_id = sha1("<scene_id>|<cell key>|<gsd>|<size>")``. A patch whose row is already in the catalogue and whose
``.npy`` is on disk is skipped without reading pixels, so a re-run duplicates nothing. Pixels are saved as
``<data_dir>/patches/<patch_id>.npy`` (float32, bands x size x size; nodata stored as NaN, never as a
value, its share in ``nodata_fraction``), written to a temp file then renamed. A failed read is a warning plus a counted failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pystac
from rasterio.errors import RasterioError
from rich.progress import Progress
from shapely.geometry import Point, shape

from georeset.data_catalog import stage
from georeset.errors import GeoResetError, GeoResetWarning, InputError
from georeset.pipelines.imagery.bands import sensor_of
from georeset.pipelines.imagery.cloud import qa_pixel_fractions, scl_fractions
from georeset.pipelines.imagery.grid import GridCell, utm_crs
from georeset.pipelines.imagery.mosaic import fill_same_day, native_first, solar_day
from georeset.pipelines.imagery.read import (
    AssetReadError,
    DatasetCache,
    Patch,
    Signer,
    failure_reason,
    patch_grid,
    pixel_checksum,
    read_patch,
    read_scl,
)
from georeset.pipelines.imagery.stac import (
    LICENCE_COPERNICUS,
    LICENCE_SIMULATED,
    is_simulated,
    item_datetime,
    scene_id_of,
    scene_row,
    search_items,
)
from georeset.timeutil import naive_utc

__all__ = ["ImageryReadWarning", "Failure", "FetchResult", "patch_id_of", "location_key", "fetch_patches"]


class ImageryReadWarning(GeoResetWarning):
    """An asset could not be read; the run went on without that patch."""


@dataclass(frozen=True)
class Failure:
    scene_id: str
    location: str
    reason: str  # "<kind>: <detail>"
    kind: str = "read_error"  # not_found | forbidden | timeout | corrupt | read_error (see read.FAILURE_REASONS)
    asset: str = ""  # band name of the failed asset, when known


@dataclass
class FetchResult:
    locations: int = 0
    items_found: int = 0
    patches_read: int = 0
    patches_skipped: int = 0  # already in the catalogue and on disk
    no_item: int = 0  # (location, sensor) pairs with no covering item
    mosaicked: int = 0  # patches whose nodata edge was filled from same-day tiles
    below_min_clear: int = 0  # (location, sensor) pairs whose candidates read were all under min_clear
    failures: list[Failure] = field(default_factory=list)
    patch_ids: list[str] = field(default_factory=list)
    scenes_staged: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def patches_per_second(self) -> float:
        return self.patches_read / self.seconds if self.seconds > 0 else 0.0


#: Candidates read under ``min_clear`` before a (location, sensor) is given up (they are ranked clearest first).
MAX_REJECTED = 3

_READ_ERRORS = (RasterioError, OSError, GeoResetError, ValueError)


def location_key(loc: tuple[float, float] | GridCell) -> str:
    if isinstance(loc, GridCell):
        return loc.key
    return f"{float(loc[0]):.6f},{float(loc[1]):.6f}"


def patch_id_of(scene_id: str, cell: str, gsd: float, size: int) -> str:
    return hashlib.sha1(f"{scene_id}|{cell}|{float(gsd):g}|{int(size)}".encode()).hexdigest()


def _lonlat(loc: tuple[float, float] | GridCell) -> tuple[float, float]:
    return (loc.lon, loc.lat) if isinstance(loc, GridCell) else (float(loc[0]), float(loc[1]))


def _target(datetime_range: str | None) -> datetime | None:
    if not datetime_range:
        return None
    parts = [p for p in datetime_range.split("/") if p and p != ".."]
    dts = [pystac.utils.str_to_datetime(p if "T" in p else f"{p}T00:00:00Z") for p in parts]
    dts = [d if d.tzinfo else d.replace(tzinfo=UTC) for d in dts]
    return dts[0] + (dts[-1] - dts[0]) / 2 if dts else None


def _date_gap(item: pystac.Item, target: datetime | None) -> float:
    dt = item_datetime(item)
    if dt is None:
        return float("inf")
    return abs((dt - target).total_seconds()) if target else -dt.timestamp()  # no target: newest first


def _existing(con: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = con.execute("SELECT patch_id FROM patches WHERE list_contains(?, patch_id)", [ids]).fetchall()
    return {r[0] for r in rows}


def _save_npy(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, image)
    os.replace(tmp, path)


def _patch_row(patch: Patch, *, patch_id: str, scene_id: str, item: pystac.Item, image: np.ndarray,
               stac_api: str, retrieved_at: datetime) -> dict[str, Any]:  # fmt: skip
    checksum = pixel_checksum(image)
    meta = {
        "patch_id": patch_id, "scene_id": scene_id, "sensor": patch.sensor, "lon": patch.lon, "lat": patch.lat,
        "crs": patch.crs, "transform": [float(v) for v in tuple(patch.transform)[:6]], "gsd": patch.gsd,
        "size": patch.size, "bands": patch.bands, "wavelengths_um": patch.wavelengths_um,
        "datetime": naive_utc(patch.datetime), "clear_fraction": patch.fractions.clear,
        "cloud_fraction": patch.fractions.cloud, "nodata_fraction": patch.fractions.nodata,
        "shadow_fraction": patch.fractions.shadow, "quality_source": patch.quality,
        "mask_path": f"patches/{patch_id}.mask.npy", "offset_rules": list(patch.offset_rules),
        "mosaic_scenes": list(patch.mosaic),
        "geom_wkt": patch.footprint.wkt, "path": f"patches/{patch_id}.npy", "checksum": checksum,
        "source": stac_api, "licence": LICENCE_SIMULATED if is_simulated(item) else LICENCE_COPERNICUS,
    }  # fmt: skip
    # content only: not the API address (a local server's port changes between runs) nor the retrieval time
    canon = json.dumps({k: v for k, v in meta.items() if k != "source"}, sort_keys=True, default=str)
    return {**meta, "retrieved_at": retrieved_at, "content_hash": hashlib.sha256(canon.encode()).hexdigest()}


def fetch_patches(
    con: duckdb.DuckDBPyConnection,
    *,
    stac_url: str,
    locations: Sequence[tuple[float, float] | GridCell],
    collections: Sequence[str],
    datetime: str | None,
    staging_dir: Path,
    data_dir: Path,
    gsd: float = 10.0,
    size: int = 32,
    max_items: int = 500,
    max_cloud: float | None = None,
    target_date: datetime | None = None,
    bands: dict[str, list[str]] | None = None,
    progress: bool = True,
    retrieved_at: datetime | None = None,
    orbit_direction: str | None = None,
    sign: Signer | None = None,
    search_cache: bool = True,
    max_open: int = 64,
    min_clear: float = 0.5,
    sortby: str | None = None,
    **client_kwargs: Any,
) -> FetchResult:
    """Fetch one patch per location and sensor; stage ``scenes`` and ``patches`` rows (merge them afterwards).

    ``bands`` optionally maps a sensor ('S2', 'S1') to the band names to read (default: all 12 L2A bands / VV, VH).
    ``sign`` signs hrefs at read time (stored hrefs stay unsigned). The search is cached under
    ``<data_dir>/stac_cache/`` (``search_cache=False`` to search anyway). ``max_open``: datasets kept open between
    patches (idle ones beyond it are closed, least recently used first; a dataset in use is never closed).
    ``min_clear``: a patch is kept only when at least this share of its pixels is a clear view (S2: SCL clear
    classes; SAR: valid pixels); otherwise the next candidate is read (at most :data:`MAX_REJECTED` reads), and the
    (location, sensor) counts in ``below_min_clear``. ``sortby`` orders the search (see ``search_items``).
    """
    t0 = time.perf_counter()
    if not locations:
        raise InputError("no locations to fetch patches for", hint="harvest documents first or widen the area")
    retrieved = naive_utc(retrieved_at or datetime_now())
    data_dir, staging_dir = Path(data_dir), Path(staging_dir)
    result = FetchResult(locations=len(locations))
    pts = [_lonlat(loc) for loc in locations]
    pad = size * gsd / 111_000.0
    bbox = [min(p[0] for p in pts) - pad, min(p[1] for p in pts) - pad, max(p[0] for p in pts) + pad, max(p[1] for p in pts) + pad]
    items = search_items(stac_url, collections=collections, bbox=bbox, datetime=datetime, max_cloud=max_cloud,
                         orbit_direction=orbit_direction, max_items=max_items, sortby=sortby,
                         cache_dir=data_dir / "stac_cache" if search_cache else None, **client_kwargs)  # fmt: skip
    result.items_found = len(items)
    target = target_date or _target(datetime)
    shapes = [(it, shape(it.geometry)) for it in items if it.geometry]
    scenes: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    with DatasetCache(max_open=max_open) as cache, Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("imagery patches", total=len(locations))
        for loc, (lon, lat) in zip(locations, pts, strict=True):
            key = location_key(loc)
            crs = loc.crs if isinstance(loc, GridCell) else utm_crs(lon, lat)
            covering = [it for it, geom in shapes if geom.covers(Point(lon, lat))]
            for sensor in ("S2", "LANDSAT", "S1"):
                cands = [it for it in covering if sensor_of(it.collection_id, it.properties.get("platform")) == sensor]
                if not any(sensor_of(c) == sensor for c in collections):
                    continue
                if not cands:
                    result.no_item += 1
                    continue
                ids = {patch_id_of(scene_id_of(it), key, gsd, size): it for it in cands}
                done = [pid for pid in _existing(con, list(ids)) if (data_dir / "patches" / f"{pid}.npy").exists()]
                if done:
                    result.patches_skipped += 1
                    result.patch_ids.append(sorted(done)[0])
                    continue
                patch, item, rejected = None, None, 0
                for cand in _rank(cands, sensor, lon, lat, gsd=gsd, size=size, crs=crs, target=target, cache=cache,
                                  sign=sign):  # fmt: skip
                    try:
                        got = read_patch(cand, lon, lat, size=size, gsd=gsd, dst_crs=crs, cache=cache,
                                         bands=(bands or {}).get(sensor), sign=sign)  # fmt: skip
                    except _READ_ERRORS as exc:
                        _record(result, scene_id_of(cand), key, exc)
                        continue
                    if got.fractions.nodata > 0:  # a tile edge: fill from same-day tiles before judging it
                        day = solar_day(cand, lon)
                        same = sorted((c for c in cands if c is not cand and c.collection_id == cand.collection_id
                                       and solar_day(c, lon) == day), key=lambda c: (native_first(c, crs), c.id))  # fmt: skip
                        got, used = fill_same_day(got, cand, same, partial(
                            read_patch, lon=lon, lat=lat, size=size, gsd=gsd, dst_crs=crs, cache=cache,
                            bands=(bands or {}).get(sensor), sign=sign))  # fmt: skip
                        got.mosaic = used
                    if got.fractions.clear + 1e-9 >= min_clear:
                        patch, item = got, cand
                        result.mosaicked += bool(got.mosaic)
                        break
                    rejected += 1
                    if rejected >= MAX_REJECTED:
                        break
                if patch is None or item is None:
                    if rejected:
                        result.below_min_clear += 1
                    continue
                sid = scene_id_of(item)
                pid = patch_id_of(sid, key, gsd, size)
                image = np.ascontiguousarray(patch.image, dtype=np.float32)  # nodata stays NaN
                _save_npy(data_dir / "patches" / f"{pid}.mask.npy", patch.quality_mask)
                _save_npy(data_dir / "patches" / f"{pid}.npy", image)
                rows.append(_patch_row(patch, patch_id=pid, scene_id=sid, item=item, image=image,
                                       stac_api=stac_url, retrieved_at=retrieved))  # fmt: skip
                if sid not in scenes:
                    scenes[sid] = scene_row(item, stac_api=stac_url, retrieved_at=retrieved)
                result.patches_read += 1
                result.patch_ids.append(pid)
            bar.advance(task)
    tag = hashlib.sha1("|".join(sorted(r["patch_id"] for r in rows)).encode()).hexdigest()[:16]
    if scenes:
        stage(list(scenes.values()), table="scenes", staging_dir=staging_dir, name=f"imagery-{tag}")
    if rows:
        stage(rows, table="patches", staging_dir=staging_dir, name=f"imagery-{tag}")
    result.scenes_staged = len(scenes)
    result.seconds = time.perf_counter() - t0
    return result


def datetime_now() -> datetime:
    return datetime.now(UTC)


def _record(result: FetchResult, scene_id: str, key: str, exc: BaseException) -> None:
    kind = failure_reason(exc)
    detail = exc.message if isinstance(exc, GeoResetError) else f"{type(exc).__name__}: {exc}"
    reason = f"{kind}: {detail}"
    warnings.warn(f"patch at {key} from {scene_id} not read: {reason}", ImageryReadWarning, stacklevel=3)
    result.failures.append(Failure(scene_id, key, reason, kind, exc.band if isinstance(exc, AssetReadError) else ""))


def _rank(cands: list[pystac.Item], sensor: str, lon: float, lat: float, *, gsd: float, size: int, crs: str,
          target: datetime | None, cache: DatasetCache, sign: Signer | None = None) -> list[pystac.Item]:  # fmt: skip
    """Candidates best first: S2 by patch-level clear fraction (0.01 steps) then date gap; S1 by date gap.
    An unreadable SCL ranks its item last (its read will then be tried, and fail or not, in that order)."""
    if sensor not in {"S2", "LANDSAT"} or len(cands) == 1:
        return sorted(cands, key=lambda it: (round(_date_gap(it, target) / 86400.0), native_first(it, crs),
                                             _date_gap(it, target), it.id))  # fmt: skip
    scored = []
    for it in cands:
        try:
            pcrs, tf = patch_grid(it, lon, lat, gsd=gsd, size=size, dst_crs=crs)
            scl = read_scl(it, pcrs, tf, size, cache, sign)
            if scl is None:
                clear = 0.0
            else:
                clear = (qa_pixel_fractions(scl) if sensor == "LANDSAT" else scl_fractions(scl)).clear
        except _READ_ERRORS:
            clear = -1.0
        gap = _date_gap(it, target)
        # equal clear share and day: the tile in the cell's own CRS first (no warp), then the nearest time, then id
        scored.append((-round(clear, 2), round(gap / 86400.0), native_first(it, crs), gap, it.id, it))
    return [s[-1] for s in sorted(scored, key=lambda s: s[:-1])]
