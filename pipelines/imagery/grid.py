"""Patch grids: the local UTM zone of a point, patch-sized grid cells, and a patch's grid centred on a point."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from affine import Affine
from pyproj import CRS, Transformer

__all__ = ["GridCell", "utm_crs", "to_lonlat", "from_lonlat", "to_lonlat_many", "cell_of", "grid_cells", "patch_transform"]


def utm_crs(lon: float, lat: float) -> str:
    """'EPSG:326zz' (north) or 'EPSG:327zz' (south) for the WGS84 UTM zone of a point."""
    zone = min(60, max(1, int(math.floor((lon + 180.0) / 6.0)) + 1))
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def from_lonlat(crs: str, lon: float, lat: float) -> tuple[float, float]:
    x, y = _transformer("EPSG:4326", crs).transform(lon, lat)
    return float(x), float(y)


def to_lonlat(crs: str, x: float, y: float) -> tuple[float, float]:
    lon, lat = _transformer(crs, "EPSG:4326").transform(x, y)
    return float(lon), float(lat)


def to_lonlat_many(crs: str, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """Several points in one pyproj call."""
    lon, lat = _transformer(crs, "EPSG:4326").transform(xs, ys)
    return [float(v) for v in lon], [float(v) for v in lat]


@dataclass(frozen=True, order=True)
class GridCell:
    """A ``cell_m`` x ``cell_m`` cell of a UTM zone; (lon, lat) is its centre."""

    crs: str
    i: int  # column index: floor(x / cell_m)
    j: int  # row index: floor(y / cell_m)
    cell_m: float
    lon: float
    lat: float

    @property
    def key(self) -> str:
        return f"{self.crs}:{self.cell_m:g}:{self.i}:{self.j}"

    @property
    def center_xy(self) -> tuple[float, float]:
        return ((self.i + 0.5) * self.cell_m, (self.j + 0.5) * self.cell_m)


def cell_of(lon: float, lat: float, cell_m: float) -> GridCell:
    crs = utm_crs(lon, lat)
    x, y = from_lonlat(crs, lon, lat)
    i, j = int(math.floor(x / cell_m)), int(math.floor(y / cell_m))
    clon, clat = to_lonlat(crs, (i + 0.5) * cell_m, (j + 0.5) * cell_m)
    return GridCell(crs, i, j, float(cell_m), clon, clat)


def grid_cells(points: Iterable[tuple[float, float]], cell_m: float) -> list[GridCell]:
    """Distinct cells (sorted) holding the (lon, lat) points, so nearby documents share one patch.

    Use ``cell_m = size * gsd`` (the patch extent): each cell centre then gets one patch covering the cell.
    """
    if cell_m <= 0:
        raise ValueError("cell_m must be > 0")
    return sorted({cell_of(float(lon), float(lat), cell_m) for lon, lat in points})


def patch_transform(x: float, y: float, *, gsd: float, size: int) -> Affine:
    """North-up transform of a ``size`` x ``size`` grid at ``gsd`` centred (to within half a pixel) on (x, y), with
    edges on multiples of ``gsd`` so that it aligns with the native 10/20/60 m Sentinel grids."""
    half = size * gsd / 2.0
    left = round((x - half) / gsd) * gsd
    top = round((y + half) / gsd) * gsd
    return Affine(gsd, 0.0, left, 0.0, -gsd, top)
