"""The single-patch contract (`georeset imagery patch`), `search`, co-registration of S1/S2, SAR calibration
labels, the resampling fast path, and the real T29UNU granule through a STAC item JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from imagery_fixture_world import B8A_EAST, REFLECTANCE, S1_LINEAR, X0, Y0, point
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from typer.testing import CliRunner

from georeset.pipelines.imagery import stac as stac_mod
from georeset.pipelines.imagery.cli import app
from georeset.pipelines.imagery.cloud import scl_fractions
from georeset.pipelines.imagery.read import _read_band, read_patch
from georeset.pipelines.imagery.stac import search_items

runner = CliRunner()


def _item_file(world: dict[str, Any], item_id: str, tmp: Path) -> Path:
    d = next(i for i in world["items"] if i["id"] == item_id)
    path = tmp / f"{item_id}.json"
    path.write_text(json.dumps(d))
    return path


def _patch(tmp: Path, item: Path | str, lon: float, lat: float, *extra: str, name: str = "p.npz") -> tuple[Any, dict]:
    out = tmp / name
    res = runner.invoke(app, ["patch", "--item", str(item), "--lon", str(lon), "--lat", str(lat), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return np.load(out), json.loads(res.stdout.strip().splitlines()[-1])


def test_cli_patch_contract_s2(fixture_world: dict[str, Any], tmp_path: Path) -> None:
    item = _item_file(fixture_world, "S2B_FIXTURE_20240620", tmp_path)
    z, summary = _patch(tmp_path, item, *point(0.5, 0.5), "--size", "32", "--gsd", "10", "--bands", "B04,B8A", "--bands", "B11")
    assert set(z.files) >= {"image", "bands", "clear_fraction", "crs", "transform", "datetime"}
    assert z["image"].dtype == np.float32 and z["image"].shape == (3, 32, 32)
    assert list(z["bands"]) == ["B04", "B8A", "B11"] and str(z["crs"]) == "EPSG:32635"
    assert float(z["clear_fraction"]) == 1.0 and str(z["datetime"]).startswith("2024-06-20T10:00:00")
    a, b, c, d, e, f = z["transform"]
    assert (a, b, d, e) == (10.0, 0.0, 0.0, -10.0) and c % 10 == 0 and f % 10 == 0
    assert np.allclose(z["image"][0], REFLECTANCE["B04"], atol=1e-4)
    b8a = z["image"][1]  # 20 m step, bilinear onto the 10 m grid
    assert np.allclose(b8a[:, :12], 0.20, atol=1e-4) and np.allclose(b8a[:, -12:], B8A_EAST, atol=1e-4)
    assert list(z["calibration"]) == ["surface_reflectance"] * 3 and summary["sensor"] == "S2"
    # cloudy half of the other scene: clear fraction 0
    cloudy = _item_file(fixture_world, "S2A_FIXTURE_20240601", tmp_path)
    z2, _ = _patch(tmp_path, cloudy, *point(0.75, 0.5), "--size", "8", "--gsd", "20", "--bands", "B04", name="c.npz")
    assert float(z2["clear_fraction"]) == 0.0 and json.loads(str(z2["fractions"]))["cloud"] == 1.0


def test_cli_patch_bad_input_says_how_to_fix(fixture_world: dict[str, Any], tmp_path: Path) -> None:
    item = _item_file(fixture_world, "S2B_FIXTURE_20240620", tmp_path)
    res = runner.invoke(app, ["patch", "--item", str(item), "--lon", "24.9", "--lat", "60.1", "--bands", "XX",
                              "--out", str(tmp_path / "x.npz")])  # fmt: skip
    assert res.exit_code == 2 and "fix:" in res.output
    res = runner.invoke(app, ["patch", "--item", str(tmp_path / "nope.json"), "--lon", "0", "--lat", "0",
                              "--out", str(tmp_path / "x.npz")])  # fmt: skip
    assert res.exit_code == 2 and "nope.json" in res.output


def _write_s1_lonlat(tmp: Path, dtype: str, value: float) -> Path:
    """An S1 scene in EPSG:4326 (as GRD/RTC products often are) covering the fixture area."""
    from imagery_fixture_world import lonlat_box

    ring = lonlat_box()
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    w, s, e, n = min(lons) - 0.01, min(lats) - 0.01, max(lons) + 0.01, max(lats) + 0.01
    res = 0.0001
    width, height = int((e - w) / res), int((n - s) / res)
    arr = np.full((height, width), value, dtype=dtype)
    path = tmp / f"s1_{dtype}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype=dtype, crs="EPSG:4326",
                       transform=Affine(res, 0, w, 0, -res, n), nodata=0, tiled=True) as ds:  # fmt: skip
        ds.write(arr, 1)
    coll = "sentinel-1-rtc" if dtype == "float32" else "sentinel-1-grd"
    item = pystac.Item(id=f"S1_LONLAT_{dtype}", geometry={"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
                       bbox=[w, s, e, n], datetime=pystac.utils.str_to_datetime("2024-06-05T05:00:00Z"),
                       properties={"platform": "sentinel-1a", "proj:code": "EPSG:4326"}, collection=coll)  # fmt: skip
    raster = [{"nodata": 0, "data_type": dtype}]
    item.add_asset("vv", pystac.Asset(href=str(path), roles=["data"], extra_fields={"raster:bands": raster}))
    out = tmp / f"s1_{dtype}.json"
    out.write_text(json.dumps(item.to_dict()))
    return out


def test_s1_and_s2_land_on_the_same_grid_and_calibration_is_recorded(fixture_world: dict[str, Any], tmp_path: Path) -> None:
    lon, lat = point(0.5, 0.5)
    s2, _ = _patch(tmp_path, _item_file(fixture_world, "S2B_FIXTURE_20240620", tmp_path), lon, lat,
                   "--size", "16", "--gsd", "20", "--bands", "B04", name="s2.npz")  # fmt: skip
    s1, _ = _patch(tmp_path, _item_file(fixture_world, "S1A_FIXTURE_20240605", tmp_path), lon, lat,
                   "--size", "16", "--gsd", "20", name="s1.npz")  # fmt: skip
    rtc, _ = _patch(tmp_path, _write_s1_lonlat(tmp_path, "float32", 0.05), lon, lat, "--size", "16", "--gsd", "20", name="rtc.npz")
    grd, _ = _patch(tmp_path, _write_s1_lonlat(tmp_path, "uint16", 300), lon, lat, "--size", "16", "--gsd", "20", name="grd.npz")
    for z in (s1, rtc, grd):
        assert str(z["crs"]) == str(s2["crs"]) == "EPSG:32635"
        assert np.array_equal(z["transform"], s2["transform"])
    assert list(s1["bands"]) == ["VV", "VH"] and np.allclose(s1["image"][0], 10 * np.log10(S1_LINEAR["VV"]), atol=1e-3)
    assert list(s1["calibration"]) == ["sigma0_linear"] * 2
    assert list(rtc["calibration"]) == ["gamma0_rtc"] and np.allclose(rtc["image"][0], 10 * np.log10(0.05), atol=1e-3)
    assert list(grd["calibration"]) == ["uncalibrated"] and np.allclose(grd["image"][0], 20 * np.log10(300), atol=1e-3)


def test_resampled_fast_path_equals_warped_vrt(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(1, 10000, size=(200, 200), dtype=np.uint16)
    path = tmp_path / "b.tif"
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=1, dtype="uint16", crs="EPSG:32635",
                       transform=Affine(20, 0, X0, 0, -20, Y0), nodata=0, tiled=True) as ds:  # fmt: skip
        ds.write(arr, 1)
    with rasterio.open(path) as src:
        for dx, dy, gsd in [(410, 930, 10.0), (1000, 2000, 10.0), (420, 600, 20.0), (1230, 870, 5.0)]:
            tf = Affine(gsd, 0, X0 + dx, 0, -gsd, Y0 - dy)
            for rs in (Resampling.bilinear, Resampling.nearest):
                fast = _read_band(src, crs="EPSG:32635", transform=tf, size=24, resampling=rs, nodata=0)
                with WarpedVRT(src, crs=src.crs, transform=tf, width=24, height=24, resampling=rs, nodata=0) as vrt:
                    ref = vrt.read(1)
                assert np.array_equal(fast, ref), (dx, dy, gsd, rs)


def test_search_cli_summary_and_cache(stac_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["search", "--stac-url", stac_url, "--collections", "sentinel-2-l2a,sentinel-1-grd", "--bbox", "20,55,30,65",
            "--datetime", "2024-06-01/2024-06-30", "--max-cloud", "10", "--cache-dir", str(tmp_path / "cache"), "--json"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["items"] == 2 and s["per_collection"] == {"sentinel-2-l2a": 1, "sentinel-1-grd": 1}
    assert {r["id"] for r in s["results"]} == {"S2B_FIXTURE_20240620", "S1A_FIXTURE_20240605"}
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1

    def no_network(*a: Any, **k: Any) -> Any:
        raise AssertionError("searched again")

    monkeypatch.setattr(stac_mod, "open_client", no_network)
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout)["results"] == s["results"]
    text = runner.invoke(app, args[:-1])
    assert text.exit_code == 0 and "2 items" in text.stdout and "sentinel-1-grd: 1" in text.stdout
    # a different query is not served from the cache
    with pytest.raises(AssertionError, match="searched again"):
        search_items(stac_url, collections=["sentinel-2-l2a"], cache_dir=tmp_path / "cache")


# --- real data (skipped when ../shared is absent) -------------------------------------------------------------------

T29 = "data/imagery/sentinel2_l2a_T29UNU_20221005_R60m/R60m"
WATER = (-8.307588333418908, 52.93262454332631)  # Lough Derg
CLOUD = (-8.366728510755639, 52.79487131241208)
LAND = (-8.878721288338784, 52.99498922223787)
T29_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12", "SCL")


def _t29_item_json(shared: Path, tmp: Path) -> Path:
    """A STAC item pointing at the real JP2s (no raster:bands: scale/offset come from the N0400 baseline)."""
    d = (shared / T29).resolve()
    item = {
        "type": "Feature", "stac_version": "1.0.0", "collection": "sentinel-2-l2a",
        "id": "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454",
        "geometry": {"type": "Polygon", "coordinates": [[[-9.0, 52.25], [-7.36, 52.25], [-7.36, 53.25], [-9.0, 53.25], [-9.0, 52.25]]]},
        "bbox": [-9.0, 52.25, -7.36, 53.25],
        "properties": {"datetime": "2022-10-05T11:54:11Z", "platform": "sentinel-2a", "constellation": "sentinel-2",
                       "proj:code": "EPSG:32629"},
        "links": [],
        "assets": {b: {"href": str(d / f"T29UNU_20221005T115411_{b}_60m.jp2"), "type": "image/jp2", "roles": ["data"]}
                   for b in T29_BANDS},
    }  # fmt: skip
    path = tmp / "t29unu.json"
    path.write_text(json.dumps(item))
    return path


@pytest.mark.shared
def test_real_t29unu_patch_contract(shared_dir: Path, tmp_path: Path) -> None:
    item = _t29_item_json(shared_dir, tmp_path)
    z, _ = _patch(tmp_path, item, *WATER, "--size", "16", "--gsd", "60", name="water.npz")
    assert list(z["bands"]) == list(T29_BANDS[:-1]) and z["image"].shape == (11, 16, 16)
    assert str(z["crs"]) == "EPSG:32629"
    a, _, c, _, e, f = z["transform"]
    col, row = round((c - 499980) / 60), round((5900040 - f) / 60)
    assert (a, e) == (60.0, -60.0) and (col, row) == (768, 576)
    d = (shared_dir / T29).resolve()
    for k, band in enumerate(z["bands"]):  # equal to the values computed directly from the JP2: (DN - 1000) / 10000
        with rasterio.open(d / f"T29UNU_20221005T115411_{band}_60m.jp2") as src:
            dn = src.read(1, window=Window(col, row, 16, 16)).astype(np.float32)
        assert np.allclose(z["image"][k], (dn - 1000) / 10000, atol=1e-6), band
    with rasterio.open(d / "T29UNU_20221005T115411_SCL_60m.jp2") as src:
        scl = src.read(1, window=Window(col, row, 16, 16))
    assert float(z["clear_fraction"]) == scl_fractions(scl).clear == 1.0
    nir = z["image"][list(z["bands"]).index("B8A")]
    assert float(nir.mean()) < 0.03  # water NIR near 0 (not near 0.1: the -1000 offset is applied)
    land, _ = _patch(tmp_path, item, *LAND, "--size", "16", "--gsd", "60", "--bands", "B04,B8A", name="land.npz")
    cloud, _ = _patch(tmp_path, item, *CLOUD, "--size", "16", "--gsd", "60", "--bands", "B04,B8A", name="cloud.npz")
    assert float(land["clear_fraction"]) > 0.9 > 0.1 > float(cloud["clear_fraction"])
    assert float(land["image"][1].mean()) > 0.15 > float(nir.mean())
    # at 20 m (bilinear 60 -> 20 m) the patch still agrees with the 60 m pixels on average
    fine = read_patch(pystac.Item.from_file(str(item)), *WATER, size=24, gsd=20.0, bands=["B8A"])
    assert fine.crs == "EPSG:32629" and float(np.nanmean(fine.image)) < 0.03 and fine.fractions.water > 0.9
