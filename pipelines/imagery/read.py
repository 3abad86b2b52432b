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
import json
import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from shapely.geometry import Polygon

from georeset.errors import GeoResetError, InputError
from georeset.pipelines.imagery.bands import (
    S1_DEFAULT_BANDS,
    S2_DEFAULT_BANDS,
    AssetBand,
    asset_requester_pays,
    band_specs,
    product_level,
    sensor_of,
)
from georeset.pipelines.imagery.cloud import (
    SclFractions,
    cover_fractions,
    qa_pixel_fractions,
    quality_mask,
    scl_fractions,
)
from georeset.pipelines.imagery.gdal_env import gdal_env, reader_cache_bytes
from georeset.pipelines.imagery.grid import from_lonlat, patch_transform, to_lonlat_many, utm_crs
from georeset.pipelines.imagery.providers import (
    check_offset_with_pixels,
    gdal_path,
    optical_calibration,
    reflectance_offset,
    sar_units,
)
from georeset.pipelines.imagery.stac import item_datetime

__all__ = [
    "AssetReadError",
    "FAILURE_REASONS",
    "Signer",
    "failure_reason",
    "sar_calibration",
    "calibration_href",
    "read_sigma_nought_lut",
    "SigmaNoughtLut",
    "Patch", "DatasetCache", "read_patch", "read_scl", "patch_grid", "pixel_checksum", "save_patch_npz"]


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
    calibration: list[str] = field(default_factory=list)  # per band, see save_patch_npz
    item_id: str = ""
    collection: str = ""
    offset_rules: list[str] = field(default_factory=list)  # per band: which rule decided the reflectance offset
    quality: str = ""  # where the fractions come from: SCL, QA_PIXEL, eo:cloud_cover, none (SAR)
    mosaic: list[str] = field(default_factory=list)  # ids of same-day items that filled nodata pixels

    @property
    def nodata_mask(self) -> np.ndarray:
        return np.isnan(self.image).any(axis=0)

    @property
    def quality_mask(self) -> np.ndarray:
        """uint8 (size, size): 0 clear, 1 cloud, 2 shadow, 3 nodata, 4 unknown (see ``cloud.quality_mask``)."""
        return quality_mask(self.scl, self.nodata_mask, self.quality)


#: Turns a stored (unsigned) href into the URL to read (e.g. ``planetary_computer.sign``).
Signer = Callable[[str], str]


#: Decoded blocks kept per :class:`DatasetCache` (bytes): the reader's share of the one decoded-pixel budget
#: (:data:`~georeset.pipelines.imagery.gdal_env.DECODED_CACHE_BYTES`, shared with GDAL's block cache).
BLOCK_CACHE_BYTES = reader_cache_bytes()
#: Largest block (pixels) worth caching whole: tiled GeoTIFF / COG blocks (256 or 512 px), not strips or JP2 tiles.
_MAX_BLOCK_PX = 1024 * 1024


class _BlockBudget:
    """The byte budget shared by the block caches of one :class:`DatasetCache`: least recently used blocks go first.
    A dropped block is only forgotten (a patch that holds a view of it keeps a valid array)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self.lru: OrderedDict[tuple[int, int, int], tuple[dict[tuple[int, int], np.ndarray], int]] = OrderedDict()

    def touch(self, owner: dict[tuple[int, int], np.ndarray], ij: tuple[int, int]) -> None:
        self.lru.move_to_end((id(owner), *ij))

    def add(self, owner: dict[tuple[int, int], np.ndarray], ij: tuple[int, int], block: np.ndarray) -> None:
        while self.lru and self.used + block.nbytes > self.limit:
            (_, i, j), (cache, nbytes) = self.lru.popitem(last=False)
            cache.pop((i, j), None)
            self.used -= nbytes
        owner[ij] = block
        self.lru[(id(owner), *ij)] = (owner, block.nbytes)
        self.used += block.nbytes

    def drop(self, owner: dict[tuple[int, int], np.ndarray]) -> None:
        """Forget the blocks of one closed dataset."""
        for ij in list(owner):
            hit = self.lru.pop((id(owner), *ij), None)
            if hit is not None:
                self.used -= hit[1]
        owner.clear()

    def clear(self) -> None:
        for cache, _ in self.lru.values():
            cache.clear()
        self.lru.clear()
        self.used = 0


@dataclass(frozen=True)
class _Source:
    """An open dataset with the properties a patch read needs, read once (rasterio builds new objects per access).

    With a block budget (datasets held by a :class:`DatasetCache`), tiled GeoTIFF / COG band 1 is read whole block by
    whole block (what GDAL decodes anyway) and the decoded blocks are kept: a window under a patch is then a numpy
    slice, without the per-read overhead of rasterio / GDAL for every band of every patch.
    """

    ds: Any
    crs: CRS | None
    crs_key: str  # CRS as a string, for cheap comparisons
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | None
    block: tuple[int, int] | None = None  # (rows, cols) when blocks are cached
    budget: _BlockBudget | None = None
    blocks: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    kind: str = "f"  # numpy dtype kind

    @classmethod
    def of(cls, ds: Any, budget: _BlockBudget | None = None) -> _Source:
        crs = ds.crs
        key = crs.to_string() if crs else ""
        block = None
        if budget is not None and ds.driver == "GTiff" and ds.count >= 1:
            bh, bw = ds.block_shapes[0]
            whole = bh >= ds.height and bw >= ds.width
            if bh * bw <= _MAX_BLOCK_PX and (min(bh, bw) >= 64 or whole):  # tiles, or a small single-block file
                block = (int(bh), int(bw))
        dtype = ds.dtypes[0]
        return cls(ds, crs, key, ds.transform, ds.width, ds.height, dtype, ds.nodata, block,
                   budget if block else None, {}, np.dtype(dtype).kind)  # fmt: skip

    def _block(self, i: int, j: int) -> np.ndarray:
        b = self.blocks.get((i, j))
        if b is None:
            budget = self.budget
            assert budget is not None and self.block is not None
            bh, bw = self.block
            r0, c0 = i * bh, j * bw
            b = np.asarray(self.ds.read(1, window=Window(c0, r0, min(bw, self.width - c0), min(bh, self.height - r0))))
            b.setflags(write=False)
            budget.add(self.blocks, (i, j), b)
        elif self.budget is not None:
            self.budget.touch(self.blocks, (i, j))
        return b

    def read(self, col: int, row: int, width: int, height: int) -> np.ndarray:
        """Band 1 in the window (inside the dataset); a read-only view of a cached block when possible."""
        if self.block is None:
            return np.asarray(self.ds.read(1, window=Window(col, row, width, height)))
        bh, bw = self.block
        i0, i1 = row // bh, (row + height - 1) // bh
        j0, j1 = col // bw, (col + width - 1) // bw
        if i0 == i1 and j0 == j1:
            r, c = row - i0 * bh, col - j0 * bw
            return self._block(i0, j0)[r : r + height, c : c + width]
        out = np.empty((height, width), dtype=self.dtype)
        for i in range(i0, i1 + 1):
            ra, rb = max(row, i * bh), min(row + height, (i + 1) * bh)
            for j in range(j0, j1 + 1):
                ca, cb = max(col, j * bw), min(col + width, (j + 1) * bw)
                out[ra - row : rb - row, ca - col : cb - col] = self._block(i, j)[ra - i * bh : rb - i * bh,
                                                                                   ca - j * bw : cb - j * bw]  # fmt: skip
        return out


class DatasetCache:
    """Keeps rasterio datasets open across patches (one open per asset, not per patch), with their grid properties,
    the parsed band specs of the items seen, and the GDAL settings entered once for the whole run.

    Handles are reference-counted: :meth:`acquire` pins a dataset until the matching :meth:`release`, and only idle
    (unpinned) datasets are closed, least recently used first, when more than ``max_open`` are open. A read that
    needs more datasets at once than ``max_open`` (13 bands of a patch with a small limit) goes over the limit for
    its duration instead of closing a band it already holds.
    """

    def __init__(self, max_open: int = 64, block_cache_bytes: int = BLOCK_CACHE_BYTES) -> None:
        self._open: OrderedDict[str, _Source] = OrderedDict()  # least recently used first
        self._refs: dict[str, int] = {}
        self._budget = _BlockBudget(block_cache_bytes) if block_cache_bytes > 0 else None
        self._specs: dict[int, tuple[pystac.Item, dict[str, AssetBand]]] = {}
        self._env: Any = None
        self.max_open = max_open
        self.opened = 0  # datasets opened over the cache's life (re-opens after eviction included)

    def acquire(self, href: str, sign: Signer | None = None) -> _Source:
        """The open dataset of ``href``, pinned (never closed) until :meth:`release`."""
        src = self._open.get(href)
        if src is None:
            src = _Source.of(rasterio.open(gdal_path(sign(href) if sign else href)), self._budget)
            self.opened += 1
            self._open[href] = src
        else:
            self._open.move_to_end(href)
        self._refs[href] = self._refs.get(href, 0) + 1
        self._evict()
        return src

    def release(self, href: str) -> None:
        n = self._refs.get(href, 0) - 1
        if n > 0:
            self._refs[href] = n
        else:
            self._refs.pop(href, None)
        self._evict()

    def in_use(self) -> int:
        """Datasets pinned by a read in progress."""
        return len(self._refs)

    def open_count(self) -> int:
        return len(self._open)

    def _evict(self) -> None:
        if len(self._open) <= self.max_open:
            return
        for href in [h for h in self._open if h not in self._refs]:
            if len(self._open) <= self.max_open:
                break
            self._close(href)

    def _close(self, href: str) -> None:
        src = self._open.pop(href)
        if self._budget is not None:
            self._budget.drop(src.blocks)
        src.ds.close()

    def source(self, href: str, sign: Signer | None = None) -> _Source:
        """The dataset of ``href`` without pinning it: valid until the next :meth:`acquire` may close it."""
        src = self.acquire(href, sign)
        self.release(href)
        return src

    def get(self, href: str, sign: Signer | None = None) -> Any:
        return self.source(href, sign).ds

    def specs(self, item: pystac.Item) -> dict[str, AssetBand]:
        hit = self._specs.get(id(item))
        if hit is None or hit[0] is not item:
            if len(self._specs) > 4096:
                self._specs.clear()
            hit = (item, band_specs(item))
            self._specs[id(item)] = hit
        return hit[1]

    @property
    def in_env(self) -> bool:
        return self._env is not None

    def close_datasets(self) -> None:
        """Close every idle dataset (pinned ones stay open)."""
        for href in [h for h in self._open if h not in self._refs]:
            self._close(href)

    def close(self) -> None:
        for src in self._open.values():
            src.ds.close()
        self._open.clear()
        self._refs.clear()
        if self._budget is not None:
            self._budget.clear()
        self._specs.clear()

    def __enter__(self) -> DatasetCache:
        self._env = gdal_env()
        self._env.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._env is not None:
            env, self._env = self._env, None
            env.__exit__(None, None, None)


def pixel_checksum(image: np.ndarray) -> str:
    """sha256 of the float32 C-order bytes (the checksum of ``patches`` rows and training shards)."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


def patch_grid(item: pystac.Item, lon: float, lat: float, *, gsd: float, size: int, dst_crs: str | None = None) -> tuple[str, Affine]:
    """The patch CRS and transform: ``dst_crs``, else the point's WGS84 UTM zone (whatever the item's CRS: an S2 tile
    in the neighbouring zone, an S1 scene in EPSG:4326 or with GCPs all land on the same grid for the same point)."""
    del item  # the grid depends on the point only, so that S1 and S2 patches of a location coincide
    crs = dst_crs or utm_crs(lon, lat)
    x, y = from_lonlat(crs, lon, lat)
    return crs, patch_transform(x, y, gsd=gsd, size=size)


def _read_band(src: Any, *, crs: str, transform: Affine, size: int, resampling: Resampling, nodata: float | None) -> np.ndarray:
    """The band on the patch grid. Fast paths (no warper) when the source is in the patch CRS, north-up:
    - aligned at the same resolution: a plain window read (boundless at the scene edge);
    - coarser native pixels (20/60 m to 10 m), window at least one source pixel inside the scene: one resampled
      ``RasterIO`` of the fractional source window (same values as the ``WarpedVRT``: bilinear / nearest
      upsampling is the same kernel, pixel centres on the same grid);
    - otherwise (another CRS, downsampling, GCP georeferencing, scene edge): a ``WarpedVRT`` onto the patch grid.
    """
    info = src if isinstance(src, _Source) else _Source.of(src)
    src = info.ds
    st = info.transform
    same_crs = info.crs is not None and (info.crs_key == crs or info.crs == _crs(crs))
    if same_crs and st.b == 0 and st.d == 0 and st.a > 0 and st.e < 0:
        col = (transform.c - st.c) / st.a
        row = (transform.f - st.f) / st.e
        if math.isclose(st.a, transform.a) and math.isclose(st.e, transform.e):
            if abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6:
                win = Window(round(col), round(row), size, size)
                inside = win.col_off >= 0 and win.row_off >= 0 and win.col_off + size <= info.width and win.row_off + size <= info.height
                if inside:
                    return info.read(win.col_off, win.row_off, size, size).copy()
                fill = nodata if nodata is not None else 0
                return np.asarray(src.read(1, window=win, boundless=True, fill_value=fill))
        elif st.a >= transform.a - 1e-9 and -st.e >= -transform.e - 1e-9:
            w = size * transform.a / st.a
            h = size * -transform.e / -st.e
            if col >= 1 and row >= 1 and col + w <= info.width - 1 and row + h <= info.height - 1:
                up = _upsample(src, info, col, row, st.a / transform.a, -st.e / -transform.e, size, resampling, nodata)
                if up is not None:
                    return up
                return np.asarray(
                    src.read(1, window=Window(col, row, w, h), out_shape=(size, size), resampling=resampling)
                )
    vrt_nodata = nodata if nodata is not None else (math.nan if np.dtype(info.dtype).kind == "f" else 0)
    with WarpedVRT(
        src,
        crs=_crs(crs),
        transform=transform,
        width=size,
        height=size,
        resampling=resampling,
        src_nodata=nodata if nodata is not None else info.nodata,
        nodata=vrt_nodata,
    ) as vrt:
        return np.asarray(vrt.read(1))


@lru_cache(maxsize=256)
def _kernel_rel(frac: float, step: float, size: int, nearest: bool) -> tuple[int, int, np.ndarray]:
    """:func:`_kernel` for an origin in [0, 1): depends on the fractional part only, so it is cached across patches."""
    centres = frac + (np.arange(size) + 0.5) * step
    if nearest:
        idx = np.floor(centres).astype(np.intp)
        first = int(idx[0])
        return first, int(idx[-1]) - first + 1, idx - first
    u = centres - 0.5  # source pixel centres are at integer + 0.5
    i0 = np.floor(u).astype(np.intp)
    first = int(i0[0])
    count = int(i0[-1]) - first + 2
    t = u - i0
    w = np.zeros((size, count))
    rows = np.arange(size)
    w[rows, i0 - first] = 1.0 - t
    w[rows, i0 - first + 1] += t
    return first, count, w


def _kernel(origin: float, step: float, size: int, nearest: bool) -> tuple[int, int, np.ndarray]:
    """Source pixels for ``size`` destination pixels whose left edge is at source coordinate ``origin`` and whose
    width is ``step`` source pixels: (first source pixel, count, index into the window (nearest) or the
    ``size`` x count bilinear weight matrix)."""
    o = round(origin, 9)
    base = math.floor(o)
    first, count, k = _kernel_rel(round(o - base, 9), round(step, 12), size, nearest)
    return base + first, count, k


def _upsample_stack(infos: list[_Source], col: float, row: float, zoom_x: float, zoom_y: float, size: int,
                    resampling: Resampling, nodata: float | None) -> np.ndarray | None:  # fmt: skip
    """Bilinear / nearest upsampling in numpy of the native windows of bands on one grid (one block-aligned window
    per band, the kernel computed once, one broadcast matmul for the stack): separable interpolation with GDAL's
    kernel (pixel-centre convention, round half up for integer types), the same values as GDAL's resampled read.
    None (let GDAL do it) for other resamplings or when nodata is inside the window."""
    nearest = resampling == Resampling.nearest
    if not nearest and resampling != Resampling.bilinear:
        return None
    info = infos[0]
    c0, nc, kx = _kernel(col, 1.0 / zoom_x, size, nearest)
    r0, nr, ky = _kernel(row, 1.0 / zoom_y, size, nearest)
    if c0 < 0 or r0 < 0 or c0 + nc > info.width or r0 + nr > info.height:
        return None
    a = np.stack([i.read(c0, r0, nc, nr) for i in infos])
    if nearest:
        return np.asarray(a[:, ky[:, None], kx[None, :]])
    if nodata is not None and not math.isnan(nodata) and (a == nodata).any():
        return None  # GDAL renormalises the weights around nodata: leave those windows to it
    out = ky @ a.astype(np.float64) @ kx.T
    if info.kind in "iu":
        return np.floor(out + 0.5).astype(info.dtype)
    return out.astype(info.dtype)


def _upsample(src: Any, info: _Source, col: float, row: float, zoom_x: float, zoom_y: float, size: int,
              resampling: Resampling, nodata: float | None) -> np.ndarray | None:  # fmt: skip
    """:func:`_upsample_stack` of one band."""
    del src
    out = _upsample_stack([info], col, row, zoom_x, zoom_y, size, resampling, nodata)
    return None if out is None else out[0]


def _read_stack(infos: list[_Source], *, crs: str, transform: Affine, size: int, resampling: Resampling,
                nodata: float | None) -> np.ndarray | None:  # fmt: skip
    """Bands that share one native grid (same CRS, transform, shape, dtype and nodata) on the patch grid, the window
    math done once for all: (bands, size, size), or None when no fast path applies (read band by band then)."""
    info = infos[0]
    st = info.transform
    if not (info.crs is not None and (info.crs_key == crs or info.crs == _crs(crs))):
        return None
    if not (st.b == 0 and st.d == 0 and st.a > 0 and st.e < 0):
        return None
    col = (transform.c - st.c) / st.a
    row = (transform.f - st.f) / st.e
    if math.isclose(st.a, transform.a) and math.isclose(st.e, transform.e):
        c, r = round(col), round(row)
        if abs(col - c) < 1e-6 and abs(row - r) < 1e-6 and c >= 0 and r >= 0 and c + size <= info.width and r + size <= info.height:
            return np.stack([i.read(c, r, size, size) for i in infos])
        return None
    if st.a >= transform.a - 1e-9 and -st.e >= -transform.e - 1e-9:
        w = size * transform.a / st.a
        h = size * -transform.e / -st.e
        if col >= 1 and row >= 1 and col + w <= info.width - 1 and row + h <= info.height - 1:
            return _upsample_stack(infos, col, row, st.a / transform.a, -st.e / -transform.e, size, resampling, nodata)
    return None


@lru_cache(maxsize=64)
def _crs(crs: str) -> CRS:
    return CRS.from_user_input(crs)


def _asset_key_of(item: pystac.Item, href: str) -> str | None:
    return next((k for k, a in item.assets.items() if a.href == href or a.get_absolute_href() == href), None)


def calibration_href(item: pystac.Item, polarization: str) -> str | None:
    """The Sentinel-1 SAFE calibration annotation (``annotation/calibration/calibration-*-<pol>-*.xml``, with the
    sigmaNought LUT) that the item links for a polarization: asset ``schema-calibration-<pol>`` (Earth Search,
    stactools) or any asset whose file name has that pattern (not the ``noise-*`` files)."""
    pol = polarization.lower()
    asset = item.assets.get(f"schema-calibration-{pol}")
    if asset is not None:
        return asset.get_absolute_href() or asset.href
    for a in item.assets.values():
        name = a.href.rsplit("/", 1)[-1].lower()
        if name.startswith("calibration-") and f"-{pol}-" in name and name.endswith(".xml"):
            return a.get_absolute_href() or a.href
    return None


@dataclass(frozen=True)
class SigmaNoughtLut:
    """The sigmaNought calibration LUT of a GRD product: A(line, pixel) on a sparse grid; sigma0 = DN^2 / A^2."""

    lines: np.ndarray  # (n,) increasing
    pixels: np.ndarray  # (m,) increasing
    values: np.ndarray  # (n, m)

    def at(self, line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
        """Bilinear interpolation (linear extrapolation past the LUT edges) at image (line, pixel) coordinates."""
        from scipy.interpolate import RegularGridInterpolator

        interp = RegularGridInterpolator((self.lines, self.pixels), self.values, bounds_error=False, fill_value=None)
        pts = np.stack([np.ravel(line), np.ravel(pixel)], axis=-1)
        return np.asarray(interp(pts)).reshape(np.shape(line))


def _read_s3(href: str, requester_pays: bool) -> bytes:
    """An ``s3://bucket/key`` object through an object-store client (obstore: AWS credentials, region and endpoint
    from the usual ``AWS_*`` variables; ``x-amz-request-payer: requester`` for requester-pays buckets such as Earth
    Search's ``sentinel-s1-l1c``; unsigned requests when no credentials are set)."""
    import os

    import obstore
    from obstore.store import S3Store

    bucket, _, key = href.removeprefix("s3://").partition("/")
    signed = bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))
    try:
        store = S3Store(bucket, request_payer=requester_pays, skip_signature=not signed)
        return bytes(obstore.get(store, key).bytes())
    except Exception as exc:  # obstore raises its own error types; callers expect OSError
        raise OSError(f"{href}: {type(exc).__name__}: {exc}") from exc


def _read_text(href: str, requester_pays: bool = False) -> str:
    if href.startswith("s3://"):
        return _read_s3(href, requester_pays).decode("utf-8")
    if "://" in href and not href.startswith("file://"):
        import urllib.request

        with urllib.request.urlopen(href, timeout=30) as r:  # noqa: S310 - http(s) hrefs of the item
            return str(r.read().decode("utf-8"))
    return Path(href.removeprefix("file://")).read_text(encoding="utf-8")


@lru_cache(maxsize=16)
def read_sigma_nought_lut(href: str, requester_pays: bool = False) -> SigmaNoughtLut:
    """Parse ``calibrationVectorList/calibrationVector`` (``line``, ``pixel``, ``sigmaNought``) of a Sentinel-1
    calibration XML (a path, http(s) URL or ``s3://`` object). Vectors with other pixel positions are interpolated
    onto the first vector's."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(_read_text(href, requester_pays))
    lines, rows = [], []
    pixels: np.ndarray | None = None
    for vec in root.iter("calibrationVector"):
        line = int(str(vec.findtext("line")).strip())
        px = np.array(str(vec.findtext("pixel")).split(), dtype=np.float64)
        sn = np.array(str(vec.findtext("sigmaNought")).split(), dtype=np.float64)
        if px.size == 0 or px.size != sn.size:
            raise ValueError(f"calibration vector at line {line}: {px.size} pixels, {sn.size} sigmaNought values")
        if pixels is None:
            pixels = px
        elif px.shape != pixels.shape or not np.array_equal(px, pixels):
            sn = np.interp(pixels, px, sn)
        lines.append(line)
        rows.append(sn)
    if pixels is None or len(lines) < 2 or pixels.size < 2:
        raise ValueError(f"{href}: fewer than 2 x 2 sigmaNought calibration points")
    order = np.argsort(lines)
    return SigmaNoughtLut(np.asarray(lines, dtype=np.float64)[order], pixels, np.asarray(rows)[order])


def _image_coords(info: _Source, crs: str, transform: Affine, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(line, pixel) in the source image of the patch pixel centres, in the LUT's convention (pixel index = column
    of the pixel's centre - 0.5): through the source's GCPs when it has them, else its transform."""
    from rasterio.transform import rowcol

    jj, ii = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    tf = transform
    xs, ys = tf.a * jj.ravel() + tf.b * ii.ravel() + tf.c, tf.d * jj.ravel() + tf.e * ii.ravel() + tf.f
    gcps, gcp_crs = info.ds.gcps
    if gcps:
        from pyproj import Transformer

        t = Transformer.from_crs(_crs(crs), gcp_crs, always_xy=True)
        gx, gy = t.transform(xs, ys)
        rows, cols = rowcol(gcps, gx, gy, op=lambda v: v)
    else:
        from pyproj import Transformer

        t = Transformer.from_crs(_crs(crs), info.crs, always_xy=True)
        sx, sy = t.transform(xs, ys)
        inv = ~info.transform
        sx, sy = np.asarray(sx), np.asarray(sy)
        cols, rows = inv.a * sx + inv.b * sy + inv.c, inv.d * sx + inv.e * sy + inv.f
    line = np.asarray(rows, dtype=np.float64).reshape(size, size) - 0.5
    pixel = np.asarray(cols, dtype=np.float64).reshape(size, size) - 0.5
    return line, pixel


def sar_calibration(spec: AssetBand, item: pystac.Item, dtype: str) -> str:
    """How a SAR band's numbers relate to backscatter:
    - ``db``: already in dB (``raster:bands`` unit dB);
    - ``gamma0_rtc``: radiometrically terrain-corrected gamma0 in linear power (Planetary Computer
      ``sentinel-1-rtc``, ``sar:product_type`` RTC);
    - ``sigma0_linear``: calibrated linear power (float values, e.g. the sample world);
    - ``uncalibrated``: GRD amplitude digital numbers (integer values; Earth Search ``sentinel-1-grd``). They are
      turned into ``20 log10(DN)`` "dB" that is NOT backscatter. When the item links the product's calibration
      annotation (:func:`calibration_href`), :func:`read_patch` applies its sigmaNought LUT instead
      (sigma0 = DN^2 / A^2, A interpolated over line / pixel) and records ``sigma0_calibrated``.
    """
    unit = (spec.unit or "").lower()
    if unit in {"db", "decibel", "decibels"}:
        return "db"
    if np.dtype(dtype).kind in "iu" and spec.scale is None:
        return "uncalibrated"
    product = str(item.properties.get("sar:product_type") or "").upper()
    if "rtc" in (item.collection_id or "").lower() or product == "RTC" or "gamma" in unit:
        return "gamma0_rtc"
    return "sigma0_linear"


#: Reasons a failed asset is recorded with (see :func:`failure_reason`).
FAILURE_REASONS = ("not_found", "forbidden", "timeout", "corrupt", "read_error")


class AssetReadError(GeoResetError):
    """One asset of an item could not be read (after GDAL's HTTP retries): ``reason`` is one of
    :data:`FAILURE_REASONS`, ``band`` / ``href`` (unsigned) name the asset."""

    def __init__(self, *, band: str, href: str, reason: str, detail: str) -> None:
        self.band, self.href, self.reason, self.detail = band, href, reason, detail
        super().__init__(
            f"asset {band} ({href}) unreadable: {reason}: {detail}",
            hint="check the href / credentials (requester-pays, signing) or re-run later; the run goes on without it",
        )


#: An HTTP status as its own token ("HTTP response code: 404", "(HTTP 403 Forbidden)"), never digits inside the href
#: the message quotes (a granule of 2024-04-03 is ``..._20240403_...``; a server on port 40377).
_STATUS_TOKEN = re.compile(r"(?<![\w./:-])(40[134])(?![\w/-]|\.\w)")


def failure_reason(exc: BaseException) -> str:
    """Classify a read error: 404 / missing file, 403, timeout, truncated or corrupt file, other."""
    if isinstance(exc, AssetReadError):
        return exc.reason
    text = str(exc).lower()
    codes = set(_STATUS_TOKEN.findall(text))
    if "404" in codes or any(k in text for k in ("not found", "no such file", "does not exist")):
        return "not_found"
    if codes & {"401", "403"} or any(k in text for k in ("forbidden", "access denied", "accessdenied")):
        return "forbidden"
    if any(k in text for k in ("timed out", "timeout", "time out")):
        return "timeout"
    if any(k in text for k in ("tiff", "read", "decode", "corrupt", "truncat", "not recognized", "jpeg2000", "jp2")):
        return "corrupt"
    return "read_error"


def _open_or_read(spec: AssetBand, fn: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return fn()
    except (RasterioError, OSError, ValueError) as exc:
        raise AssetReadError(band=spec.name, href=spec.href, reason=failure_reason(exc), detail=str(exc)) from exc


def _dataset(spec: AssetBand, cache: DatasetCache | None, sign: Signer | None) -> _Source:
    """The open dataset of a band: pinned in ``cache`` (give it back with :func:`_done`), or opened for this read."""
    try:
        if spec.requester_pays:  # GDAL's /vsis3/ sends x-amz-request-payer (the requester pays the egress)
            rasterio.env.set_gdal_config("AWS_REQUEST_PAYER", "requester")
        if cache:
            return cache.acquire(spec.href, sign)
        return _Source.of(rasterio.open(gdal_path(sign(spec.href) if sign else spec.href)))
    except (RasterioError, OSError, ValueError) as exc:
        raise AssetReadError(band=spec.name, href=spec.href, reason=failure_reason(exc), detail=str(exc)) from exc


def _done(spec: AssetBand, src: _Source, cache: DatasetCache | None) -> None:
    """Unpin (cache) or close (no cache) a dataset from :func:`_dataset`."""
    if cache is not None:
        cache.release(spec.href)
    else:
        src.ds.close()


def _env(cache: DatasetCache | None) -> Any:
    return nullcontext() if cache is not None and cache.in_env else gdal_env()


def _read_scl_spec(spec: AssetBand, crs: str, transform: Affine, size: int, cache: DatasetCache | None,
                   sign: Signer | None, fill: int = 0) -> np.ndarray:  # fmt: skip
    """A class layer (SCL, QA_PIXEL) on the patch grid, nearest; ``fill`` outside the scene (SCL 0, QA_PIXEL 1)."""
    src = _dataset(spec, cache, sign)
    try:
        return _open_or_read(spec, partial(_read_band, src, crs=crs, transform=transform, size=size,
                                           resampling=Resampling.nearest, nodata=fill))  # fmt: skip
    finally:
        _done(spec, src, cache)


def read_scl(
    item: pystac.Item, crs: str, transform: Affine, size: int, cache: DatasetCache | None = None,
    sign: Signer | None = None,
) -> np.ndarray | None:  # fmt: skip
    """The quality layer on the patch grid (nearest): SCL (0 outside the scene), or QA_PIXEL for Landsat (fill bit
    outside); None when the item has neither."""
    specs = cache.specs(item) if cache else band_specs(item)
    name = "QA_PIXEL" if "QA_PIXEL" in specs and "SCL" not in specs else "SCL"
    spec = specs.get(name)
    if spec is None:
        return None
    with _env(cache):
        return _read_scl_spec(spec, crs, transform, size, cache, sign, fill=1 if name == "QA_PIXEL" else 0)


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
    sign: Signer | None = None,
) -> Patch:
    """Read a ``size`` x ``size`` patch at ``gsd`` metres centred on (lon, lat); see the module docstring.

    ``sign`` turns a stored (unsigned) href into a readable URL at read time (Planetary Computer SAS tokens, see
    :func:`~georeset.pipelines.imagery.stac.resolve_signer`). An unreadable asset raises :class:`AssetReadError`.
    With a :class:`DatasetCache` (used as a context manager) datasets stay open and GDAL settings are entered once.
    """
    if size < 1 or gsd <= 0:
        raise InputError(f"bad patch geometry size={size} gsd={gsd}", hint="use --size >= 1 and --gsd > 0 (metres)")
    sensor = sensor_of(item.collection_id, item.properties.get("platform"), item.properties.get("constellation"))
    specs_all = cache.specs(item) if cache else band_specs(item)
    if sensor is None:
        sensor = "S1" if any(s.kind == "sar" for s in specs_all.values()) else "S2"
    if bands:
        wanted = [b.upper() for b in bands]
    elif sensor == "LANDSAT":
        wanted = [k for k, v in specs_all.items() if v.kind == "reflectance"]
    else:
        wanted = list(S1_DEFAULT_BANDS if sensor == "S1" else S2_DEFAULT_BANDS)
    specs = [specs_all[b] for b in wanted if b in specs_all and specs_all[b].kind != "class"]
    if not specs:
        raise InputError(
            f"item {item.id} has none of the bands {wanted} (it has {sorted(specs_all)})",
            hint="pick bands with --bands from the item's eo:bands names",
        )
    crs, transform = patch_grid(item, lon, lat, gsd=gsd, size=size, dst_crs=dst_crs)
    n = len(specs)
    raw = np.empty((n, size, size), dtype=np.float32)  # DN as float32 (exact for 8/16-bit integers)
    scale = np.ones(n, dtype=np.float32)
    offset = np.zeros(n, dtype=np.float32)
    calibration: list[str] = []
    offset_rules: list[str] = []
    sar: list[int] = []
    scl: np.ndarray | None = None
    with _env(cache):
        srcs: list[_Source] = []
        try:
            for spec in specs:
                srcs.append(_dataset(spec, cache, sign))
            nodatas = [spec.nodata if spec.nodata is not None else src.nodata for spec, src in zip(specs, srcs, strict=True)]
            # bands on one native grid: the window / kernel math once, the stack in one go
            groups: dict[tuple[Any, ...], list[int]] = {}
            for k, src in enumerate(srcs):
                key = (src.crs_key, tuple(src.transform)[:6], src.width, src.height, src.dtype, repr(nodatas[k]))
                groups.setdefault(key, []).append(k)
            for idx in groups.values():
                try:
                    stack = _read_stack([srcs[k] for k in idx], crs=crs, transform=transform, size=size,
                                        resampling=Resampling.bilinear, nodata=nodatas[idx[0]])  # fmt: skip
                except (RasterioError, OSError, ValueError):
                    stack = None  # band by band below: the error then names the failing asset
                if stack is not None:
                    raw[idx] = stack
                    continue
                for k in idx:
                    raw[k] = _open_or_read(specs[k], partial(_read_band, srcs[k], crs=crs, transform=transform, size=size,
                                                             resampling=Resampling.bilinear, nodata=nodatas[k]))  # fmt: skip
            nd_values = np.array([math.nan if v is None else v for v in nodatas], dtype=np.float32)
            invalid = raw == nd_values[:, None, None]  # NaN nodata never matches (NaNs are caught as non-finite below)
            for k, (spec, src) in enumerate(zip(specs, srcs, strict=True)):
                if spec.kind == "sar":
                    calibration.append(sar_calibration(spec, item, src.dtype))
                    offset_rules.append("none")
                    sar.append(k)
                    if spec.scale is not None or spec.offset is not None:
                        scale[k], offset[k] = (spec.scale if spec.scale is not None else 1.0), (spec.offset or 0.0)
                else:
                    calibration.append(optical_calibration(item))
                    dec = reflectance_offset(spec, item, src.dtype)
                    scale[k], offset[k] = dec.scale, dec.offset
                    offset_rules.append(dec.rule)
            if sensor == "S2" and product_level(item) != "L1C":  # the BOA offset check on the patch's own pixels
                offset_new, offset_rules = check_offset_with_pixels(raw, ~invalid & np.isfinite(raw), scale, offset,
                                                                    offset_rules)  # fmt: skip
                offset[:] = offset_new
            for k in sar:  # float values without a declared unit: dB or linear from the values, or refused
                if calibration[k] in {"sigma0_linear", "gamma0_rtc"} and not specs[k].unit:
                    units = sar_units(raw[k] * scale[k] + offset[k], ~invalid[k])
                    if units is None:
                        raise InputError(
                            f"SAR band {specs[k].name} of item {item.id} ({specs[k].href}): float values without a "
                            "unit that are neither clearly linear power nor dB",
                            hint="declare raster:bands unit ('dB' or 'linear power') in the item, or read another item",
                        )
                    if units == "db":
                        calibration[k] = "db"
            for k in sar:  # GRD amplitude DN with a linked calibration annotation: sigma0 = DN^2 / A^2
                href = calibration_href(item, specs[k].name) if calibration[k] == "uncalibrated" else None
                if href is None:
                    continue
                try:
                    lut = read_sigma_nought_lut(href, asset_requester_pays(item, _asset_key_of(item, href)))
                    a_lut = lut.at(*_image_coords(srcs[k], crs, transform, size))
                except (OSError, ValueError, RasterioError) as exc:
                    warnings.warn(f"{item.id} {specs[k].name}: calibration {href} not applied ({exc})", stacklevel=2)
                    continue
                dn = raw[k] * scale[k] + offset[k]
                with np.errstate(divide="ignore", invalid="ignore"):
                    raw[k] = (dn.astype(np.float64) ** 2 / a_lut**2).astype(np.float32)
                scale[k], offset[k] = 1.0, 0.0
                calibration[k] = "sigma0_calibrated"
        finally:
            for spec, src in zip(specs, srcs, strict=False):
                _done(spec, src, cache)
        q_name = {"S2": "SCL", "LANDSAT": "QA_PIXEL"}.get(sensor)
        scl_spec = specs_all.get(q_name) if q_name else None
        if scl_spec is not None:
            scl = _read_scl_spec(scl_spec, crs, transform, size, cache, sign, fill=1 if q_name == "QA_PIXEL" else 0)
    image = raw * scale[:, None, None] + offset[:, None, None]
    for k in sar:
        if calibration[k] != "db":
            band = image[k]
            invalid[k] |= ~(band > 0)
            factor = np.float32(20.0 if calibration[k] == "uncalibrated" else 10.0)  # amplitude DN vs power
            with np.errstate(divide="ignore", invalid="ignore"):
                image[k] = factor * np.log10(np.where(band > 0, band, np.float32(1.0)))
    invalid |= ~np.isfinite(image)
    image[invalid] = np.nan
    nodata_px = invalid.any(axis=0)
    if scl is not None and sensor == "LANDSAT":
        fr, quality = qa_pixel_fractions(np.where(nodata_px, 1, scl)), "QA_PIXEL"
    elif scl is not None:
        fr, quality = scl_fractions(np.where(nodata_px, 0, scl)), "SCL"
    elif sensor == "S1" or sar:  # SAR sees through clouds: clear = valid
        nd = float(nodata_px.mean())
        fr, quality = SclFractions(clear=1.0 - nd, cloud=0.0, shadow=0.0, snow=0.0, water=0.0, nodata=nd), "none (SAR)"
    else:  # optical without a quality layer (L1C, items without SCL): never "fully clear"
        fr, quality = cover_fractions(~nodata_px, item.properties.get("eo:cloud_cover")), "eo:cloud_cover"
    x0, y0 = transform.c, transform.f
    x1, y1 = x0 + size * transform.a, y0 + size * transform.e
    lons, lats = to_lonlat_many(crs, [x0, x1, x1, x0, (x0 + x1) / 2], [y0, y0, y1, y1, (y0 + y1) / 2])
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
        lon=lons[4],
        lat=lats[4],
        footprint=Polygon(list(zip(lons[:4], lats[:4], strict=True))),
        datetime=item_datetime(item),
        fractions=fr,
        scl=scl,
        units=["reflectance" if s.kind == "reflectance" else ("DN dB" if c == "uncalibrated" else "dB")
               for s, c in zip(specs, calibration, strict=True)],  # fmt: skip
        calibration=calibration,
        item_id=item.id,
        collection=item.collection_id or "",
        offset_rules=offset_rules,
        quality=quality,
    )


def save_patch_npz(patch: Patch, out: Path) -> Path:
    """Write the single-patch contract (``georeset imagery patch ... --out X.npz``): image, bands, clear_fraction,
    crs, transform (a, b, c, d, e, f), datetime; plus sensor, units, calibration (per band: surface_reflectance,
    gamma0_rtc, sigma0_linear, sigma0_calibrated, db or uncalibrated), fractions (JSON) and item."""
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
        sensor=np.array(patch.sensor),
        units=np.array(patch.units),
        calibration=np.array(patch.calibration),
        fractions=np.array(json.dumps(patch.fractions.as_dict(), sort_keys=True)),
        item=np.array(f"{patch.collection}/{patch.item_id}"),
        offset_rules=np.array(patch.offset_rules),
        quality=np.array(patch.quality),
    )
    tmp.replace(out)
    return out
