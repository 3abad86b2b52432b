"""Patch-reading benchmark (not a timed test): our reader against odc-stac used two ways, a plain rasterio loop and
the decode floor, on the SAME locations and N for every method.

    .venv/bin/python bench/patches.py                      # 1,000 locations, writes bench/results/patches.json
    .venv/bin/python bench/patches.py --locations 300

Archive: a local simulated Sentinel-2 L2A scene written like the imagery test fixtures (and the sample world):
per-band COGs (uint16 DN = reflectance * 10000 + 1000, DEFLATE + predictor, 512 px blocks, native 10/20/60 m
grids, SCL at 20 m), a STAC item with ``eo:bands`` / ``raster:bands`` / ``proj:*``, over a 30.72 km square in
EPSG:32635. It is generated once under ``--archive`` (default: a temp folder) and reused.

Job, per location (random lon/lat inside the scene, the same list for every method): a ``size`` x ``size`` patch at
``gsd`` metres on the point's UTM grid, the 12 L2A bands as surface reflectance (bilinear from 20/60 m) plus SCL
(nearest):
- ``ours``: :func:`georeset.pipelines.imagery.read_patch` with a :class:`DatasetCache` (also computes the SCL
  fractions, quality mask, nodata mask and the patch footprint);
- ``odc_per_location``: ``odc.stac.load([item], geobox=<patch grid>)`` per location (re-opens 13 files each time);
- ``odc_scene``: how odc-stac users read many patches: ``odc.stac.load([item], groupby="solar_day")`` of the whole
  scene once on the 10 m UTM grid, then a numpy slice per location (the load is inside the timed span);
- ``rasterio_loop``: a plain rasterio loop done well: datasets opened once, GDAL's block cache given the whole
  decoded-pixel budget ours has (``DECODED_CACHE_BYTES``), per band one resampled windowed ``read`` (``out_shape``,
  bilinear / nearest) of the patch bounds, then ``DN * scale + offset``;
- ``floor_cold``: per band a ``read`` of exactly the native window under the patch, datasets kept open but GDAL's
  block cache at 1 MB, so each patch decodes its blocks again (the decode cost of a cold cache);
- ``floor_warm``: the same with GDAL's cache at the whole budget (blocks reused between patches: not a decode
  floor, the cost of rasterio's windowed read path with everything cached).
Each method runs in its own fresh Python process, on one thread; figures are patches per CPU second of that process
(the wall clock is reported too; on a shared machine it mostly measures the neighbours), and the process's RSS at
the end and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CRS = "EPSG:32635"
X0, Y0 = 360000.0, 6700800.0  # upper-left corner, multiples of 60 m
EXTENT = 30720.0
NATIVE = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
          "B09": 60, "B11": 20, "B12": 20}  # fmt: skip
BANDS = list(NATIVE)
ARCHIVE_VERSION = "1"


# --- archive ----------------------------------------------------------------------------------------------------


def _field(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """A smooth random field (bilinear-upsampled coarse noise) plus pixel noise, in [lo, hi]."""
    coarse = rng.random((n // 64 + 2, n // 64 + 2))
    idx = np.linspace(0, coarse.shape[0] - 1.001, n)
    i0 = idx.astype(int)
    t = (idx - i0)[:, None]
    rows = coarse[i0] * (1 - t) + coarse[i0 + 1] * t
    s = (idx - i0)[None, :]
    f = rows[:, i0] * (1 - s) + rows[:, i0 + 1] * s
    f = f + rng.normal(0, 0.03, (n, n))
    return np.clip(lo + (hi - lo) * f, 0.0, 1.0)


def _write_cog(path: Path, arr: np.ndarray, res: float, nodata: float | None) -> None:
    import rasterio
    from affine import Affine
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    h, w = arr.shape
    profile: dict[str, Any] = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": arr.dtype.name,
                               "crs": CRS, "transform": Affine(res, 0, X0, 0, -res, Y0), "nodata": nodata}  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(arr, 1)
        with mem.open() as ds:
            rio_copy(ds, path, driver="COG", blocksize=512, compress="DEFLATE", predictor=2, overviews="NONE")
    assert rasterio  # imported for its side effect of registering drivers


def build_archive(root: Path, seed: int = 0) -> Path:
    """Write the COGs and ``item.json`` once (a stamp records the version); returns the item path."""
    from pyproj import Transformer

    root.mkdir(parents=True, exist_ok=True)
    item_path = root / "item.json"
    stamp = root / "archive.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("version") == ARCHIVE_VERSION and item_path.exists():
        return item_path
    rng = np.random.default_rng(seed)
    assets: dict[str, Any] = {}
    for k, (band, res) in enumerate(NATIVE.items()):
        n = int(EXTENT // res)
        refl = _field(rng, n, 0.02 + 0.02 * k, 0.15 + 0.03 * k)
        _write_cog(root / f"{band}.tif", np.round(refl * 10000 + 1000).astype(np.uint16), res, 0)
        assets[band] = {
            "href": str(root / f"{band}.tif"), "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data", "reflectance"], "gsd": res, "eo:bands": [{"name": band}],
            "proj:shape": [n, n], "proj:transform": [res, 0, X0, 0, -res, Y0],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1, "spatial_resolution": res}],
        }  # fmt: skip
    n = int(EXTENT // 20)
    scl = np.where(_field(rng, n, 0, 1) > 0.7, 9, 4).astype(np.uint8)
    _write_cog(root / "SCL.tif", scl, 20, 0)
    assets["SCL"] = {"href": str(root / "SCL.tif"), "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                     "roles": ["data"], "proj:shape": [n, n], "proj:transform": [20, 0, X0, 0, -20, Y0],
                     "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}]}  # fmt: skip
    t = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    ring = [list(t.transform(x, y)) for x, y in ((X0, Y0), (X0 + EXTENT, Y0), (X0 + EXTENT, Y0 - EXTENT), (X0, Y0 - EXTENT), (X0, Y0))]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "SIM_S2A_MSIL2A_BENCH", "collection": "sentinel-2-l2a",
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/projection/v2.0.0/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [ring]}, "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {"datetime": "2024-06-01T10:00:00Z", "platform": "sentinel-2a", "constellation": "sentinel-2",
                       "proj:code": CRS, "s2:processing_baseline": "05.00", "georeset:simulated": True},
        "links": [], "assets": assets,
    }  # fmt: skip
    item_path.write_text(json.dumps(item))
    stamp.write_text(json.dumps({"version": ARCHIVE_VERSION, "seed": seed}))
    return item_path


def locations(n: int, seed: int, margin_m: float = 400.0) -> list[tuple[float, float]]:
    from pyproj import Transformer

    rng = np.random.default_rng(seed + 1)
    xs = rng.uniform(X0 + margin_m, X0 + EXTENT - margin_m, n)
    ys = rng.uniform(Y0 - EXTENT + margin_m, Y0 - margin_m, n)
    t = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(xs, ys)
    return [(float(a), float(b)) for a, b in zip(lon, lat, strict=True)]


# --- the three methods (each in its own process) ---------------------------------------------------------------


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ours(item_path: Path, locs: list[tuple[float, float]], size: int, gsd: float) -> dict[str, Any]:
    import pystac

    from georeset.pipelines.imagery import DatasetCache, read_patch

    item = pystac.Item.from_file(str(item_path))
    checksum = 0.0
    with DatasetCache() as cache:
        read_patch(item, *locs[0], size=size, gsd=gsd, cache=cache)  # imports, first open (not timed)
        c0, t0 = time.process_time(), time.perf_counter()
        for lon, lat in locs:
            p = read_patch(item, lon, lat, size=size, gsd=gsd, cache=cache)
            checksum += float(p.image[3, 0, 0]) + p.fractions.clear
        return _timed(len(locs), c0, t0, check=checksum)


def _timed(n: int, c0: float, t0: float, **extra: Any) -> dict[str, Any]:
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n": n, "seconds": dt, "cpu_seconds": cpu, "patches_per_s": n / dt, "patches_per_cpu_s": n / cpu,
            "rss_mb": round(_rss_mb(), 1), "peak_rss_mb": round(_peak_mb(), 1), **extra}  # fmt: skip


def _grid(lon: float, lat: float, size: int, gsd: float) -> tuple[str, Any]:
    from georeset.pipelines.imagery.grid import from_lonlat, patch_transform, utm_crs

    crs = utm_crs(lon, lat)
    return crs, patch_transform(*from_lonlat(crs, lon, lat), gsd=gsd, size=size)


def run_odc_per_location(item_path: Path, locs: list[tuple[float, float]], size: int, gsd: float) -> dict[str, Any]:
    import pystac
    from odc.geo.geobox import GeoBox
    from odc.stac import load

    item = pystac.Item.from_file(str(item_path))
    raster = {b: item.assets[b].extra_fields["raster:bands"][0] for b in BANDS}
    resampling = {"*": "bilinear", "SCL": "nearest"}
    checksum = 0.0

    def one(lon: float, lat: float) -> float:
        crs, tf = _grid(lon, lat, size, gsd)
        ds = load([item], bands=[*BANDS, "SCL"], geobox=GeoBox((size, size), tf, crs), resampling=resampling,
                  chunks=None, progress=None)  # fmt: skip
        img = np.stack([ds[b].values[0].astype(np.float32) * raster[b]["scale"] + raster[b]["offset"] for b in BANDS])
        return float(img[3, 0, 0]) + float(np.isin(ds["SCL"].values[0], [4, 5, 6, 7, 11]).mean())

    one(*locs[0])  # imports, first open (not timed)
    c0, t0 = time.process_time(), time.perf_counter()
    for lon, lat in locs:
        checksum += one(lon, lat)
    return _timed(len(locs), c0, t0, check=checksum)


def run_odc_scene(item_path: Path, locs: list[tuple[float, float]], size: int, gsd: float) -> dict[str, Any]:
    import pystac
    from odc.geo.geobox import GeoBox
    from odc.stac import load
    from rasterio.transform import Affine

    item = pystac.Item.from_file(str(item_path))
    raster = {b: item.assets[b].extra_fields["raster:bands"][0] for b in BANDS}
    checksum = 0.0
    c0, t0 = time.process_time(), time.perf_counter()
    n = int(EXTENT // gsd)
    gbox = GeoBox((n, n), Affine(gsd, 0, X0, 0, -gsd, Y0), CRS)  # the scene on the 10 m grid of its UTM zone
    ds = load([item], bands=[*BANDS, "SCL"], geobox=gbox, groupby="solar_day",
              resampling={"*": "bilinear", "SCL": "nearest"}, chunks=None, progress=None)  # fmt: skip
    arrs = {b: ds[b].values[0] for b in [*BANDS, "SCL"]}
    t_load = time.perf_counter() - t0
    for lon, lat in locs:
        crs, tf = _grid(lon, lat, size, gsd)
        assert crs == CRS
        c, r = round((tf.c - X0) / gsd), round((Y0 - tf.f) / gsd)
        img = np.stack([arrs[b][r : r + size, c : c + size].astype(np.float32) * raster[b]["scale"] + raster[b]["offset"]
                        for b in BANDS])  # fmt: skip
        scl = arrs["SCL"][r : r + size, c : c + size]
        checksum += float(img[3, 0, 0]) + float(np.isin(scl, [4, 5, 6, 7, 11]).mean())
    return _timed(len(locs), c0, t0, load_seconds=round(t_load, 2), check=checksum)


def run_rasterio_loop(item_path: Path, locs: list[tuple[float, float]], size: int, gsd: float) -> dict[str, Any]:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import from_bounds

    from georeset.pipelines.imagery.gdal_env import DECODED_CACHE_BYTES, gdal_env

    item = json.loads(item_path.read_text())
    raster = {b: item["assets"][b]["raster:bands"][0] for b in BANDS}
    checksum = 0.0
    with gdal_env(GDAL_CACHEMAX=DECODED_CACHE_BYTES):  # the same decoded-pixel budget as ours, all of it GDAL's
        srcs = {b: rasterio.open(item["assets"][b]["href"]) for b in [*BANDS, "SCL"]}
        c0, t0 = time.process_time(), time.perf_counter()
        for lon, lat in locs:
            _, tf = _grid(lon, lat, size, gsd)
            bounds = (tf.c, tf.f - size * gsd, tf.c + size * gsd, tf.f)
            img = np.empty((len(BANDS), size, size), np.float32)
            for k, b in enumerate(BANDS):
                src = srcs[b]
                dn = src.read(1, window=from_bounds(*bounds, transform=src.transform), out_shape=(size, size),
                              resampling=Resampling.bilinear)  # fmt: skip
                img[k] = dn * raster[b]["scale"] + raster[b]["offset"]
            scl = srcs["SCL"].read(1, window=from_bounds(*bounds, transform=srcs["SCL"].transform), out_shape=(size, size),
                                   resampling=Resampling.nearest)  # fmt: skip
            checksum += float(img[3, 0, 0]) + float(np.isin(scl, [4, 5, 6, 7, 11]).mean())
        out = _timed(len(locs), c0, t0, check=checksum)
        for src in srcs.values():
            src.close()
    return out


def _floor(item_path: Path, locs: list[tuple[float, float]], size: int, gsd: float, cache_bytes: int) -> dict[str, Any]:
    import math

    import rasterio
    from rasterio.windows import Window

    from georeset.pipelines.imagery.gdal_env import gdal_env

    item = json.loads(item_path.read_text())
    hrefs = [item["assets"][b]["href"] for b in [*BANDS, "SCL"]]
    checksum = 0.0
    with gdal_env(GDAL_CACHEMAX=cache_bytes):
        srcs = [rasterio.open(h) for h in hrefs]
        windows = []
        for lon, lat in locs:  # grid arithmetic outside the timed loop: the floor is decode only
            _, tf = _grid(lon, lat, size, gsd)
            x0, y0 = tf.c, tf.f
            ws = []
            for src in srcs:
                st = src.transform
                c0, r0 = math.floor((x0 - st.c) / st.a), math.floor((y0 - st.f) / st.e)
                c1 = math.ceil((x0 + size * gsd - st.c) / st.a)
                r1 = math.ceil((y0 - size * gsd - st.f) / st.e)
                ws.append(Window(c0, r0, c1 - c0, r1 - r0))
            windows.append(ws)
        c0, t0 = time.process_time(), time.perf_counter()
        for ws in windows:
            for src, win in zip(srcs, ws, strict=True):
                a = src.read(1, window=win)
                checksum += float(a[0, 0])
        out = _timed(len(locs), c0, t0, gdal_cachemax=cache_bytes, check=checksum)
        for src in srcs:
            src.close()
    return out


def run_floor_cold(item_path: Path, locs: list[tuple[float, float]], size: int, gsd: float) -> dict[str, Any]:
    return _floor(item_path, locs, size, gsd, 2**20)


def run_floor_warm(item_path: Path, locs: list[tuple[float, float]], size: int, gsd: float) -> dict[str, Any]:
    from georeset.pipelines.imagery.gdal_env import DECODED_CACHE_BYTES

    return _floor(item_path, locs, size, gsd, DECODED_CACHE_BYTES)


METHODS = {"ours": run_ours, "odc_per_location": run_odc_per_location, "odc_scene": run_odc_scene,
           "rasterio_loop": run_rasterio_loop, "floor_cold": run_floor_cold, "floor_warm": run_floor_warm}


def _worker(method: str, item_path: Path, n: int, seed: int, size: int, gsd: float) -> None:
    locs = locations(n, seed)
    print(json.dumps(METHODS[method](item_path, locs, size, gsd)))


def _spawn(method: str, item_path: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", method, "--item", str(item_path), "--locations", str(n),
           "--seed", str(args.seed), "--size", str(args.size), "--gsd", str(args.gsd)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GDAL_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{method} failed:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locations", type=int, default=1000, help="the same N (and locations) for every method")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--gsd", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--archive", type=Path, default=Path(tempfile.gettempdir()) / "georeset-bench-archive")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "patches.json")
    ap.add_argument("--worker", choices=sorted(METHODS), help=argparse.SUPPRESS)
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--item", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.item, args.locations, args.seed, args.size, args.gsd)
        return {}
    if args.build_only:
        build_archive(args.archive, args.seed)
        return {}
    t0 = time.perf_counter()
    # in a child process: Linux keeps a process's peak RSS across exec, so the workers' figures would start at the
    # archive writer's peak
    subprocess.run([sys.executable, __file__, "--build-only", "--archive", str(args.archive), "--seed", str(args.seed)],
                   check=True)  # fmt: skip
    item_path = args.archive / "item.json"
    t_archive = time.perf_counter() - t0
    runs: dict[str, dict[str, Any]] = {}
    for m in [x.strip() for x in args.methods.split(",") if x.strip()]:
        try:
            runs[m] = _spawn(m, item_path, args.locations, args)
        except SystemExit as exc:  # odc-stac not installed
            print(str(exc)[:400], file=sys.stderr)
    ours = runs.get("ours")
    table = {m: {"patches_per_cpu_s": round(r["patches_per_cpu_s"], 1), "patches_per_s": round(r["patches_per_s"], 1),
                 "rss_mb": r["rss_mb"], "peak_rss_mb": r["peak_rss_mb"],
                 **({"load_seconds": r["load_seconds"]} if "load_seconds" in r else {})} for m, r in runs.items()}  # fmt: skip
    ratios = {f"ours_over_{m}": round(ours["patches_per_cpu_s"] / r["patches_per_cpu_s"], 2)
              for m, r in runs.items() if ours and m != "ours"}  # fmt: skip
    result = {
        "job": f"{args.size}x{args.size} px at {args.gsd:g} m, 12 S2 L2A bands + SCL, random locations in one "
               f"{EXTENT / 1000:g} km scene (local COGs, 512 px DEFLATE blocks), one thread per method",
        "locations": args.locations,
        "same_locations_for_all_methods": True,
        "timing": "patches per CPU second of each method's own process (wall clock alongside: the machine is shared)",
        "methods": table,
        "ratios": ratios,
        "archive_seconds": round(t_archive, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
