"""STAC collections and items (pystac) for the simulated scenes; every item says plainly it is simulated."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.extensions.sar import FrequencyBand, Polarization, SarExtension
from pystac.extensions.sat import OrbitState, SatExtension

from .landcover import Grid
from .spectra import S2_BAND_INFO, SCL_NAMES

__all__ = [
    "S2_COLLECTION",
    "S1_COLLECTION",
    "COG_MEDIA_TYPE",
    "LICENCE",
    "s2_item",
    "s1_item",
    "write_collection",
]

S2_COLLECTION = "sentinel-2-l2a"
S1_COLLECTION = "sentinel-1-grd"
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
LICENCE = "simulated (GEO-ReSeT sample world, CC0-1.0)"
S2_EXT = "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json"
OSM_NOTE = "Land cover derived from OpenStreetMap data (c) OpenStreetMap contributors, ODbL-1.0."


def _dt(date: str, time: str) -> datetime:
    return datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=UTC)


def _base_item(item_id: str, grid: Grid, dt: datetime, props: dict[str, Any]) -> pystac.Item:
    ring = grid.footprint_lonlat()
    geom = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
    item = pystac.Item(
        id=item_id, geometry=geom, bbox=list(grid.bbox_lonlat()), datetime=dt, properties=props
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = grid.crs
    proj.bbox = list(grid.bounds)
    return item


def _asset(href: Path, title: str, roles: list[str], description: str | None = None) -> pystac.Asset:
    return pystac.Asset(
        href=str(Path(href).resolve()),
        media_type=COG_MEDIA_TYPE,
        title=title,
        roles=roles,
        description=description,
    )


def _set_asset_proj(asset: pystac.Asset, grid: Grid, res: float) -> None:
    proj = ProjectionExtension.ext(asset)
    h, w = grid.shape(res)
    proj.shape = [h, w]
    t = grid.transform(res)
    proj.transform = [t.a, t.b, t.c, t.d, t.e, t.f]
    proj.bbox = list(grid.bounds)


def s2_item(
    *,
    item_id: str,
    grid: Grid,
    date: str,
    time: str,
    platform: str,
    region: str,
    seed: int,
    cloud_cover: float,
    stats: dict[str, float],
    hrefs: dict[str, Path],
) -> pystac.Item:
    """A Sentinel-2 L2A item; ``hrefs`` maps B01..B12, B8A and SCL to COG paths."""
    props: dict[str, Any] = {
        "description": (
            f"SIMULATED Sentinel-2 L2A-like scene over '{region}' made by the GEO-ReSeT sample world (seed {seed}). "
            "The pixels are not real satellite observations: they are rasterised from OpenStreetMap land cover "
            "with typical per-class reflectance spectra, synthetic clouds and noise. " + OSM_NOTE
        ),
        "georeset:simulated": True,
        "georeset:seed": seed,
        "georeset:region": region,
        "georeset:licence": LICENCE,
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "gsd": 10,
        "s2:processing_baseline": "04.00",
        "s2:product_type": "S2MSI2A",
        "s2:water_percentage": stats.get("water", 0.0),
        "s2:vegetation_percentage": stats.get("vegetation", 0.0),
        "s2:not_vegetated_percentage": stats.get("not_vegetated", 0.0),
        "s2:cloud_shadow_percentage": stats.get("cloud_shadow", 0.0),
    }
    item = _base_item(item_id, grid, _dt(date, time), props)
    item.stac_extensions.append(S2_EXT)
    eo = EOExtension.ext(item, add_if_missing=True)
    eo.cloud_cover = cloud_cover
    RasterExtension.add_to(item)
    for name, (common, wl, fwhm, res) in S2_BAND_INFO.items():
        a = _asset(hrefs[name], f"{name} - {common} - {res}m (simulated)", ["data", "reflectance"])
        item.add_asset(name, a)
        EOExtension.ext(a).bands = [
            Band.create(name=name, common_name=common, center_wavelength=wl, full_width_half_max=fwhm)
        ]
        RasterExtension.ext(a).bands = [
            RasterBand.create(
                nodata=0, data_type=DataType.UINT16, spatial_resolution=res, scale=0.0001, offset=-0.1
            )
        ]
        a.extra_fields["gsd"] = res
        _set_asset_proj(a, grid, res)
    codes = ", ".join(f"{k} {v}" for k, v in SCL_NAMES.items())
    scl = _asset(
        hrefs["SCL"], "Scene classification map (SCL) - 20m (simulated)", ["data"], f"SCL values: {codes}"
    )
    item.add_asset("SCL", scl)
    RasterExtension.ext(scl).bands = [
        RasterBand.create(nodata=0, data_type=DataType.UINT8, spatial_resolution=20)
    ]
    scl.extra_fields["gsd"] = 20
    _set_asset_proj(scl, grid, 20)
    item.collection_id = S2_COLLECTION
    return item


def s1_item(
    *,
    item_id: str,
    grid: Grid,
    date: str,
    time: str,
    platform: str,
    region: str,
    seed: int,
    orbit_state: str,
    relative_orbit: int,
    hrefs: dict[str, Path],
) -> pystac.Item:
    """A Sentinel-1 IW GRD-like item; ``hrefs`` maps "vv"/"vh" to COG paths (float32 sigma0, linear power)."""
    props: dict[str, Any] = {
        "description": (
            f"SIMULATED Sentinel-1 IW GRD-like scene over '{region}' made by the GEO-ReSeT sample world (seed "
            f"{seed}). The pixels are not real satellite observations: they are rasterised from OpenStreetMap land "
            "cover with typical per-class C-band backscatter and gamma speckle. Values are sigma0 in linear power "
            "units (dB = 10*log10(value)). " + OSM_NOTE
        ),
        "georeset:simulated": True,
        "georeset:seed": seed,
        "georeset:region": region,
        "georeset:licence": LICENCE,
        "georeset:backscatter_units": "linear_power",
        "platform": platform,
        "constellation": "sentinel-1",
        "instruments": ["c-sar"],
        "gsd": 10,
    }
    item = _base_item(item_id, grid, _dt(date, time), props)
    sar = SarExtension.ext(item, add_if_missing=True)
    sar.apply(
        instrument_mode="IW",
        frequency_band=FrequencyBand.C,
        polarizations=[Polarization.VV, Polarization.VH],
        product_type="GRD",
        center_frequency=5.405,
        resolution_range=20.0,
        resolution_azimuth=22.0,
        pixel_spacing_range=10.0,
        pixel_spacing_azimuth=10.0,
        looks_range=5,
        looks_azimuth=1,
        looks_equivalent_number=4.4,
    )
    sat = SatExtension.ext(item, add_if_missing=True)
    sat.apply(orbit_state=OrbitState(orbit_state), relative_orbit=relative_orbit)
    RasterExtension.add_to(item)
    for key in ("vv", "vh"):
        pol = key.upper()
        a = _asset(
            hrefs[key], f"{pol} sigma0, linear power (simulated)", ["data", "backscatter"],
            f"{pol} backscatter, float32 linear power; dB = 10*log10(value); 0 = no data",
        )  # fmt: skip
        item.add_asset(key, a)
        SarExtension.ext(a).polarizations = [Polarization(pol)]
        RasterExtension.ext(a).bands = [
            RasterBand.create(
                nodata=0, data_type=DataType.FLOAT32, spatial_resolution=10, unit="linear power"
            )
        ]
        a.extra_fields["gsd"] = 10
        _set_asset_proj(a, grid, 10)
    item.collection_id = S1_COLLECTION
    return item


def _collection(cid: str, items: list[pystac.Item]) -> pystac.Collection:
    boxes = [i.bbox for i in items if i.bbox]
    bbox = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    times = sorted(i.datetime for i in items if i.datetime)
    s2 = cid == S2_COLLECTION
    desc = (
        f"SIMULATED {'Sentinel-2 L2A' if s2 else 'Sentinel-1 IW GRD'}-like scenes of the GEO-ReSeT sample world. "
        "Pixels are simulated from OpenStreetMap land cover; they are not real Copernicus Sentinel data. "
        + OSM_NOTE
    )
    coll = pystac.Collection(
        id=cid,
        description=desc,
        title=f"{'Sentinel-2 L2A' if s2 else 'Sentinel-1 GRD'} (simulated, GEO-ReSeT sample world)",
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[times[0], times[-1]]])),
        license="CC0-1.0",
        keywords=["simulated", "sample world", "sentinel-2" if s2 else "sentinel-1"],
        providers=[
            pystac.Provider(
                "GEO-ReSeT sample world (simulated)",
                roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.PROCESSOR],
            ),
            pystac.Provider(
                "OpenStreetMap contributors",
                roles=[pystac.ProviderRole.LICENSOR],
                url="https://www.openstreetmap.org/copyright",
            ),
        ],  # fmt: skip
        extra_fields={"georeset:simulated": True},
    )
    coll.summaries.add("constellation", ["sentinel-2" if s2 else "sentinel-1"])
    coll.summaries.add("platform", sorted({str(i.properties.get("platform")) for i in items}))
    return coll


def write_collection(stac_dir: Path, cid: str, items: list[pystac.Item]) -> tuple[Path, Path]:
    """Write ``<stac_dir>/<cid>/collection.json`` and ``items.json`` (a FeatureCollection); return both paths."""
    d = Path(stac_dir) / cid
    d.mkdir(parents=True, exist_ok=True)
    coll = _collection(cid, items)
    cpath = d / "collection.json"
    coll_dict = coll.to_dict(include_self_link=False, transform_hrefs=False)
    coll_dict["links"] = []
    ipath = d / "items.json"
    feats = []
    for it in items:
        dct = it.to_dict(include_self_link=False, transform_hrefs=False)
        dct["collection"] = cid
        dct["links"] = []
        feats.append(dct)
    for p, obj in ((cpath, coll_dict), (ipath, {"type": "FeatureCollection", "features": feats})):
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(obj, indent=1))
        tmp.replace(p)
    return cpath, ipath
