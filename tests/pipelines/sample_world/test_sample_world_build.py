"""The tiny sample world: files, COGs, DN convention, clouds, STAC metadata, caching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from georeset.pipelines.sample_world import LandCover, SampleWorld, build_sample_world
from georeset.pipelines.sample_world.cog import is_cog
from georeset.pipelines.sample_world.spectra import S2_BAND_INFO

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def _items(world: SampleWorld, cid: str) -> list[pystac.Item]:
    fc = json.loads((world.stac_dir / cid / "items.json").read_text())
    assert fc["type"] == "FeatureCollection"
    return [pystac.Item.from_dict(f) for f in fc["features"]]


def _refl(item: pystac.Item, band: str) -> np.ndarray:
    a = item.assets[band]
    rb = a.extra_fields["raster:bands"][0]
    with rasterio.open(a.href) as src:
        dn = src.read(1).astype(np.float64)
    return dn * rb["scale"] + rb["offset"]


def test_world_fields(tiny_world: SampleWorld) -> None:
    w = tiny_world
    assert w.collections == {"s2": "sentinel-2-l2a", "s1": "sentinel-1-grd"}
    assert len(w.s2_dates) >= 3 and len(w.s1_dates) >= 2
    assert sorted(set(w.s2_dates) | set(w.s1_dates)) == w.dates
    minlon, minlat, maxlon, maxlat = w.bbox
    assert 24.93 < minlon < maxlon < 24.96 and 60.16 < minlat < maxlat < 60.18  # central Helsinki
    assert all(p.is_file() and p.name.endswith(".osm.pbf") for p in w.osm_pbfs)
    assert w.crs == "EPSG:32635"
    stamp = json.loads((w.root / "world.json").read_text())
    assert stamp["simulated"] is True and "SIMULATED" in stamp["note"]
    assert all((w.root / f).is_file() for f in stamp["files"])


def test_second_call_reuses_every_file(tiny_world: SampleWorld) -> None:
    files = sorted(p for p in tiny_world.root.rglob("*") if p.is_file())
    mtimes = [p.stat().st_mtime_ns for p in files]
    again = build_sample_world(tiny_world.root, seed=0, scale="tiny", progress=False)
    assert again == tiny_world
    assert sorted(p for p in tiny_world.root.rglob("*") if p.is_file()) == files
    assert [p.stat().st_mtime_ns for p in files] == mtimes  # nothing rewritten (no timing asserted: machines vary)


def test_s2_cogs_bands_resolutions_crs(tiny_world: SampleWorld) -> None:
    items = _items(tiny_world, "sentinel-2-l2a")
    assert len(items) == len(tiny_world.s2_dates)
    for item in items:
        assert item.collection_id == "sentinel-2-l2a"
        assert set(item.assets) == {*S2_BANDS, "SCL"}
        for key, asset in item.assets.items():
            path = Path(asset.href)
            assert path.is_absolute() and path.is_file()
            assert is_cog(path), path
            rb = asset.extra_fields["raster:bands"][0]
            with rasterio.open(path) as src:
                assert src.crs.to_epsg() == 32635
                assert src.res == (rb["spatial_resolution"], rb["spatial_resolution"])
                assert [src.height, src.width] == asset.extra_fields["proj:shape"]
                assert list(src.transform)[:6] == asset.extra_fields["proj:transform"]
                assert src.nodata == 0
                assert src.dtypes[0] == ("uint8" if key == "SCL" else "uint16")
                if rb["spatial_resolution"] == 10:
                    assert src.overviews(1), "10 m bands have overviews"
            if key != "SCL":
                assert rb["spatial_resolution"] == S2_BAND_INFO[key][3]
                assert rb["scale"] == 0.0001 and rb["offset"] == -0.1 and rb["data_type"] == "uint16"
                (band,) = asset.extra_fields["eo:bands"]
                assert (
                    band["name"] == key and band["center_wavelength"] > 0 and band["full_width_half_max"] > 0
                )
                assert "common_name" in band


def test_dn_convention_water_dark_vegetation_bright(tiny_world: SampleWorld) -> None:
    items = _items(tiny_world, "sentinel-2-l2a")
    clear = min(items, key=lambda i: i.properties["eo:cloud_cover"])
    with rasterio.open(tiny_world.landcover["helsinki"]) as src:
        lc = src.read(1)
    with rasterio.open(clear.assets["SCL"].href) as src:
        scl = np.repeat(np.repeat(src.read(1), 2, 0), 2, 1)[: lc.shape[0], : lc.shape[1]]
    b08 = _refl(clear, "B08")
    b04 = _refl(clear, "B04")
    water = (lc == LandCover.WATER) & (scl == 6)
    veg = (lc == LandCover.GRASS) & (scl == 4)
    assert water.sum() > 10 and veg.sum() > 10
    assert np.median(b08[water]) < 0.05
    assert np.median(b08[veg]) > 0.2
    ndvi = (b08 - b04) / (b08 + b04)
    assert np.median(ndvi[veg]) > 0.6
    with rasterio.open(clear.assets["B08"].href) as src:
        dn = src.read(1)
    assert dn.min() >= 1  # 0 is nodata; DN = reflectance*10000 + 1000
    assert abs((np.median(dn[water]) - 1000) / 10000 - np.median(b08[water])) < 1e-9


def test_scl_cloud_fraction_differs_by_date(tiny_world: SampleWorld) -> None:
    fractions = []
    for item in _items(tiny_world, "sentinel-2-l2a"):
        with rasterio.open(item.assets["SCL"].href) as src:
            scl = src.read(1)
        assert set(np.unique(scl)) <= {3, 4, 5, 6, 8, 9}
        cloudy = float(np.isin(scl, (8, 9, 10)).mean() * 100)
        assert cloudy == pytest.approx(item.properties["eo:cloud_cover"], abs=0.01)
        # cloudy pixels are bright in the blue band
        b02 = _refl(item, "B02")
        high = np.repeat(np.repeat(scl == 9, 2, 0), 2, 1)[: b02.shape[0], : b02.shape[1]]
        if high.any():
            assert np.median(b02[high]) > 0.25
        fractions.append(cloudy)
    assert len(set(fractions)) == len(fractions)
    assert min(fractions) < 10 and max(fractions) > 50


def test_items_say_simulated_and_s1_metadata(tiny_world: SampleWorld) -> None:
    s2 = _items(tiny_world, "sentinel-2-l2a")
    s1 = _items(tiny_world, "sentinel-1-grd")
    assert len(s1) == len(tiny_world.s1_dates)
    for item in s2 + s1:
        p = item.properties
        assert p["georeset:simulated"] is True and "SIMULATED" in p["description"]
        assert p["proj:code"] == "EPSG:32635" and len(p["proj:bbox"]) == 4
        assert p["gsd"] == 10 and p["platform"].startswith(p["constellation"])
    for item in s2:
        assert item.properties["constellation"] == "sentinel-2"
        assert 0 <= item.properties["eo:cloud_cover"] <= 100
    states = set()
    for item in s1:
        p = item.properties
        assert p["constellation"] == "sentinel-1"
        assert p["sar:polarizations"] == ["VV", "VH"] and p["sar:frequency_band"] == "C"
        assert p["sar:center_frequency"] == 5.405 and p["sar:instrument_mode"] == "IW"
        assert p["sar:product_type"] == "GRD"
        states.add(p["sat:orbit_state"])
        assert set(item.assets) == {"vv", "vh"}
        for asset in item.assets.values():
            rb = asset.extra_fields["raster:bands"][0]
            assert rb["data_type"] == "float32" and rb["unit"] == "linear power"
            assert is_cog(Path(asset.href))
            with rasterio.open(asset.href) as src:
                a = src.read(1)
                assert src.res == (10.0, 10.0) and src.crs.to_epsg() == 32635
            db = 10 * np.log10(a)
            assert -40 < np.median(db) < 5
    assert states == {"ascending", "descending"}
