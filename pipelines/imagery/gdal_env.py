"""GDAL / rasterio settings in one place.

Every read of imagery goes through :func:`gdal_env`, so the options that matter for cloud-optimised reads (no
directory listing on open, only the needed extensions probed over HTTP, retries with back-off, a block cache that is
large enough for a patch stack) are set once and can be overridden by the caller (e.g. requester-pays buckets).
"""

from __future__ import annotations

from typing import Any

import rasterio

__all__ = ["DECODED_CACHE_BYTES", "GDAL_CACHE_SHARE", "GDAL_DEFAULTS", "gdal_cache_bytes", "reader_cache_bytes",
           "gdal_env"]

#: THE one setting for decoded pixels held in memory by a reading process: GDAL's block cache plus the reader's
#: own block cache (``read.DatasetCache``) together. The reader reads tiled GeoTIFF / COG bands whole block by whole
#: block and keeps them, so GDAL's cache only serves what goes through GDAL itself (warps, JP2, strips): it gets
#: ``GDAL_CACHE_SHARE`` of the budget, the reader the rest. Two full-size caches would hold every block twice.
DECODED_CACHE_BYTES = 256 * 2**20
GDAL_CACHE_SHARE = 0.125


def gdal_cache_bytes(total: int = DECODED_CACHE_BYTES) -> int:
    """GDAL's block cache (``GDAL_CACHEMAX``, bytes) within ``total``."""
    return max(8 * 2**20, int(total * GDAL_CACHE_SHARE))


def reader_cache_bytes(total: int = DECODED_CACHE_BYTES) -> int:
    """The reader's own decoded-block cache (bytes) within ``total``."""
    return max(0, total - gdal_cache_bytes(total))


#: Defaults for reading COG/JP2 from local disk, http(s) and s3 (odc-stac GDAL_CLOUD_DEFAULTS, pangeo COG notes).
GDAL_DEFAULTS: dict[str, Any] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.jp2,.JP2,.vrt",
    "GDAL_HTTP_MAX_RETRY": 5,
    "GDAL_HTTP_RETRY_DELAY": 0.5,
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_TIMEOUT": 30,
    "VSI_CACHE": "TRUE",
    # bytes: rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64 (so "256" would be a 256-byte cache that keeps
    # no decoded block: every window read would decode its tiles again); its share of DECODED_CACHE_BYTES
    "GDAL_CACHEMAX": gdal_cache_bytes(),
    "GDAL_NUM_THREADS": "1",  # one per process: parallelism comes from workers, not from GDAL
}


def gdal_env(*, requester_pays: bool = False, aws_no_sign_request: bool | None = None, **overrides: Any) -> rasterio.Env:
    """A ``rasterio.Env`` with :data:`GDAL_DEFAULTS`, plus ``overrides`` (GDAL config option names as keys).

    ``requester_pays`` sets ``AWS_REQUEST_PAYER=requester`` (Earth Search ``sentinel-1-grd``; needs AWS credentials);
    ``aws_no_sign_request`` sets ``AWS_NO_SIGN_REQUEST`` for public buckets.
    """
    opts: dict[str, Any] = dict(GDAL_DEFAULTS)
    if requester_pays:
        opts["AWS_REQUEST_PAYER"] = "requester"
    if aws_no_sign_request is not None:
        opts["AWS_NO_SIGN_REQUEST"] = "YES" if aws_no_sign_request else "NO"
    opts.update(overrides)
    return rasterio.Env(**opts)
