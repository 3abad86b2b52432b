"""GDAL / rasterio settings in one place.

Every read of imagery goes through :func:`gdal_env`, so the options that matter for cloud-optimised reads (no
directory listing on open, only the needed extensions probed over HTTP, retries with back-off, a block cache that is
large enough for a patch stack) are set once and can be overridden by the caller (e.g. requester-pays buckets).
"""

from __future__ import annotations

from typing import Any

import rasterio

__all__ = ["GDAL_DEFAULTS", "gdal_env"]

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
    # no decoded block: every window read would decode its tiles again)
    "GDAL_CACHEMAX": 256 * 2**20,
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
