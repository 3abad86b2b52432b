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
    BandSpec,
    band_specs,
    processing_baseline,
    sensor_of,
)
from georeset.pipelines.imagery.cloud import SclFractions, scl_fractions
from georeset.pipelines.imagery.gdal_env import gdal_env
from georeset.pipelines.imagery.grid import from_lonlat, patch_transform, to_lonlat_many, utm_crs
from georeset.pipelines.imagery.stac import item_datetime

__all__ = [
    "AssetReadError",
    "FAILURE_REASONS",
    "Signer",
    "failure_reason",
    "sar_calibration",
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

    @property
    def nodata_mask(self) -> np.ndarray:
        return np.isnan(self.image).any(axis=0)


#: Turns a stored (unsigned) href into the URL to read (e.g. ``planetary_computer.sign``).
Signer = Callable[[str], str]


@dataclass(frozen=True)
class _Source:
    """An open dataset with the properties a patch read needs, read once (rasterio builds new objects per access)."""

    ds: Any
    crs: CRS | None
    crs_key: str  # CRS as a string, for cheap comparisons
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | None

    @classmethod
    def of(cls, ds: Any) -> _Source:
        crs = ds.crs
        key = crs.to_string() if crs else ""
        return cls(ds, crs, key, ds.transform, ds.width, ds.height, ds.dtypes[0], ds.nodata)


class DatasetCache:
    """Keeps rasterio datasets open across patches (one open per asset, not per patch), with their grid properties,
    the parsed band specs of the items seen, and the GDAL settings entered once for the whole run."""

    def __init__(self, max_open: int = 64) -> None:
        self._open: dict[str, _Source] = {}
        self._specs: dict[int, tuple[pystac.Item, dict[str, BandSpec]]] = {}
        self._env: Any = None
        self.max_open = max_open

    def source(self, href: str, sign: Signer | None = None) -> _Source:
        src = self._open.get(href)
        if src is None:
            if len(self._open) >= self.max_open:
                self.close_datasets()
            src = _Source.of(rasterio.open(sign(href) if sign else href))
            self._open[href] = src
        return src

    def get(self, href: str, sign: Signer | None = None) -> Any:
        return self.source(href, sign).ds

    def specs(self, item: pystac.Item) -> dict[str, BandSpec]:
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
        for src in self._open.values():
            src.ds.close()
        self._open.clear()

    def close(self) -> None:
        self.close_datasets()
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
                    return np.asarray(src.read(1, window=win))
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
def _kernel(origin: float, step: float, size: int, nearest: bool) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Source pixels for ``size`` destination pixels whose left edge is at source coordinate ``origin`` and whose
    width is ``step`` source pixels: (first source pixel, count, index into the window (nearest) or the
    ``size`` x count bilinear weight matrix, unused)."""
    centres = origin + (np.arange(size) + 0.5) * step
    if nearest:
        idx = np.floor(centres).astype(np.intp)
        first = int(idx[0])
        return first, int(idx[-1]) - first + 1, idx - first, np.zeros(0)
    u = centres - 0.5  # source pixel centres are at integer + 0.5
    i0 = np.floor(u).astype(np.intp)
    first = int(i0[0])
    count = int(i0[-1]) - first + 2
    t = u - i0
    w = np.zeros((size, count))
    rows = np.arange(size)
    w[rows, i0 - first] = 1.0 - t
    w[rows, i0 - first + 1] += t
    return first, count, w, np.zeros(0)


def _upsample(src: Any, info: _Source, col: float, row: float, zoom_x: float, zoom_y: float, size: int,
              resampling: Resampling, nodata: float | None) -> np.ndarray | None:  # fmt: skip
    """Bilinear / nearest upsampling of the native window in numpy: one plain block-aligned read, separable
    interpolation with GDAL's kernel (pixel-centre convention, round half up for integer types), the same values as
    GDAL's resampled read. None (let GDAL do it) for other resamplings or when nodata is inside the window."""
    nearest = resampling == Resampling.nearest
    if not nearest and resampling != Resampling.bilinear:
        return None
    c0, nc, kx, _ = _kernel(round(col, 9), round(1.0 / zoom_x, 12), size, nearest)
    r0, nr, ky, _ = _kernel(round(row, 9), round(1.0 / zoom_y, 12), size, nearest)
    if c0 < 0 or r0 < 0 or c0 + nc > info.width or r0 + nr > info.height:
        return None
    a = src.read(1, window=Window(c0, r0, nc, nr))
    if nearest:
        return np.asarray(a[ky[:, None], kx[None, :]])
    if nodata is not None and not math.isnan(nodata) and (a == nodata).any():
        return None  # GDAL renormalises the weights around nodata: leave those windows to it
    out = ky @ a.astype(np.float64) @ kx.T
    if np.dtype(info.dtype).kind in "iu":
        return np.floor(out + 0.5).astype(info.dtype)
    return out.astype(info.dtype)


@lru_cache(maxsize=64)
def _crs(crs: str) -> CRS:
    return CRS.from_user_input(crs)


def sar_calibration(spec: BandSpec, item: pystac.Item, dtype: str) -> str:
    """How a SAR band's numbers relate to backscatter:
    - ``db``: already in dB (``raster:bands`` unit dB);
    - ``gamma0_rtc``: radiometrically terrain-corrected gamma0 in linear power (Planetary Computer
      ``sentinel-1-rtc``, ``sar:product_type`` RTC);
    - ``sigma0_linear``: calibrated linear power (float values, e.g. the sample world);
    - ``uncalibrated``: GRD amplitude digital numbers (integer values; Earth Search ``sentinel-1-grd``). They are
      turned into ``20 log10(DN)`` "dB" that is NOT backscatter: radiometric calibration needs the product's
      calibration LUT, which this reader does not apply (yet), whether or not the item links it.
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


def failure_reason(exc: BaseException) -> str:
    """Classify a read error: 404 / missing file, 403, timeout, truncated or corrupt file, other."""
    if isinstance(exc, AssetReadError):
        return exc.reason
    text = str(exc).lower()
    if any(k in text for k in ("404", "not found", "no such file", "does not exist")):
        return "not_found"
    if any(k in text for k in ("403", "forbidden", "access denied", "accessdenied", "401")):
        return "forbidden"
    if any(k in text for k in ("timed out", "timeout", "time out")):
        return "timeout"
    if any(k in text for k in ("tiff", "read", "decode", "corrupt", "truncat", "not recognized", "jpeg2000", "jp2")):
        return "corrupt"
    return "read_error"


def _open_or_read(spec: BandSpec, fn: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return fn()
    except (RasterioError, OSError, ValueError) as exc:
        raise AssetReadError(band=spec.name, href=spec.href, reason=failure_reason(exc), detail=str(exc)) from exc


def _dataset(spec: BandSpec, cache: DatasetCache | None, sign: Signer | None) -> _Source:
    try:
        return cache.source(spec.href, sign) if cache else _Source.of(rasterio.open(sign(spec.href) if sign else spec.href))
    except (RasterioError, OSError, ValueError) as exc:
        raise AssetReadError(band=spec.name, href=spec.href, reason=failure_reason(exc), detail=str(exc)) from exc


def _env(cache: DatasetCache | None) -> Any:
    return nullcontext() if cache is not None and cache.in_env else gdal_env()


def _read_scl_spec(spec: BandSpec, crs: str, transform: Affine, size: int, cache: DatasetCache | None,
                   sign: Signer | None) -> np.ndarray:  # fmt: skip
    src = _dataset(spec, cache, sign)
    try:
        return _open_or_read(spec, partial(_read_band, src, crs=crs, transform=transform, size=size,
                                           resampling=Resampling.nearest, nodata=0))  # fmt: skip
    finally:
        if cache is None:
            src.ds.close()


def read_scl(
    item: pystac.Item, crs: str, transform: Affine, size: int, cache: DatasetCache | None = None,
    sign: Signer | None = None,
) -> np.ndarray | None:  # fmt: skip
    """SCL on the patch grid (nearest), 0 outside the scene; None when the item has no SCL asset."""
    spec = (cache.specs(item) if cache else band_specs(item)).get("SCL")
    if spec is None:
        return None
    with _env(cache):
        return _read_scl_spec(spec, crs, transform, size, cache, sign)


def _reflectance_coefficients(spec: BandSpec, item: pystac.Item, dtype: str) -> tuple[float, float]:
    """(scale, offset) so that reflectance = DN * scale + offset (see the module docstring)."""
    if spec.scale is not None or spec.offset is not None:
        return (spec.scale if spec.scale is not None else 1.0), (spec.offset or 0.0)
    if np.dtype(dtype).kind in "iu":
        baseline = processing_baseline(item)
        return 1e-4, (-0.1 if baseline is not None and baseline >= 4.0 else 0.0)
    return 1.0, 0.0


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
    wanted = [b.upper() for b in bands] if bands else list(S1_DEFAULT_BANDS if sensor == "S1" else S2_DEFAULT_BANDS)
    specs = [specs_all[b] for b in wanted if b in specs_all and specs_all[b].kind != "class"]
    if not specs:
        raise InputError(
            f"item {item.id} has none of the bands {wanted} (it has {sorted(specs_all)})",
            hint="pick bands with --bands from the item's eo:bands names",
        )
    crs, transform = patch_grid(item, lon, lat, gsd=gsd, size=size, dst_crs=dst_crs)
    n = len(specs)
    raw = np.empty((n, size, size), dtype=np.float32)  # DN as float32 (exact for 8/16-bit integers)
    invalid = np.zeros((n, size, size), dtype=bool)
    scale = np.ones(n, dtype=np.float32)
    offset = np.zeros(n, dtype=np.float32)
    calibration: list[str] = []
    sar: list[int] = []
    scl: np.ndarray | None = None
    with _env(cache):
        for k, spec in enumerate(specs):
            src = _dataset(spec, cache, sign)
            try:
                nodata = spec.nodata if spec.nodata is not None else src.nodata
                dn = _open_or_read(spec, partial(_read_band, src, crs=crs, transform=transform, size=size,
                                                 resampling=Resampling.bilinear, nodata=nodata))  # fmt: skip
                raw[k] = dn
                if nodata is not None and not math.isnan(nodata):
                    invalid[k] = dn == nodata
                if spec.kind == "sar":
                    calibration.append(sar_calibration(spec, item, src.dtype))
                    sar.append(k)
                    if spec.scale is not None or spec.offset is not None:
                        scale[k], offset[k] = (spec.scale if spec.scale is not None else 1.0), (spec.offset or 0.0)
                else:
                    calibration.append("surface_reflectance")
                    scale[k], offset[k] = _reflectance_coefficients(spec, item, src.dtype)
            finally:
                if cache is None:
                    src.ds.close()
        scl_spec = specs_all.get("SCL") if sensor == "S2" else None
        if scl_spec is not None:
            scl = _read_scl_spec(scl_spec, crs, transform, size, cache, sign)
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
    if scl is not None:
        fr = scl_fractions(np.where(nodata_px, 0, scl))
    else:  # SAR sees through clouds: clear = valid
        nd = float(nodata_px.mean())
        fr = SclFractions(clear=1.0 - nd, cloud=0.0, shadow=0.0, snow=0.0, water=0.0, nodata=nd)
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
    )


def save_patch_npz(patch: Patch, out: Path) -> Path:
    """Write the single-patch contract (``georeset imagery patch ... --out X.npz``): image, bands, clear_fraction,
    crs, transform (a, b, c, d, e, f), datetime; plus sensor, units, calibration (per band: surface_reflectance,
    gamma0_rtc, sigma0_linear, db or uncalibrated), fractions (JSON) and item."""
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
    )
    tmp.replace(out)
    return out
