"""Provider conventions on the real recorded items (../shared/data/stac), their pixels replaced by small local COGs
with known values: Earth Search's BOA offset flag (and the pixel rule when it is wrong), L1C vs L2A, Landsat C2 L2
with its own bands, scale / offset and QA_PIXEL mask, requester-pays s3:// hrefs, S1 units."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from shapely.geometry import shape

from georeset.errors import InputError
from georeset.pipelines.imagery.bands import band_specs, product_level, sensor_of
from georeset.pipelines.imagery.cloud import QA_CLEAR, QA_CLOUD, QA_DILATED, QA_FILL, QA_WATER
from georeset.pipelines.imagery.providers import gdal_path, provider_of, requester_pays
from georeset.pipelines.imagery.read import read_patch

ES_L2A = "earth-search_sentinel-2-l2a_S2B_20EPT_20250731_0_L2A.json"
ES_L1C = "earth-search_sentinel-2-l1c_S2B_20EPT_20250731_0_L1C.json"
ES_GRD = "earth-search_sentinel-1-grd_S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E.json"
BOULDER = "earth-search-v1_search_point-boulder_2023-10-08_s2l2a-landsatc2l2.json"


def _load(shared: Path, name: str) -> dict[str, Any]:
    return json.loads((shared / "data" / "stac" / "items" / name).read_text())


def _point(d: dict[str, Any]) -> tuple[float, float]:
    c = shape(d["geometry"]).representative_point()
    return float(c.x), float(c.y)


def _cog(path: Path, arr: np.ndarray, crs: str, lon: float, lat: float, res: float, nodata: float | None) -> str:
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    h, w = arr.shape
    x0, y0 = math.floor(x / 60) * 60 - w // 2 * res, math.floor(y / 60) * 60 + h // 2 * res
    prof: dict[str, Any] = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": arr.dtype.name,
                            "crs": crs, "transform": Affine(res, 0, x0, 0, -res, y0), "nodata": nodata}  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**prof) as ds:
            ds.write(arr, 1)
        with mem.open() as ds:
            rio_copy(ds, path, driver="COG", blocksize=128, compress="DEFLATE", overviews="NONE")
    return str(path)


def _item(d: dict[str, Any], local: dict[str, str], **props: Any) -> pystac.Item:
    d = json.loads(json.dumps(d))
    d["assets"] = {k: {**a, "href": local[k]} for k, a in d["assets"].items() if k in local}
    d["properties"].update(props)
    d["links"] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pystac.Item.from_dict(d)


def _halves(n: int, west: float, east: float, dtype: str) -> np.ndarray:
    a = np.full((n, n), east, dtype=dtype)
    a[:, : n // 2] = west
    return a


def _es_l2a(shared: Path, tmp: Path, dn_west: int, dn_east: int, **props: Any) -> tuple[pystac.Item, float, float]:
    d = _load(shared, ES_L2A)
    lon, lat = _point(d)
    crs = d["properties"].get("proj:code") or f"EPSG:{d['properties']['proj:epsg']}"
    local = {"red": _cog(tmp / "B04.tif", _halves(64, dn_west, dn_east, "uint16"), crs, lon, lat, 10, 0),
             "scl": _cog(tmp / "SCL.tif", _halves(32, 6, 4, "uint8"), crs, lon, lat, 20, 0)}  # fmt: skip
    return _item(d, local, **props), lon, lat


@pytest.mark.shared
def test_earth_search_offset_flag_true_is_not_applied_twice(shared_dir: Path, tmp_path: Path) -> None:
    # the recorded item: baseline 05.11, raster:bands offset -0.1, earthsearch:boa_offset_applied true
    item, lon, lat = _es_l2a(shared_dir, tmp_path, 300, 2500)  # DN = reflectance * 10000 (already offset)
    assert item.properties["earthsearch:boa_offset_applied"] is True and provider_of(item) == "earth-search"
    assert band_specs(item)["B04"].offset == -0.1  # what raster:bands declares
    p = read_patch(item, lon, lat, size=32, gsd=10, bands=["B04"])
    assert np.nanmin(p.image[0]) == pytest.approx(0.03, abs=1e-4) and np.nanmax(p.image[0]) == pytest.approx(0.25, abs=1e-4)
    assert p.offset_rules == ["property:earthsearch:boa_offset_applied"]
    assert p.calibration == ["surface_reflectance"] and p.quality == "SCL"


@pytest.mark.shared
def test_earth_search_flag_false_but_offset_applied_is_caught_by_the_pixels(shared_dir: Path, tmp_path: Path) -> None:
    # Element84/earth-search#66 / #71: flag false, DNs already offset: dark water DN 300 -> -0.07 with the offset
    item, lon, lat = _es_l2a(shared_dir, tmp_path, 300, 2500, **{"earthsearch:boa_offset_applied": False})
    p = read_patch(item, lon, lat, size=32, gsd=10, bands=["B04"])
    assert p.offset_rules[0].startswith("pixels:below_zero")
    assert np.nanmin(p.image[0]) == pytest.approx(0.03, abs=1e-4)


@pytest.mark.shared
def test_earth_search_flag_false_and_raw_dns_keep_the_offset(shared_dir: Path, tmp_path: Path) -> None:
    item, lon, lat = _es_l2a(shared_dir, tmp_path, 1300, 3500, **{"earthsearch:boa_offset_applied": False})
    p = read_patch(item, lon, lat, size=32, gsd=10, bands=["B04"])
    assert p.offset_rules == ["raster:bands"]
    assert np.nanmin(p.image[0]) == pytest.approx(0.03, abs=1e-4) and np.nanmax(p.image[0]) == pytest.approx(0.25, abs=1e-4)


@pytest.mark.shared
def test_l1c_is_top_of_atmosphere_and_never_fully_clear_without_a_mask(shared_dir: Path, tmp_path: Path) -> None:
    d = _load(shared_dir, ES_L1C)
    lon, lat = _point(d)
    crs = f"EPSG:{d['properties']['proj:epsg']}"
    item = _item(d, {"red": _cog(tmp_path / "B04.tif", np.full((64, 64), 1500, np.uint16), crs, lon, lat, 10, 0)},
                 **{"eo:cloud_cover": 40.0})  # fmt: skip
    assert product_level(item) == "L1C" and sensor_of(item.collection_id) == "S2"
    p = read_patch(item, lon, lat, size=16, gsd=10, bands=["B04"])
    assert p.calibration == ["toa_reflectance"] and p.quality == "eo:cloud_cover"
    assert p.fractions.clear == pytest.approx(0.6) and p.fractions.cloud == pytest.approx(0.4)


@pytest.mark.shared
def test_landsat_c2_l2_read_as_landsat_with_its_qa_mask(shared_dir: Path, tmp_path: Path) -> None:
    body = json.loads((shared_dir / "data" / "stac" / "responses" / BOULDER).read_text())
    d = next(f for f in body["features"] if f["collection"] == "landsat-c2-l2")
    lon, lat = d["properties"]["proj:centroid"]["lon"], d["properties"]["proj:centroid"]["lat"]
    crs = f"EPSG:{d['properties']['proj:epsg']}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = pystac.Item.from_dict(json.loads(json.dumps(d)))
    specs = band_specs(real)
    assert sensor_of(real.collection_id, real.properties.get("platform")) == "LANDSAT"
    from georeset.pipelines.imagery.bands import band_metadata

    assert band_metadata("OLI_B5")[0] == pytest.approx(0.865)  # what the shards carry
    assert [k for k, v in specs.items() if v.kind == "reflectance"] == [f"OLI_B{i}" for i in range(1, 8)]
    red = specs["OLI_B4"]
    assert (red.asset_key, red.scale, red.offset, red.wavelength_um) == ("red", 2.75e-05, -0.2, pytest.approx(0.65, abs=0.02))
    assert red.requester_pays and requester_pays(real, "red") and red.href.startswith("s3://usgs-landsat/")
    assert gdal_path(red.href) == "/vsis3/" + red.href.removeprefix("s3://")
    dn = round((0.12 + 0.2) / 2.75e-05)
    qa = _halves(32, QA_CLEAR, QA_CLOUD | QA_DILATED, "uint16")
    local = {"red": _cog(tmp_path / "SR_B4.tif", np.full((32, 32), dn, np.uint16), crs, lon, lat, 30, 0),
             "nir08": _cog(tmp_path / "SR_B5.tif", np.full((32, 32), dn, np.uint16), crs, lon, lat, 30, 0),
             "qa_pixel": _cog(tmp_path / "QA.tif", qa, crs, lon, lat, 30, None)}  # fmt: skip
    item = _item(d, local)
    p = read_patch(item, lon, lat, size=16, gsd=30)
    assert p.sensor == "LANDSAT" and p.bands == ["OLI_B4", "OLI_B5"] and p.quality == "QA_PIXEL"
    assert np.allclose(p.image, 0.12, atol=1e-4) and p.offset_rules == ["raster:bands", "raster:bands"]
    fr = p.fractions  # west half clear, east half cloud (the split within one 30 m column of the patch centre)
    assert abs(fr.clear - 0.5) <= 1 / 16 and fr.clear + fr.cloud == pytest.approx(1.0) and fr.nodata == 0.0
    assert item.properties["eo:cloud_cover"] < 1  # the scene says clear; the patch's own mask says half cloud


def test_water_bit_counts_as_clear_view() -> None:
    from georeset.pipelines.imagery.cloud import qa_pixel_fractions

    fr = qa_pixel_fractions(np.array([[QA_WATER, QA_CLEAR], [QA_FILL, QA_CLOUD]], dtype=np.uint16))
    assert (fr.clear, fr.water, fr.cloud, fr.nodata) == (0.5, 0.25, 0.25, 0.25)


@pytest.mark.shared
def test_earth_search_grd_is_requester_pays_through_vsis3(shared_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        item = pystac.Item.from_dict(_load(shared_dir, ES_GRD))
    hh = band_specs(item)["HH"]
    assert hh.requester_pays and hh.href.startswith("s3://sentinel-s1-l1c/")
    assert gdal_path(hh.href).startswith("/vsis3/sentinel-s1-l1c/")


@pytest.mark.parametrize(("value", "expect"), [(-15.0, "db"), (0.1, "sigma0_linear"), (30.0, None)])
def test_s1_float_units_detected_or_refused(fixture_world: dict[str, Any], tmp_path: Path, value: float,
                                            expect: str | None) -> None:  # fmt: skip
    from imagery_fixture_world import CRS, X0, Y0

    s1 = next(i for i in fixture_world["items"] if i["collection"] == "sentinel-1-grd")
    d = json.loads(json.dumps(s1))
    for pol, a in d["assets"].items():
        path = tmp_path / f"{pol}.tif"
        prof = {"driver": "GTiff", "width": 96, "height": 96, "count": 1, "dtype": "float32", "crs": CRS,
                "transform": Affine(10, 0, X0, 0, -10, Y0)}  # fmt: skip
        with MemoryFile() as mem:
            with mem.open(**prof) as ds:
                ds.write(np.full((96, 96), value, np.float32), 1)
            with mem.open() as ds:
                rio_copy(ds, path, driver="COG", blocksize=128, overviews="NONE")
        a["href"] = str(path)
        a["raster:bands"] = [{"data_type": "float32"}]  # no unit
    item = pystac.Item.from_dict(d)
    from imagery_fixture_world import point

    if expect is None:
        with pytest.raises(InputError, match="neither clearly linear power nor dB"):
            read_patch(item, *point(0.5, 0.5), size=8, gsd=10)
        return
    p = read_patch(item, *point(0.5, 0.5), size=8, gsd=10)
    assert p.calibration == [expect, expect]
    assert np.allclose(p.image, value if expect == "db" else 10 * math.log10(value), atol=1e-4)


def test_requester_pays_asset_sets_the_gdal_request_payer(fixture_world: dict[str, Any]) -> None:
    import rasterio
    from imagery_fixture_world import point

    d = json.loads(json.dumps(next(i for i in fixture_world["items"] if i["id"] == "S2B_FIXTURE_20240620")))
    d["properties"]["storage:requester_pays"] = True
    item = pystac.Item.from_dict(d)
    assert band_specs(item)["B04"].requester_pays
    rasterio.env.set_gdal_config("AWS_REQUEST_PAYER", None)
    try:
        read_patch(item, *point(0.5, 0.5), size=8, gsd=10, bands=["B04"])
        assert rasterio.env.get_gdal_config("AWS_REQUEST_PAYER") == "requester"
    finally:
        rasterio.env.set_gdal_config("AWS_REQUEST_PAYER", None)


def test_stac_1_1_bands_are_read_like_eo_and_raster_bands(fixture_world: dict[str, Any]) -> None:
    """STAC 1.1 common-metadata ``bands`` (``eo:center_wavelength``, ``raster:scale`` / ``raster:offset``,
    ``nodata``) in place of ``eo:bands`` / ``raster:bands``, on the band and on the asset."""
    from imagery_fixture_world import REFLECTANCE, point

    d = json.loads(json.dumps(next(i for i in fixture_world["items"] if i["id"] == "S2B_FIXTURE_20240620")))
    d["stac_version"] = "1.1.0"
    for key, a in d["assets"].items():
        a.pop("eo:bands", None)
        rb = a.pop("raster:bands")[0]
        if key == "B04":  # per-band fields
            a["bands"] = [{"name": key, "eo:center_wavelength": 0.665, "nodata": rb["nodata"], "data_type": "uint16",
                           "raster:scale": rb.get("scale"), "raster:offset": rb.get("offset")}]  # fmt: skip
        else:  # single-band asset: fields on the asset itself
            a["bands"] = [{"name": key}]
            a.update({"nodata": rb.get("nodata"), "raster:scale": rb.get("scale"), "raster:offset": rb.get("offset")})
    item = pystac.Item.from_dict(d)
    specs = band_specs(item)
    # the wavelength is the band registry's (georeset.bands), whatever the item quotes
    assert (specs["B04"].wavelength_um, specs["B04"].scale, specs["B04"].offset, specs["B04"].nodata) == (0.6646, 1e-4, -0.1, 0)
    assert (specs["B8A"].scale, specs["B8A"].offset) == (1e-4, -0.1)
    p = read_patch(item, *point(0.25, 0.5), size=8, gsd=10, bands=["B04", "B11"])
    assert np.allclose(p.image[0], REFLECTANCE["B04"], atol=1e-4) and np.allclose(p.image[1], REFLECTANCE["B11"], atol=1e-4)
