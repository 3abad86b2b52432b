"""Write arrays as Cloud-Optimised GeoTIFFs (GDAL COG driver, DEFLATE, tiled, with overviews)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy

__all__ = ["write_cog", "is_cog"]


def write_cog(
    path: Path,
    array: np.ndarray,
    *,
    crs: str,
    transform: Affine,
    nodata: float | None,
    description: str,
    blocksize: int = 64,
    resampling: str = "average",
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a single-band COG atomically (temp file then rename); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    count, h, w = a.shape
    dtype = a.dtype.name
    predictor = "3" if a.dtype.kind == "f" else "2"
    profile = {
        "driver": "GTiff", "width": w, "height": h, "count": count, "dtype": dtype, "crs": crs,
        "transform": transform, "nodata": nodata,
    }  # fmt: skip
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(a)
            for i in range(count):
                ds.set_band_description(i + 1, description)
            ds.update_tags(**(tags or {}))
        with mem.open() as src:
            rio_copy(
                src, str(tmp), driver="COG", BLOCKSIZE=blocksize, COMPRESS="DEFLATE", PREDICTOR=predictor,
                OVERVIEW_RESAMPLING=resampling.upper(), RESAMPLING=resampling.upper(), NUM_THREADS="ALL_CPUS",
            )  # fmt: skip
    os.replace(tmp, path)
    return path


def is_cog(path: Path) -> bool:
    """True when GDAL reports the COG layout, the file is tiled and DEFLATE-compressed."""
    with rasterio.open(path) as ds:
        layout = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "")
        return layout.upper() == "COG" and ds.profile.get("tiled", False) and ds.compression is not None
