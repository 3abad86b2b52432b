"""Provider conventions as data: what a STAC provider's fields mean, and the rules that turn them into physics.

Sources (each rule below names the one it follows):

- Earth Search v1 (Element84): asset keys are STAC common names (``red``, ``nir08``, ``scl``); ``raster:bands``
  carry scale 0.0001 / offset -0.1 on every L2A reflectance asset; ``earthsearch:boa_offset_applied: true`` means
  the COG DNs were already shifted by ``BOA_ADD_OFFSET`` (reflectance = DN * 0.0001, the declared -0.1 must NOT be
  applied again: Element84 "the boa_offset_applied is the truth", Element84/earth-search#9). The flag is known to be
  false on items whose offset was in fact applied (Element84/earth-search#66 and #71, cirrus-geo/cirrus-earth-search#33),
  hence the pixel check of :func:`reflectance_offset`. ``sentinel-1-grd`` and the ``-jp2`` / L1C assets are ``s3://``
  hrefs in requester-pays buckets (``storage:requester_pays: true``): read through GDAL's ``/vsis3/`` with
  ``AWS_REQUEST_PAYER=requester`` (GDAL "Virtual file systems", /vsis3/).
- Planetary Computer: asset keys are band names (``B04``, ``SCL``); S2 L2A items carry no ``raster:bands`` scale /
  offset (reflectance from the processing baseline: (DN - 1000) / 10000 from 04.00, microsoft/PlanetaryComputer#134);
  hrefs on ``*.blob.core.windows.net`` need a SAS token (``planetary-computer`` package, ``sign``);
  ``sentinel-1-rtc`` assets ``vv`` / ``vh`` are float32 terrain-corrected gamma0 in linear power, nodata -32768
  (planetary-computer-tasks datasets/sentinel-1-rtc collection template).
- STAC 1.1 ``bands`` (common metadata) replaces ``eo:bands`` / ``raster:bands``: ``bands[].eo:center_wavelength``,
  ``raster:scale`` / ``raster:offset`` / ``nodata`` / ``unit`` (read by :mod:`~georeset.pipelines.imagery.bands`).
- Landsat Collection 2 Level-2 (USGS LSDS-1619): SR = DN * 0.0000275 - 0.2; ``QA_PIXEL`` bits 0 fill, 1 dilated
  cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water (see :func:`~georeset.pipelines.imagery.cloud.qa_pixel_fractions`).
- Sentinel-1 units: ``raster:bands`` ``unit: dB`` when given; otherwise float values are inspected
  (:func:`sar_units`): linear power cannot be negative, dB backscatter of land and water mostly is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pystac

from georeset.pipelines.imagery.bands import (
    AssetBand,
    asset_requester_pays,
    processing_baseline,
    product_level,
    sensor_of,
)

__all__ = [
    "PROVIDERS",
    "Provider",
    "provider_of",
    "requester_pays",
    "gdal_path",
    "reflectance_offset",
    "OffsetDecision",
    "sar_units",
    "DARK_REFLECTANCE",
    "DARK_SHARE",
]


@dataclass(frozen=True)
class Provider:
    name: str
    hosts: tuple[str, ...]  # href hosts / buckets that identify it
    asset_keys: str  # "common-name" | "band-name"
    docs: tuple[str, ...]


PROVIDERS: dict[str, Provider] = {
    "earth-search": Provider(
        "earth-search",
        ("sentinel-cogs", "e84-earth-search", "sentinel-s1-l1c", "sentinel-s2-l1c", "sentinel-s2-l2a", "usgs-landsat"),
        "common-name",
        ("https://element84.com/earth-search/", "Element84/earth-search#9 #66 #71", "cirrus-geo/cirrus-earth-search#33"),
    ),
    "planetary-computer": Provider(
        "planetary-computer",
        (".blob.core.windows.net",),
        "band-name",
        ("https://planetarycomputer.microsoft.com/docs/concepts/sas/", "microsoft/PlanetaryComputer#134"),
    ),
}


def provider_of(item: pystac.Item) -> str:
    """'earth-search', 'planetary-computer' or '' from the item's properties and asset hrefs."""
    if any(k.startswith("earthsearch:") for k in item.properties):
        return "earth-search"
    hrefs = " ".join(a.href for a in item.assets.values())
    for name, prov in PROVIDERS.items():
        if any(h in hrefs for h in prov.hosts):
            return name
    return ""


def requester_pays(item: pystac.Item, asset_key: str | None = None) -> bool:
    """See :func:`~georeset.pipelines.imagery.bands.asset_requester_pays` (storage extension v1 and v2)."""
    return asset_requester_pays(item, asset_key)


def gdal_path(href: str) -> str:
    """The path GDAL reads: ``s3://b/k`` -> ``/vsis3/b/k`` (object-store client, honours ``AWS_REQUEST_PAYER``);
    anything else as it is."""
    if href.startswith("s3://"):
        return "/vsis3/" + href.removeprefix("s3://")
    return href


#: Reflectance below which a pixel counts as "far below zero" in the offset check (dark water and shadow are a few
#: percent at most; the -0.1 offset applied twice sends them to about -0.1 .. -0.07).
DARK_REFLECTANCE = -0.05
#: Share of the valid pixels that must be far below zero for the pixel rule to decide "offset already applied".
DARK_SHARE = 0.005


@dataclass(frozen=True)
class OffsetDecision:
    scale: float
    offset: float
    rule: str  # which rule decided, recorded with the patch


def reflectance_offset(spec: AssetBand, item: pystac.Item, dtype: str) -> OffsetDecision:
    """(scale, offset, rule) of an optical band from the item's properties alone:

    - ``earthsearch:boa_offset_applied`` true: scale from ``raster:bands`` (0.0001), offset 0 (the declared -0.1
      was already applied to the DNs) -> rule ``property:earthsearch:boa_offset_applied``;
    - else ``raster:bands`` scale / offset -> ``raster:bands``;
    - else integer DNs: 0.0001 and, from processing baseline 04.00, -0.1 -> ``baseline``;
    - else (floats): as they are -> ``none``.
    :func:`check_offset_with_pixels` may then overrule a -0.1 offset.
    """
    if spec.kind != "reflectance":
        return OffsetDecision(1.0, 0.0, "none")
    applied = item.properties.get("earthsearch:boa_offset_applied")
    if applied is True and sensor_of(item.collection_id, item.properties.get("platform")) == "S2":
        return OffsetDecision(spec.scale if spec.scale is not None else 1e-4, 0.0, "property:earthsearch:boa_offset_applied")
    if spec.scale is not None or spec.offset is not None:
        return OffsetDecision(spec.scale if spec.scale is not None else 1.0, spec.offset or 0.0, "raster:bands")
    if np.dtype(dtype).kind in "iu":
        baseline = processing_baseline(item)
        return OffsetDecision(1e-4, -0.1 if baseline is not None and baseline >= 4.0 else 0.0, "baseline")
    return OffsetDecision(1.0, 0.0, "none")


def check_offset_with_pixels(raw: np.ndarray, valid: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                             rules: list[str]) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """The pixel rule for Sentinel-2 L2A: when the -0.1 BOA offset would send more than :data:`DARK_SHARE` of the
    valid pixels of the patch's reflectance bands below :data:`DARK_REFLECTANCE`, the DNs were already offset (flag
    wrong, Element84/earth-search#66 / #71): the offset is dropped and the rule recorded as
    ``pixels:below_zero (<share>)``. ``raw``: DN (bands, h, w); ``valid``: (bands, h, w)."""
    cand = [k for k, o in enumerate(offset) if o < -0.05 and not rules[k].startswith("property:")]
    if not cand:
        return offset, rules
    vals = raw[cand] * scale[cand, None, None] + offset[cand, None, None]
    ok = valid[cand]
    n = int(ok.sum())
    if n == 0:
        return offset, rules
    share = float(((vals < DARK_REFLECTANCE) & ok).sum()) / n
    if share <= DARK_SHARE:
        return offset, rules
    offset = offset.copy()
    rules = list(rules)
    for k in cand:
        offset[k] = 0.0
        rules[k] = f"pixels:below_zero ({share:.3f} of valid pixels < {DARK_REFLECTANCE} with the offset)"
    return offset, rules


def optical_calibration(item: pystac.Item) -> str:
    """'toa_reflectance' for L1C / L1 products, 'surface_reflectance' otherwise."""
    return "toa_reflectance" if product_level(item) in {"L1C", "L1"} else "surface_reflectance"


def sar_units(values: np.ndarray, valid: np.ndarray) -> str | None:
    """'db' or 'linear' for float SAR values without a declared unit, or None when they cannot tell:
    more than 1 % of the values below -1, or a negative median -> dB (power cannot be negative);
    no negative value and a median at most 1 -> linear power (land and water backscatter is mostly 0.001 - 0.5 in
    power, -30 .. -3 dB; bright layover pixels above 1 do not move the median)."""
    v = values[valid & np.isfinite(values)]
    if v.size == 0:
        return None
    if (v < -1.0).mean() > 0.01 or float(np.median(v)) < 0:
        return "db"
    if float(v.min()) >= 0.0 and float(np.median(v)) <= 1.0:
        return "linear"
    return None


def describe(item: pystac.Item) -> dict[str, Any]:
    """Provider, product level and requester-pays of an item (for logs and the search summary)."""
    return {"provider": provider_of(item), "level": product_level(item), "requester_pays": requester_pays(item)}
