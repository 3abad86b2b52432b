"""Read one patch of a STAC item around a lon/lat: windowed reads on a UTM grid at a chosen GSD, physical units.

- Grid: the item's projected CRS (its UTM zone) unless ``dst_crs`` is given; edges on multiples of ``gsd``
  (see :func:`~georeset.pipelines.imagery.grid.patch_transform`).
- A band already on that grid (same CRS and resolution, aligned) is read with a plain window; any other band
  (20/60 m, another CRS) goes through a ``WarpedVRT`` onto the patch grid: bilinear for reflectance and backscatter,
  nearest for class layers (SCL). Only the blocks under the patch are decoded.
- Sentinel-2: reflectance = DN * scale + offset from ``raster:bands``; without them, from the processing baseline
  (>= 04.00: (DN - 1000) / 10000, else DN / 10000). Nodata pixels become NaN.
- Sentinel-1: linear power -> dB (10 log10); values already in dB (``raster:bands`` unit 'dB') pass through.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from shapely.geometry import Polygon

from georeset.errors import InputError
from georeset.pipelines.imagery.bands import (
    S1_DEFAULT_BANDS,
    S2_DEFAULT_BANDS,
    BandSpec,
    band_specs,
    processing_baseline,
    sensor_of,
)
from georeset.pipelines.imagery.cloud import SclFractions, scl_fractions
from georeset.pipelines.imagery.gdal_env import gdal_env
from georeset.pipelines.imagery.grid import from_lonlat, patch_transform, to_lonlat, utm_crs
from georeset.pipelines.imagery.stac import item_crs, item_datetime

__all__ = ["Patch", "DatasetCache", "read_patch", "read_scl", "patch_grid", "pixel_checksum", "save_patch_npz"]


@dataclass
class Patch:
    """A read patch. ``image`` is float32 (bands, size, size), NaN where nodata."""

    image: np.ndarray
    bands: list[str]
    wavelengths_um: list[float | None]
    bandwidths_um: list[float | None]
    polarizations: list[str]
    sensor: str
    crs: str
    transform: Affine
    gsd: float
    size: int
    lon: float  # centre of the patch grid
    lat: float
    footprint: Polygon  # lon/lat
    datetime: datetime | None
    fractions: SclFractions
    scl: np.ndarray | None = None
    units: list[str] = field(default_factory=list)

    @property
    def nodata_mask(self) -> np.ndarray:
        return np.isnan(self.image).any(axis=0)


class DatasetCache:
    """Keeps rasterio datasets open across patches of the same item (one open per asset, not per patch)."""

    def __init__(self, max_open: int = 64) -> None:
        self._open: dict[str, Any] = {}
        self.max_open = max_open

    def get(self, href: str) -> Any:
        ds = self._open.get(href)
        if ds is None:
            if len(self._open) >= self.max_open:
                self.close()
            ds = rasterio.open(href)
            self._open[href] = ds
        return ds

    def close(self) -> None:
        for ds in self._open.values():
            ds.close()
        self._open.clear()

    def __enter__(self) -> DatasetCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pixel_checksum(image: np.ndarray) -> str:
    """sha256 of the float32 C-order bytes (the checksum of ``patches`` rows and training shards)."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


def patch_grid(item: pystac.Item, lon: float, lat: float, *, gsd: float, size: int, dst_crs: str | None = None) -> tuple[str, Affine]:
    """The patch CRS and transform: ``dst_crs`` or the item's projected CRS or the point's UTM zone."""
    crs = dst_crs
    if crs is None:
        ic = item_crs(item)
        crs = ic if ic and CRS.from_user_input(ic).is_projected else utm_crs(lon, lat)
    x, y = from_lonlat(crs, lon, lat)
    return crs, patch_transform(x, y, gsd=gsd, size=size)


def _read_band(src: Any, *, crs: str, transform: Affine, size: int, resampling: Resampling, nodata: float | None) -> np.ndarray:
    dst_crs = CRS.from_user_input(crs)
    st = src.transform
    if src.crs == dst_crs and st.b == 0 and st.d == 0 and math.isclose(st.a, transform.a) and math.isclose(st.e, transform.e):
        col = (transform.c - st.c) / st.a
        row = (transform.f - st.f) / st.e
        if abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6:
            win = Window(round(col), round(row), size, size)
            inside = win.col_off >= 0 and win.row_off >= 0 and win.col_off + size <= src.width and win.row_off + size <= src.height
            if inside:
                return np.asarray(src.read(1, window=win))
            fill = nodata if nodata is not None else 0
            return np.asarray(src.read(1, window=win, boundless=True, fill_value=fill))
    vrt_nodata = nodata if nodata is not None else (math.nan if np.dtype(src.dtypes[0]).kind == "f" else 0)
    with WarpedVRT(
        src,
        crs=dst_crs,
        transform=transform,
        width=size,
        height=size,
        resampling=resampling,
        src_nodata=nodata if nodata is not None else src.nodata,
        nodata=vrt_nodata,
    ) as vrt:
        return np.asarray(vrt.read(1))


def _to_physical(dn: np.ndarray, spec: BandSpec, item: pystac.Item, src_nodata: float | None) -> np.ndarray:
    a = dn.astype(np.float32)
    nodata = spec.nodata if spec.nodata is not None else src_nodata
    invalid = ~np.isfinite(a)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        invalid |= dn == nodata
    if spec.kind == "reflectance":
        if spec.scale is not None or spec.offset is not None:
            a = a * np.float32(spec.scale if spec.scale is not None else 1.0) + np.float32(spec.offset or 0.0)
        elif np.issubdtype(dn.dtype, np.integer):
            baseline = processing_baseline(item)
            off = -1000.0 if baseline is not None and baseline >= 4.0 else 0.0
            a = (a + np.float32(off)) / np.float32(10000.0)
    elif spec.kind == "sar":
        if spec.scale is not None or spec.offset is not None:
            a = a * np.float32(spec.scale if spec.scale is not None else 1.0) + np.float32(spec.offset or 0.0)
        if (spec.unit or "").lower() not in {"db", "decibel", "decibels"}:
            invalid |= a <= 0
            with np.errstate(divide="ignore", invalid="ignore"):
                a = (10.0 * np.log10(np.where(a > 0, a, np.nan))).astype(np.float32)
    a[invalid] = np.nan
    return a


def read_scl(
    item: pystac.Item, crs: str, transform: Affine, size: int, cache: DatasetCache | None = None
) -> np.ndarray | None:
    """SCL on the patch grid (nearest), 0 outside the scene; None when the item has no SCL asset."""
    spec = band_specs(item, ["SCL"]).get("SCL")
    if spec is None:
        return None
    with gdal_env():
        src = cache.get(spec.href) if cache else rasterio.open(spec.href)
        try:
            return _read_band(src, crs=crs, transform=transform, size=size, resampling=Resampling.nearest, nodata=0)
        finally:
            if cache is None:
                src.close()


def read_patch(
    item: pystac.Item,
    lon: float,
    lat: float,
    *,
    size: int = 32,
    gsd: float = 10.0,
    bands: list[str] | tuple[str, ...] | None = None,
    dst_crs: str | None = None,
    cache: DatasetCache | None = None,
) -> Patch:
    """Read a ``size`` x ``size`` patch at ``gsd`` metres centred on (lon, lat); see the module docstring."""
    if size < 1 or gsd <= 0:
        raise InputError(f"bad patch geometry size={size} gsd={gsd}", hint="use --size >= 1 and --gsd > 0 (metres)")
    sensor = sensor_of(item.collection_id, item.properties.get("platform"), item.properties.get("constellation"))
    specs_all = band_specs(item)
    if sensor is None:
        sensor = "S1" if any(s.kind == "sar" for s in specs_all.values()) else "S2"
    wanted = list(bands) if bands else list(S1_DEFAULT_BANDS if sensor == "S1" else S2_DEFAULT_BANDS)
    specs = [specs_all[b] for b in wanted if b in specs_all and specs_all[b].kind != "class"]
    if not specs:
        raise InputError(
            f"item {item.id} has none of the bands {wanted} (it has {sorted(specs_all)})",
            hint="pick bands with --bands from the item's eo:bands names",
        )
    crs, transform = patch_grid(item, lon, lat, gsd=gsd, size=size, dst_crs=dst_crs)
    layers = []
    with gdal_env():
        for spec in specs:
            src = cache.get(spec.href) if cache else rasterio.open(spec.href)
            try:
                nodata = spec.nodata if spec.nodata is not None else src.nodata
                dn = _read_band(src, crs=crs, transform=transform, size=size, resampling=Resampling.bilinear, nodata=nodata)
                layers.append(_to_physical(dn, spec, item, nodata))
            finally:
                if cache is None:
                    src.close()
    image = np.stack(layers).astype(np.float32, copy=False)
    nodata_px = np.isnan(image).any(axis=0)
    scl = read_scl(item, crs, transform, size, cache) if sensor == "S2" else None
    if scl is not None:
        fr = scl_fractions(np.where(nodata_px, 0, scl))
    else:  # SAR sees through clouds: clear = valid
        nd = float(nodata_px.mean())
        fr = SclFractions(clear=1.0 - nd, cloud=0.0, shadow=0.0, snow=0.0, water=0.0, nodata=nd)
    x0, y0 = transform.c, transform.f
    x1, y1 = x0 + size * transform.a, y0 + size * transform.e
    ring = [to_lonlat(crs, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    clon, clat = to_lonlat(crs, (x0 + x1) / 2, (y0 + y1) / 2)
    return Patch(
        image=image,
        bands=[s.name for s in specs],
        wavelengths_um=[s.wavelength_um for s in specs],
        bandwidths_um=[s.bandwidth_um for s in specs],
        polarizations=[s.polarization for s in specs],
        sensor=sensor,
        crs=crs,
        transform=transform,
        gsd=float(gsd),
        size=int(size),
        lon=clon,
        lat=clat,
        footprint=Polygon(ring),
        datetime=item_datetime(item),
        fractions=fr,
        scl=scl,
        units=["reflectance" if s.kind == "reflectance" else "dB" for s in specs],
    )


def save_patch_npz(patch: Patch, out: Path) -> Path:
    """Write the single-patch contract (``georeset imagery patch ... --out X.npz``): image, bands, clear_fraction,
    crs, transform (a, b, c, d, e, f), datetime."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npz")
    np.savez(
        tmp,
        image=patch.image.astype(np.float32),
        bands=np.array(patch.bands),
        clear_fraction=np.float64(patch.fractions.clear),
        crs=np.array(patch.crs),
        transform=np.array(tuple(patch.transform)[:6], dtype=np.float64),
        datetime=np.array(patch.datetime.isoformat() if patch.datetime else ""),
    )
    tmp.replace(out)
    return out
