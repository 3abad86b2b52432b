"""Tiny simulated Sentinel-2 L2A / Sentinel-1 scenes as COGs + STAC items (the sample world's conventions).

Area: 960 m x 960 m in UTM 35N (EPSG:32635) near Helsinki. Every S2 band is a known constant reflectance,
except B8A which steps from 0.20 (west half) to 0.40 (east half) on its native 20 m grid. DN = reflectance * 10000
+ 1000 (uint16, nodata 0, ``raster:bands`` scale 0.0001 offset -0.1, processing baseline 05.00).
Scenes: S2 2024-06-01 (SCL: west half clear, east half cloud), S2 2024-06-20 (all clear), S1 2024-06-05 (VV 0.1,
VH 0.02 linear power).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy

CRS = "EPSG:32635"
X0, Y0 = 384960.0, 6672000.0  # upper-left corner (multiples of 320 m: fixture cells lie inside)
EXTENT = 960.0
REFLECTANCE = {
    "B01": 0.05, "B02": 0.06, "B03": 0.08, "B04": 0.07, "B05": 0.12, "B06": 0.25, "B07": 0.30,
    "B08": 0.33, "B8A": 0.20, "B09": 0.35, "B11": 0.18, "B12": 0.10,
}  # fmt: skip
NATIVE = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
          "B09": 60, "B11": 20, "B12": 20}  # fmt: skip
WAVELENGTH = {"B01": 0.443, "B02": 0.49, "B03": 0.56, "B04": 0.665, "B05": 0.704, "B06": 0.74, "B07": 0.783,
              "B08": 0.842, "B8A": 0.865, "B09": 0.945, "B11": 1.61, "B12": 2.19}  # fmt: skip
B8A_EAST = 0.40
S1_LINEAR = {"VV": 0.1, "VH": 0.02}
S2_SCENES = [("S2A_FIXTURE_20240601", "2024-06-01T10:00:00Z", "half-cloud"), ("S2B_FIXTURE_20240620", "2024-06-20T10:00:00Z", "clear")]
S1_SCENE = ("S1A_FIXTURE_20240605", "2024-06-05T05:00:00Z")


def _write_cog(path: Path, arr: np.ndarray, res: float, nodata: float | None) -> None:
    h, w = arr.shape
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": arr.dtype.name, "crs": CRS,
        "transform": Affine(res, 0, X0, 0, -res, Y0), "nodata": nodata,
    }  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(arr, 1)
        with mem.open() as ds:
            rio_copy(ds, path, driver="COG", blocksize=128, compress="DEFLATE", overviews="NONE")


def lonlat_box() -> list[list[float]]:
    from pyproj import Transformer

    t = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    pts = [(X0, Y0), (X0 + EXTENT, Y0), (X0 + EXTENT, Y0 - EXTENT), (X0, Y0 - EXTENT), (X0, Y0)]
    return [list(t.transform(x, y)) for x, y in pts]


def point(fx: float, fy: float) -> tuple[float, float]:
    """lon/lat of a point at fraction (fx east, fy south) of the scene."""
    from pyproj import Transformer

    t = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(X0 + fx * EXTENT, Y0 - fy * EXTENT)
    return float(lon), float(lat)


def _item(item_id: str, collection: str, dt: str, assets: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    ring = lonlat_box()
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
        ],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {"datetime": dt, "proj:code": CRS, "georeset:simulated": True, **props},
        "links": [], "assets": assets,
    }  # fmt: skip


def _collection(cid: str) -> dict[str, Any]:
    ring = lonlat_box()
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return {
        "type": "Collection", "stac_version": "1.0.0", "id": cid, "description": f"fixture {cid} (simulated)",
        "license": "CC0-1.0", "links": [],
        "extent": {"spatial": {"bbox": [[min(lons), min(lats), max(lons), max(lats)]]},
                   "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}},
    }  # fmt: skip


def write_fixture_world(root: Path) -> dict[str, Any]:
    """Write the COGs and ``collections.json`` / ``items.json``; returns paths and the pystac-ready item dicts."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    items: list[dict[str, Any]] = []
    for item_id, dt, sky in S2_SCENES:
        d = root / item_id
        d.mkdir(exist_ok=True)
        assets: dict[str, Any] = {}
        for band, r in REFLECTANCE.items():
            res = NATIVE[band]
            n = int(EXTENT // res)
            refl = np.full((n, n), r, dtype=np.float64)
            if band == "B8A":
                refl[:, n // 2 :] = B8A_EAST
            dn = np.round(refl * 10000 + 1000).astype(np.uint16)
            _write_cog(d / f"{band}.tif", dn, res, 0)
            assets[band] = {
                "href": str(d / f"{band}.tif"), "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data", "reflectance"], "gsd": res,
                "eo:bands": [{"name": band, "center_wavelength": WAVELENGTH[band]}],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1,
                                  "spatial_resolution": res}],
            }  # fmt: skip
        n = int(EXTENT // 20)
        scl = np.full((n, n), 4, dtype=np.uint8)
        if sky == "half-cloud":
            scl[:, n // 2 :] = 9
        _write_cog(d / "SCL.tif", scl, 20, 0)
        assets["SCL"] = {"href": str(d / "SCL.tif"), "roles": ["data"], "raster:bands": [{"nodata": 0, "spatial_resolution": 20}]}
        cloud = 50.0 if sky == "half-cloud" else 0.0
        props = {"platform": "sentinel-2a", "constellation": "sentinel-2", "instruments": ["msi"],
                 "eo:cloud_cover": cloud, "s2:processing_baseline": "05.00", "gsd": 10}  # fmt: skip
        items.append(_item(item_id, "sentinel-2-l2a", dt, assets, props))
    item_id, dt = S1_SCENE
    d = root / item_id
    d.mkdir(exist_ok=True)
    assets = {}
    for pol, v in S1_LINEAR.items():
        n = int(EXTENT // 10)
        _write_cog(d / f"{pol}.tif", np.full((n, n), v, dtype=np.float32), 10, None)
        assets[pol.lower()] = {"href": str(d / f"{pol}.tif"), "roles": ["data"], "sar:polarizations": [pol],
                               "raster:bands": [{"data_type": "float32", "unit": "linear power", "spatial_resolution": 10}]}  # fmt: skip
    props = {"platform": "sentinel-1a", "constellation": "sentinel-1", "sar:instrument_mode": "IW",
             "sar:polarizations": ["VV", "VH"], "sar:frequency_band": "C"}  # fmt: skip
    items.append(_item(item_id, "sentinel-1-grd", dt, assets, props))
    paths = []
    for cid in ("sentinel-2-l2a", "sentinel-1-grd"):
        p = root / f"collection-{cid}.json"
        p.write_text(json.dumps(_collection(cid)))
        paths.append(p)
    ip = root / "items.json"
    ip.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    paths.append(ip)
    return {"root": root, "items": items, "serve_paths": paths}


def check_rasterio() -> None:  # pragma: no cover - debugging aid
    print(rasterio.__gdal_version__)


def write_many_scenes_world(root: Path, n_scenes: int) -> dict[str, Any]:
    """The fixture world plus ``n_scenes`` more S2 items over the same area (one a day from 2024-01-01), each with
    its own hrefs (symbolic links to the clear scene's COGs), so that a location has ``n_scenes + 2`` candidates
    and a reader opens ``13 * n_scenes`` distinct files."""
    world = write_fixture_world(root)
    base = next(i for i in world["items"] if i["id"] == S2_SCENES[1][0])
    items = list(world["items"])
    for k in range(n_scenes):
        item_id = f"S2X_MANY_{k:04d}"
        d = Path(root) / item_id
        d.mkdir(exist_ok=True)
        assets = {}
        for key, asset in base["assets"].items():
            link = d / Path(asset["href"]).name
            if not link.exists():
                link.symlink_to(asset["href"])
            assets[key] = {**asset, "href": str(link)}
        day = f"2024-{1 + k // 28 % 12:02d}-{1 + k % 28:02d}T10:{k // 336 % 60:02d}:00Z"
        items.append({**base, "id": item_id, "assets": assets, "properties": {**base["properties"], "datetime": day}})
    ip = Path(root) / "items.json"
    ip.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return {**world, "items": items}
