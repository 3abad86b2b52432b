"""Planetary Computer items served locally: the recorded PC ``sentinel-2-l2a`` item (T60VUK, 2019-01-01) and a
``sentinel-1-rtc`` item built to the PC collection's ``item_assets`` (microsoft/planetary-computer-tasks,
datasets/sentinel-1-rtc/collection/template.json: assets ``vv`` / ``vh``, float32 gamma0 linear power, nodata
-32768), with small generated COGs at their blob paths.

Hrefs keep their blob host and path but use ``http://`` (so a local proxy, ``pc_sas_server``, can serve them);
reading them needs the SAS token the ``planetary-computer`` package fetches from ``PC_SDK_SAS_URL``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from affine import Affine
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy

PC_S2_ITEM = "planetary-computer_sentinel-2-l2a_S2A_MSIL2A_20190101T000001_R116_T60VUK_20201007T214652.json"
POINT = (174.03, 58.17)  # inside T60VUK's data footprint, UTM zone 60 (the tile's own CRS)
CRS = "EPSG:32660"
HALF = 960.0  # metres either side of the point
S2_REFLECTANCE = {"B01": 0.03, "B02": 0.04, "B03": 0.05, "B04": 0.06, "B05": 0.07, "B06": 0.08, "B07": 0.09,
                  "B08": 0.10, "B8A": 0.11, "B09": 0.12, "B11": 0.13, "B12": 0.14}  # fmt: skip
S1_GAMMA0 = {"vv": 0.05, "vh": 0.01}
S1_ID = "S1A_IW_GRDH_1SDV_20190102T184512_20190102T184537_025298_02CC2C_rtc"


def _origin(res: float) -> tuple[float, float]:
    x, y = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(*POINT)
    return math.floor((x - HALF) / 60) * 60, math.ceil((y + HALF) / 60) * 60


def _write_cog(path: Path, arr: np.ndarray, res: float, nodata: float | None) -> None:
    x0, y0 = _origin(res)
    h, w = arr.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    profile: dict[str, Any] = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": arr.dtype.name,
                               "crs": CRS, "transform": Affine(res, 0, x0, 0, -res, y0), "nodata": nodata}  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(arr, 1)
        with mem.open() as ds:
            rio_copy(ds, path, driver="COG", blocksize=128, compress="DEFLATE", overviews="NONE")


def _blob(href: str, blobs: Path) -> tuple[str, Path]:
    u = urlsplit(href)
    return f"http://{u.netloc}{u.path}", blobs / u.netloc / u.path.lstrip("/")


def _collection(cid: str) -> dict[str, Any]:
    return {"type": "Collection", "stac_version": "1.0.0", "id": cid, "description": f"{cid} (local copy)",
            "license": "proprietary", "links": [],
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}}  # fmt: skip


def write_pc_world(root: Path, shared_dir: Path) -> dict[str, Any]:
    root, blobs = Path(root), Path(root) / "blobs"
    s2 = json.loads((shared_dir / "data" / "stac" / "items" / PC_S2_ITEM).read_text())
    size = int(2 * HALF)
    for key, asset in s2["assets"].items():
        if "blob.core.windows.net" not in asset["href"]:
            continue
        href, path = _blob(asset["href"], blobs)
        asset["href"] = href
        if key in S2_REFLECTANCE or key == "SCL":
            res = float(asset.get("gsd") or 10)
            n = int(size // res)
            arr = (np.full((n, n), 4, np.uint8) if key == "SCL"
                   else np.full((n, n), round(S2_REFLECTANCE[key] * 10000), np.uint16))  # baseline 02.12: DN / 10000
            _write_cog(path, arr, res, 0)
    s2["links"] = []
    x0, y0 = _origin(10)
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    ring = [list(to_ll.transform(x, y)) for x, y in [(x0, y0), (x0 + size, y0), (x0 + size, y0 - size), (x0, y0 - size), (x0, y0)]]
    base = f"https://sentinel1euwestrtc.blob.core.windows.net/sentinel1-grd-rtc/GRD/2019/1/2/IW/DV/{S1_ID}/measurement"
    s1_assets = {}
    for pol, v in S1_GAMMA0.items():
        href, path = _blob(f"{base}/iw-{pol}.rtc.tiff", blobs)
        _write_cog(path, np.full((size // 10, size // 10), v, np.float32), 10, -32768)
        s1_assets[pol] = {"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"],
                          "title": f"{pol.upper()}: terrain-corrected gamma naught",
                          "raster:bands": [{"nodata": -32768, "data_type": "float32", "spatial_resolution": 10}]}  # fmt: skip
    s1 = {"type": "Feature", "stac_version": "1.0.0", "id": S1_ID, "collection": "sentinel-1-rtc",
          "stac_extensions": ["https://stac-extensions.github.io/sar/v1.0.0/schema.json",
                              "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
          "geometry": {"type": "Polygon", "coordinates": [ring]},
          "bbox": [min(p[0] for p in ring), min(p[1] for p in ring), max(p[0] for p in ring), max(p[1] for p in ring)],
          "properties": {"datetime": "2019-01-02T18:45:24Z", "platform": "SENTINEL-1A", "constellation": "Sentinel-1",
                         "sar:product_type": "GRD", "sar:instrument_mode": "IW", "sar:polarizations": ["VV", "VH"],
                         "sar:frequency_band": "C", "sat:orbit_state": "ascending", "proj:epsg": 32660},
          "links": [], "assets": s1_assets}  # fmt: skip
    paths = []
    for cid in ("sentinel-2-l2a", "sentinel-1-rtc"):
        p = root / f"collection-{cid}.json"
        p.write_text(json.dumps(_collection(cid)))
        paths.append(p)
    ip = root / "items.json"
    ip.write_text(json.dumps({"type": "FeatureCollection", "features": [s2, s1]}))
    paths.append(ip)
    return {"root": root, "blobs": blobs, "items": [copy.deepcopy(s2), s1], "serve_paths": paths}
