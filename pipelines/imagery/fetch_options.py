"""Validation of the ``georeset imagery fetch`` options, before anything is searched, read or written.

Every bad value is an :class:`~georeset.errors.InputError` naming the flag and the fix (exit 2 at the CLI).
"""

from __future__ import annotations

import math
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.imagery.stac import check_datetime, parse_sortby, resolve_signer

__all__ = ["fetch_options"]


def fetch_options(
    *, collections: str, sign: str | None, max_cloud: float | None, min_clear: float, sortby: str | None,
    max_items: int, datetime: str | None,
) -> tuple[list[str], dict[str, Any]]:  # fmt: skip
    """(collections, keyword arguments for :func:`~georeset.pipelines.imagery.fetch_patches`)."""
    colls = [c.strip() for c in collections.split(",") if c.strip()]
    if not colls:
        raise InputError("--collections is empty", hint="give collection ids, e.g. sentinel-2-l2a,sentinel-1-grd")
    check_datetime(datetime, "--datetime")
    if max_cloud is not None and not (math.isfinite(max_cloud) and 0.0 <= max_cloud <= 100.0):
        raise InputError(f"--max-cloud {max_cloud} is not a percentage", hint="give --max-cloud between 0 and 100")
    if not (math.isfinite(min_clear) and 0.0 <= min_clear <= 1.0):
        raise InputError(f"--min-clear {min_clear} is not a fraction", hint="give --min-clear between 0 and 1")
    if max_items < 1:
        raise InputError(f"--max-items {max_items} must be at least 1", hint="give --max-items 500 (the default)")
    parse_sortby(sortby)
    return colls, {"sign": resolve_signer(sign), "max_cloud": max_cloud, "min_clear": min_clear, "sortby": sortby,
                   "max_items": max_items}  # fmt: skip
