"""STAC assets -> bands: which asset of an item holds which band, and how to turn its numbers into physics.

Works with Earth Search v1 (asset keys are common names: ``red``, ``nir08``...), the Planetary Computer (asset keys
are band names: ``B04``), the GEO-ReSeT sample world, and STAC 1.1 ``bands`` as well as ``eo:bands`` /
``raster:bands``. The physics of a band (wavelength, bandwidth, GSD) comes from the one registry,
:mod:`georeset.bands` (Sentinel-2, Sentinel-1 and Landsat tables); a catalogue's own ``eo:bands`` centre (Earth
Search quotes B02 at 0.49 µm) is used only for a band the registry does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pystac

from georeset.bands import (
    LANDSAT_OLI,
    LANDSAT_TM,
    S1_DEFAULT_BANDS,
    S2_BANDS,
    S2_DEFAULT_BANDS,
    SAR_POLARIZATIONS,
    band_metadata,
)

__all__ = [
    "S2_BANDS",
    "S2_DEFAULT_BANDS",
    "S1_DEFAULT_BANDS",
    "SAR_POLARIZATIONS",
    "AssetBand",
    "band_specs",
    "band_metadata",
    "sensor_of",
    "is_optical",
    "product_level",
    "LANDSAT_OLI",
    "LANDSAT_TM",
    "landsat_bands",
    "asset_requester_pays",
    "processing_baseline",
]

# Earth Search v1 common-name asset keys.
_ALIASES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
    "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09", "cirrus": "B10", "swir16": "B11",
    "swir22": "B12", "scl": "SCL",
}  # fmt: skip


def landsat_bands(platform: str | None) -> dict[str, tuple[str, float, float]]:
    """The common-name table of a Landsat platform (OLI for landsat-8 / 9, TM / ETM+ otherwise)."""
    p = (platform or "").lower()
    return LANDSAT_TM if any(f"landsat-{n}" in p or f"landsat_{n}" in p for n in "457") else LANDSAT_OLI


@dataclass(frozen=True)
class AssetBand:
    """One band of an item: where it is and how to convert its values (physics from :mod:`georeset.bands`)."""

    name: str  # B02, B8A, SCL, VV ...
    asset_key: str
    href: str
    kind: str  # "reflectance" | "sar" | "class"
    wavelength_um: float | None = None
    bandwidth_um: float | None = None
    polarization: str = ""
    scale: float | None = None  # from raster:bands (None: not given)
    offset: float | None = None
    nodata: float | None = None
    unit: str | None = None
    gsd: float | None = None
    requester_pays: bool = False  # storage:requester_pays (asset or item): read with AWS_REQUEST_PAYER=requester


def sensor_of(collection: str | None, platform: str | None = None, constellation: str | None = None) -> str | None:
    """'S2', 'S1' or 'LANDSAT' from a collection id / platform / constellation; None when none of them."""
    text = " ".join(x for x in (collection, platform, constellation) if x).lower().replace(" ", "-")
    if "landsat" in text:
        return "LANDSAT"
    if "sentinel-2" in text or "sentinel2" in text or "s2-" in text:
        return "S2"
    if "sentinel-1" in text or "sentinel1" in text or "s1-" in text:
        return "S1"
    return None


def is_optical(collection: str | None) -> bool:
    """Collections whose items carry ``eo:cloud_cover`` (Sentinel-2 L1C / L2A, Landsat, HLS), not SAR."""
    text = (collection or "").lower()
    return sensor_of(text) in {"S2", "LANDSAT"} or "hls" in text


def product_level(item: pystac.Item) -> str:
    """'L1C' (top-of-atmosphere reflectance) or 'L2A' / 'L2' (surface reflectance) of an optical item, from the
    collection id, ``s2:product_type`` (S2MSI1C / S2MSI2A) or ``landsat:correction`` (L2SP / L2SR); '' for SAR."""
    text = " ".join(str(x) for x in (item.collection_id, item.properties.get("s2:product_type"), item.id) if x).lower()
    if sensor_of(item.collection_id, item.properties.get("platform")) == "LANDSAT":
        corr = str(item.properties.get("landsat:correction", "")).upper()
        return "L1" if corr.startswith("L1") or "-l1" in text else "L2"
    if "l1c" in text or "msi1c" in text:
        return "L1C"
    if "l2a" in text or "msi2a" in text:
        return "L2A"
    return ""


def processing_baseline(item: pystac.Item) -> float | None:
    """The S2 processing baseline (e.g. 4.0 for '04.00'), from ``s2:processing_baseline`` or the product URI."""
    p = item.properties
    raw = p.get("s2:processing_baseline")
    if raw is None:
        uri = str(p.get("s2:product_uri") or item.id)
        for part in uri.split("_"):
            if len(part) == 5 and part.startswith("N") and part[1:].isdigit():
                raw = f"{part[1:3]}.{part[3:]}"
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _first(seq: Any) -> dict[str, Any]:
    return seq[0] if isinstance(seq, list) and seq and isinstance(seq[0], dict) else {}


def _asset_band_name(key: str, asset: pystac.Asset) -> str | None:
    fields = asset.extra_fields
    eo = fields.get("eo:bands") or fields.get("bands")
    if isinstance(eo, list) and len(eo) == 1 and isinstance(eo[0], dict) and eo[0].get("name"):
        name = str(eo[0]["name"])
        if name.upper() in S2_BANDS or name.upper() in SAR_POLARIZATIONS or name.upper() == "SCL":
            return name.upper()
    base = key.lower().removesuffix("-jp2").removesuffix("-cog")
    if base in _ALIASES:
        return _ALIASES[base]
    if base.upper() in S2_BANDS or base.upper() in SAR_POLARIZATIONS or base.upper() == "SCL":
        return base.upper()
    return None


def _href(asset: pystac.Asset) -> str:
    """Absolute local paths and URLs as given (pystac would resolve a local path against an http self link)."""
    href = asset.href
    if href.startswith("/") or "://" in href or (len(href) > 2 and href[1] == ":"):
        return href
    return asset.get_absolute_href() or href


def _raster_fields(asset: pystac.Asset) -> dict[str, Any]:
    f = asset.extra_fields
    rb = _first(f.get("raster:bands"))
    b = _first(f.get("bands"))
    out = {
        "scale": rb.get("scale", b.get("raster:scale", f.get("raster:scale"))),
        "offset": rb.get("offset", b.get("raster:offset", f.get("raster:offset"))),
        "nodata": rb.get("nodata", b.get("nodata", f.get("nodata"))),
        "unit": rb.get("unit", b.get("unit", f.get("unit"))),
        "gsd": rb.get("spatial_resolution", f.get("gsd", b.get("raster:spatial_resolution"))),
    }
    return out


def band_specs(item: pystac.Item, bands: list[str] | tuple[str, ...] | None = None) -> dict[str, AssetBand]:
    """Map band name -> :class:`AssetBand` for the item's data assets (COG preferred over a ``-jp2`` duplicate).

    ``bands`` restricts (and orders) the result; unknown names are simply absent (the caller decides).
    """
    if sensor_of(item.collection_id, item.properties.get("platform"), item.properties.get("constellation")) == "LANDSAT":
        out = _requester_pays(item, _landsat_specs(item))
        return out if bands is None else {b: out[b] for b in bands if b in out}
    specs: dict[str, AssetBand] = {}
    for key, asset in item.assets.items():
        roles = asset.roles or ["data"]
        if "data" not in roles and "reflectance" not in roles:
            continue
        name = _asset_band_name(key, asset)
        if name is None:
            continue
        if name in specs and key.lower().endswith("-jp2"):
            continue
        r = _raster_fields(asset)
        eo = _first(asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands"))
        if name in SAR_POLARIZATIONS:
            kind, wl, bw, pol = "sar", None, None, name
        elif name == "SCL":
            kind, wl, bw, pol = "class", None, None, ""
        else:
            table = S2_BANDS.get(name)
            kind = "reflectance"
            if table is not None:  # the registry wins: one definition of each band's physics
                wl, bw = table[0], table[1]
            else:
                wl = eo.get("center_wavelength", eo.get("eo:center_wavelength"))
                bw = eo.get("full_width_half_max", eo.get("eo:full_width_half_max"))
            pol = ""
        specs[name] = AssetBand(
            name=name,
            asset_key=key,
            href=_href(asset),
            kind=kind,
            wavelength_um=None if wl is None else float(wl),
            bandwidth_um=None if bw is None else float(bw),
            polarization=pol,
            scale=None if r["scale"] is None else float(r["scale"]),
            offset=None if r["offset"] is None else float(r["offset"]),
            nodata=None if r["nodata"] is None else float(r["nodata"]),
            unit=None if r["unit"] is None else str(r["unit"]),
            gsd=None if r["gsd"] is None else float(r["gsd"]),
        )
    specs = _requester_pays(item, specs)
    if bands is None:
        return specs
    return {b: specs[b] for b in bands if b in specs}


def _landsat_specs(item: pystac.Item) -> dict[str, AssetBand]:
    """Landsat C2 L2 assets: the reflectance bands (``OLI_B<n>`` / ``TM_B<n>``) by common-name key (Earth Search and the Planetary
    Computer both key them ``red``, ``nir08``...) and ``QA_PIXEL``; scale / offset from ``raster:bands``, else the
    USGS C2 L2 values (reflectance = DN * 0.0000275 - 0.2, LSDS-1619)."""
    table = landsat_bands(item.properties.get("platform"))
    specs: dict[str, AssetBand] = {}
    for key, asset in item.assets.items():
        base = key.lower().removesuffix("-cog")
        r = _raster_fields(asset)
        if base in {"qa_pixel", "qa"}:
            specs["QA_PIXEL"] = AssetBand(name="QA_PIXEL", asset_key=key, href=_href(asset), kind="class",
                                         nodata=None, gsd=None if r["gsd"] is None else float(r["gsd"]))  # fmt: skip
            continue
        if base not in table or "data" not in (asset.roles or ["data"]):
            continue
        name, wl, bw = table[base]  # the registry's Landsat table (georeset.bands), not the item's eo:bands
        specs[name] = AssetBand(
            name=name, asset_key=key, href=_href(asset), kind="reflectance", wavelength_um=float(wl),
            bandwidth_um=float(bw), scale=float(r["scale"]) if r["scale"] is not None else 2.75e-05,
            offset=float(r["offset"]) if r["offset"] is not None else -0.2,
            nodata=float(r["nodata"]) if r["nodata"] is not None else 0.0,
            unit=None if r["unit"] is None else str(r["unit"]), gsd=float(r["gsd"]) if r["gsd"] is not None else 30.0,
        )  # fmt: skip
    return dict(sorted(specs.items(), key=lambda kv: (kv[1].kind != "reflectance", kv[1].wavelength_um or 0.0)))


def asset_requester_pays(item: pystac.Item, asset_key: str | None) -> bool:
    """Whether reading an asset makes the requester pay: storage extension v1 ``storage:requester_pays`` on the asset
    or the item, or v2 (what pystac migrates v1 to) ``storage:refs`` of the asset pointing at a
    ``storage:schemes`` entry with ``requester_pays``; without refs, any requester-pays scheme of the item."""
    asset = item.assets.get(asset_key) if asset_key else None
    fields = asset.extra_fields if asset is not None else {}
    if fields.get("storage:requester_pays") is not None:
        return bool(fields["storage:requester_pays"])
    schemes = item.properties.get("storage:schemes") or {}
    refs = fields.get("storage:refs")
    if isinstance(refs, list) and refs and isinstance(schemes, dict):
        return any(isinstance(schemes.get(r), dict) and bool(schemes[r].get("requester_pays")) for r in refs)
    if item.properties.get("storage:requester_pays") is not None:
        return bool(item.properties["storage:requester_pays"])
    return isinstance(schemes, dict) and any(isinstance(v, dict) and v.get("requester_pays") for v in schemes.values())


def _requester_pays(item: pystac.Item, specs: dict[str, AssetBand]) -> dict[str, AssetBand]:
    """Mark the specs whose asset is requester-pays (:func:`asset_requester_pays`)."""
    return {n: replace(s, requester_pays=True) if asset_requester_pays(item, s.asset_key) else s for n, s in specs.items()}
