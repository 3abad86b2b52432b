"""Patch grids: the local UTM zone of a point, patch-sized grid cells, and a patch's grid centred on a point."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from affine import Affine
from pyproj import CRS, Transformer

__all__ = ["GridCell", "utm_crs", "to_lonlat", "from_lonlat", "to_lonlat_many", "cell_of", "grid_cells", "patch_transform",
           "majortom_cell", "majortom_id", "GRIDS"]

#: Location grids: ``utm`` (cells of the point's UTM zone, edges on multiples of ``cell_m``: the pairing join uses
#: them as integer keys) and ``majortom`` (one global grid: a location has one cell id whatever its UTM zone, so
#: cells either side of a zone boundary cannot overlap as duplicates).
GRIDS = ("utm", "majortom")
#: Major TOM's sphere (Francis & Czerkawski 2024, "Major TOM: Expandable Datasets for Earth Observation",
#: arXiv:2402.12095, section 3.1): the equatorial radius.
_R_M = 6378137.0


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
    i: int  # column index: floor(x / cell_m) (majortom: the global column)
    j: int  # row index: floor(y / cell_m) (majortom: the global row)
    cell_m: float
    lon: float
    lat: float
    grid: str = "utm"

    @property
    def key(self) -> str:
        if self.grid == "majortom":
            return f"majortom:{self.cell_m:g}:{majortom_id(self.j, self.i)}"
        return f"{self.crs}:{self.cell_m:g}:{self.i}:{self.j}"

    @property
    def center_xy(self) -> tuple[float, float]:
        if self.grid == "majortom":
            return from_lonlat(self.crs, self.lon, self.lat)
        return ((self.i + 0.5) * self.cell_m, (self.j + 0.5) * self.cell_m)


def cell_of(lon: float, lat: float, cell_m: float) -> GridCell:
    crs = utm_crs(lon, lat)
    x, y = from_lonlat(crs, lon, lat)
    i, j = int(math.floor(x / cell_m)), int(math.floor(y / cell_m))
    clon, clat = to_lonlat(crs, (i + 0.5) * cell_m, (j + 0.5) * cell_m)
    return GridCell(crs, i, j, float(cell_m), clon, clat)


def majortom_id(row: int, col: int) -> str:
    """Major TOM's cell name: row from the equator (U north, D south), column from the prime meridian (R east, L
    west), e.g. ``2171U_1053R``."""
    return f"{abs(row)}{'U' if row >= 0 else 'D'}_{abs(col)}{'R' if col >= 0 else 'L'}"


def majortom_cell(lon: float, lat: float, cell_m: float) -> GridCell:
    """The Major TOM cell of a point (arXiv:2402.12095 s. 3.1): rows ``cell_m`` apart along the meridian from the
    equator; in each row, columns ``cell_m`` apart along the row's (lower-edge) parallel from the prime meridian (the
    number of columns shrinks with cos(latitude)). Its patch is centred on the cell centre, in the UTM zone of that
    centre: every location has one global cell id, and neighbouring cells do not overlap whichever zones they are in."""
    dlat = math.degrees(cell_m / _R_M)
    row = int(math.floor(lat / dlat))
    lat0 = row * dlat
    ncols = max(1, int(math.ceil(2 * math.pi * _R_M * math.cos(math.radians(lat0)) / cell_m)))
    dlon = 360.0 / ncols
    col = int(math.floor(lon / dlon))
    clon, clat = (col + 0.5) * dlon, lat0 + dlat / 2
    if clon >= 180.0:
        clon -= 360.0
    return GridCell(utm_crs(clon, clat), col, row, float(cell_m), clon, clat, "majortom")


def grid_cells(points: Iterable[tuple[float, float]], cell_m: float, grid: str = "utm") -> list[GridCell]:
    """Distinct cells (sorted) holding the (lon, lat) points, so nearby documents share one patch.

    Use ``cell_m = size * gsd`` (the patch extent): each cell centre then gets one patch covering the cell.
    ``grid``: 'utm' (cells of each point's UTM zone) or 'majortom' (one global grid, see :func:`majortom_cell`).
    """
    if cell_m <= 0:
        raise ValueError("cell_m must be > 0")
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}")
    of = majortom_cell if grid == "majortom" else cell_of
    return sorted({of(float(lon), float(lat), cell_m) for lon, lat in points})


def patch_transform(x: float, y: float, *, gsd: float, size: int) -> Affine:
    """North-up transform of a ``size`` x ``size`` grid at ``gsd`` centred (to within half a pixel) on (x, y), with
    edges on multiples of ``gsd`` so that it aligns with the native 10/20/60 m Sentinel grids."""
    half = size * gsd / 2.0
    left = round((x - half) / gsd) * gsd
    top = round((y + half) / gsd) * gsd
    return Affine(gsd, 0.0, left, 0.0, -gsd, top)
