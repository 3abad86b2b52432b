"""Same-day mosaics and tile preference at tile and UTM-zone edges.

- Tiles of one satellite pass overlap (S2 MGRS tiles by ~10 km, across UTM zones too). Among candidates of equal
  patch-level clear fraction and date, the one in the cell's own CRS is read (no warp, native pixels).
- A patch at a tile's data edge keeps NaN where the neighbouring tile of the same pass has pixels: tiles of the
  same collection and *solar day* (UTC time + longitude / 15 h: the local date of the overpass, as odc-stac's
  ``groupby="solar_day"``) fill those pixels, first tile first, and the fractions are recomputed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import numpy as np
import pystac

from georeset.pipelines.imagery.cloud import SclFractions, cover_fractions, qa_pixel_fractions, scl_fractions
from georeset.pipelines.imagery.read import Patch
from georeset.pipelines.imagery.stac import item_crs, item_datetime

__all__ = ["solar_day", "native_first", "fractions_of", "fill_same_day"]


def solar_day(item: pystac.Item, lon: float) -> date | None:
    """The local solar date of the acquisition at longitude ``lon``."""
    dt = item_datetime(item)
    return None if dt is None else (dt + timedelta(hours=lon / 15.0)).date()


def native_first(item: pystac.Item, crs: str) -> int:
    """0 when the item's CRS is the cell's CRS (read without a warp), 1 otherwise: a sort key."""
    return 0 if (item_crs(item) or "").upper() == crs.upper() else 1


def fractions_of(patch: Patch, cloud_cover: float | None) -> SclFractions:
    """The patch's fractions recomputed from its image and quality layer (after a mosaic)."""
    nodata = patch.nodata_mask
    if patch.scl is not None and patch.quality == "QA_PIXEL":
        return qa_pixel_fractions(np.where(nodata, 1, patch.scl))
    if patch.scl is not None:
        return scl_fractions(np.where(nodata, 0, patch.scl))
    if patch.quality.startswith("none"):
        nd = float(nodata.mean())
        return SclFractions(clear=1.0 - nd, cloud=0.0, shadow=0.0, snow=0.0, water=0.0, nodata=nd)
    return cover_fractions(~nodata, cloud_cover)


def fill_same_day(patch: Patch, item: pystac.Item, others: Sequence[pystac.Item],
                  read: Callable[[pystac.Item], Patch]) -> tuple[Patch, list[str]]:  # fmt: skip
    """Fill ``patch``'s nodata pixels from ``others`` (same collection and solar day, in preference order); returns
    the patch and the ids of the items that filled pixels. A neighbour that fails to read, or has other bands, is
    skipped."""
    if not patch.nodata_mask.any():
        return patch, []
    image, scl = patch.image.copy(), None if patch.scl is None else patch.scl.copy()
    used: list[str] = []
    for other in others:
        hole = np.isnan(image).any(axis=0)
        if not hole.any():
            break
        try:
            o = read(other)
        except Exception:  # noqa: BLE001 - a neighbour is optional: the patch stands without it
            continue
        if o.bands != patch.bands:
            continue
        take = hole & ~np.isnan(o.image).any(axis=0)
        if not take.any():
            continue
        image[:, take] = o.image[:, take]
        if scl is not None and o.scl is not None:
            scl[take] = o.scl[take]
        used.append(o.item_id)
    if not used:
        return patch, []
    out = dataclasses.replace(patch, image=image, scl=scl)
    return dataclasses.replace(out, fractions=fractions_of(out, item.properties.get("eo:cloud_cover"))), used
