"""Patch reads: shape, reflectance after scale/offset, 20 m -> 10 m resampling, SCL fractions, S1 dB, real T29UNU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from imagery_fixture_world import B8A_EAST, REFLECTANCE, point
from rasterio.windows import Window

from georeset.pipelines.imagery.cloud import scl_fractions
from georeset.pipelines.imagery.grid import cell_of, grid_cells
from georeset.pipelines.imagery.read import read_patch, save_patch_npz


def _item(world: dict[str, Any], item_id: str) -> pystac.Item:
    return pystac.Item.from_dict(next(i for i in world["items"] if i["id"] == item_id))


def test_s2_patch_reflectance_and_resampling(fixture_world: dict[str, Any]) -> None:
    item = _item(fixture_world, "S2B_FIXTURE_20240620")
    p = read_patch(item, *point(0.25, 0.5), size=32, gsd=10.0)
    assert p.image.shape == (12, 32, 32) and p.image.dtype == np.float32
    assert p.bands == list(REFLECTANCE) and p.crs == "EPSG:32635" and p.transform.a == 10.0
    for b, band in enumerate(p.bands):
        expected = REFLECTANCE[band]
        assert np.allclose(p.image[b], expected, atol=1e-4), band
    assert p.fractions.clear == 1.0 and p.fractions.nodata == 0.0
    # B8A (20 m) steps 0.20 -> 0.40 at the scene's middle; a patch across it, on the 10 m grid
    q = read_patch(item, *point(0.5, 0.5), size=32, gsd=10.0)
    b8a = q.image[q.bands.index("B8A")]
    assert b8a.shape == (32, 32)
    assert np.allclose(b8a[:, :12], 0.20, atol=1e-4) and np.allclose(b8a[:, -12:], B8A_EAST, atol=1e-4)
    assert 0.2 <= float(b8a[:, 16].mean()) <= B8A_EAST  # bilinear transition at the step
    assert q.footprint.contains(q.footprint.centroid) and q.footprint.bounds[0] < q.lon < q.footprint.bounds[2]


def test_s2_patch_cloud_and_nodata_at_edge(fixture_world: dict[str, Any]) -> None:
    item = _item(fixture_world, "S2A_FIXTURE_20240601")  # east half cloudy
    p = read_patch(item, *point(0.75, 0.5), size=16, gsd=20.0, bands=["B04", "B8A"])
    assert p.image.shape == (2, 16, 16) and p.fractions.cloud == 1.0 and p.fractions.clear == 0.0
    edge = read_patch(item, *point(0.999, 0.5), size=32, gsd=10.0, bands=["B04"])
    assert 0.3 < edge.fractions.nodata < 0.7
    assert np.isnan(edge.image[0][:, -1]).all() and not np.isnan(edge.image[0][:, 0]).any()


def test_s1_patch_in_db(fixture_world: dict[str, Any], tmp_path: Path) -> None:
    item = _item(fixture_world, "S1A_FIXTURE_20240605")
    p = read_patch(item, *point(0.5, 0.5), size=8, gsd=10.0)
    assert p.bands == ["VV", "VH"] and p.sensor == "S1" and p.polarizations == ["VV", "VH"]
    assert np.allclose(p.image[0], -10.0, atol=1e-3) and np.allclose(p.image[1], 10 * np.log10(0.02), atol=1e-3)
    out = save_patch_npz(p, tmp_path / "p.npz")
    z = np.load(out)
    assert z["image"].shape == (2, 8, 8) and list(z["bands"]) == ["VV", "VH"] and float(z["clear_fraction"]) == 1.0
    assert str(z["crs"]) == "EPSG:32635" and z["transform"].shape == (6,)


def test_scl_fractions_on_constructed_scl() -> None:
    scl = np.array([[0, 3, 4, 5], [6, 7, 8, 9], [10, 11, 1, 2], [4, 4, 4, 4]], dtype=np.uint8)
    f = scl_fractions(scl)
    assert f.nodata == 1 / 16 and f.cloud == 3 / 16 and f.shadow == 1 / 16
    assert f.clear == 9 / 16 and f.snow == 1 / 16 and f.water == 1 / 16


def test_grid_cells_share_nearby_points() -> None:
    a, b = (24.9400, 60.1700), (24.9401, 60.1701)  # ~12 m apart
    far = (24.9600, 60.1700)
    cells = grid_cells([a, b, far], 320.0)
    assert len(cells) == 2 and cells[0].crs == "EPSG:32635"
    c = cell_of(*a, 320.0)
    assert c in cells and abs(c.lon - a[0]) < 0.01 and abs(c.lat - a[1]) < 0.01


T29 = "data/imagery/sentinel2_l2a_T29UNU_20221005_R60m"
WATER = (-8.307588333418908, 52.93262454332631)  # Lough Derg; SCL window rows 576.., cols 768.. all class 6
CLOUD = (-8.366728510755639, 52.79487131241208)  # SCL all 8-10
LAND = (-8.878721288338784, 52.99498922223787)  # SCL all 4-5


def _t29_item(shared: Path) -> pystac.Item:
    d = shared / T29 / "R60m"
    item = pystac.Item(
        id="S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454",
        geometry={"type": "Polygon", "coordinates": [[[-9.0, 52.25], [-7.36, 52.25], [-7.36, 53.25], [-9.0, 53.25], [-9.0, 52.25]]]},
        bbox=[-9.0, 52.25, -7.36, 53.25],
        datetime=pystac.utils.str_to_datetime("2022-10-05T11:54:11Z"),
        properties={"platform": "sentinel-2a", "constellation": "sentinel-2", "proj:code": "EPSG:32629",
                    "s2:processing_baseline": "04.00"},  # fmt: skip
        collection="sentinel-2-l2a",
    )
    for band in ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12", "SCL"):
        item.add_asset(band, pystac.Asset(href=str(d / f"T29UNU_20221005T115411_{band}_60m.jp2"), roles=["data"]))
    return item


@pytest.mark.shared
def test_real_t29unu_granule_reads_as_reflectance(shared_dir: Path) -> None:
    item = _t29_item(shared_dir)
    p = read_patch(item, *WATER, size=16, gsd=60.0, bands=["B03", "B04", "B8A", "B11"])
    # same window read directly from the JP2s, baseline 04.00: (DN - 1000) / 10000
    row, col = 576, 768
    assert p.transform.c == 499980 + col * 60 and p.transform.f == 5900040 - row * 60
    for b, band in enumerate(p.bands):
        with rasterio.open(item.assets[band].href) as src:
            dn = src.read(1, window=Window(col, row, 16, 16)).astype(np.float32)
        assert np.allclose(p.image[b], (dn - 1000) / 10000, atol=1e-6), band
    nir = p.image[p.bands.index("B8A")]
    assert float(np.nanmean(nir)) < 0.05  # water NIR near 0, not near 0.1
    assert p.fractions.water == 1.0 and p.fractions.clear == 1.0
    land = read_patch(item, *LAND, size=16, gsd=60.0, bands=["B04", "B8A"])
    assert 0.15 < float(np.nanmean(land.image[1])) < 0.6 and land.fractions.clear == 1.0
    cloud = read_patch(item, *CLOUD, size=16, gsd=60.0, bands=["B04"])
    assert cloud.fractions.cloud == 1.0 and cloud.fractions.clear == 0.0
    assert np.nanmin(p.image) > -0.1 and np.nanmax(land.image) < 1.0


def test_dataset_cache_never_closes_a_pinned_handle(fixture_world: dict[str, Any]) -> None:
    from georeset.pipelines.imagery.gdal_env import DECODED_CACHE_BYTES, GDAL_DEFAULTS, reader_cache_bytes
    from georeset.pipelines.imagery.read import BLOCK_CACHE_BYTES, DatasetCache

    hrefs = [a["href"] for it in fixture_world["items"] for a in it["assets"].values()]
    assert len(hrefs) >= 20
    with DatasetCache(max_open=4) as cache:
        pinned = [cache.acquire(h) for h in hrefs]  # more than max_open in use at once: all stay open
        assert cache.open_count() == len(hrefs) and not any(s.ds.closed for s in pinned)
        for h in hrefs[:-2]:
            cache.release(h)
        # idle handles beyond the limit are closed, least recently used first; pinned ones stay
        assert cache.open_count() == 4 and cache.in_use() == 2
        assert not pinned[-1].ds.closed and not pinned[-2].ds.closed and pinned[0].ds.closed
    # one budget for decoded pixels: GDAL's block cache plus ours
    assert GDAL_DEFAULTS["GDAL_CACHEMAX"] + BLOCK_CACHE_BYTES == DECODED_CACHE_BYTES == reader_cache_bytes() + GDAL_DEFAULTS["GDAL_CACHEMAX"]


def test_majortom_cells_do_not_overlap_across_a_utm_zone_boundary() -> None:
    """Two points 2 m either side of the zone 34/35 boundary (24 E) at 60 N: UTM cells of their own zones overlap
    on the ground; on the Major TOM grid they are one place (one global cell), and neighbouring global cells in
    either zone barely touch (meridian convergence)."""
    from shapely.geometry import Polygon

    from georeset.pipelines.imagery.grid import (
        from_lonlat,
        grid_cells,
        majortom_cell,
        patch_transform,
        to_lonlat_many,
    )

    def footprint(c: Any) -> Polygon:
        tf = patch_transform(*from_lonlat(c.crs, c.lon, c.lat), gsd=10.0, size=32)
        lon, lat = to_lonlat_many(c.crs, [tf.c, tf.c + 320, tf.c + 320, tf.c], [tf.f, tf.f, tf.f - 320, tf.f - 320])
        return Polygon(list(zip(lon, lat, strict=True)))

    west, east = (23.99998, 60.0), (24.00002, 60.0)
    utm = grid_cells([west, east], 320.0)
    assert [c.crs for c in utm] == ["EPSG:32634", "EPSG:32635"]
    a, b = footprint(utm[0]), footprint(utm[1])
    assert a.intersection(b).area / a.area > 0.05  # overlapping duplicates
    mt = grid_cells([west, east], 320.0, grid="majortom")  # one place, one global cell: no duplicate
    assert len(mt) == 1 and mt[0].key.startswith("majortom:320:")
    # neighbouring global cells along the row, whichever zone their centres fall in, barely touch
    c = mt[0]
    dlon = c.lon / (c.i + 0.5)  # the row's column width in degrees (centre = (col + 0.5) * width)
    row = [majortom_cell(c.lon + k * dlon, c.lat, 320.0) for k in range(-3, 4)]
    assert len({x.key for x in row}) == 7 and {x.crs for x in row} == {"EPSG:32634", "EPSG:32635"}
    for x, y in zip(row, row[1:], strict=False):
        a, b = footprint(x), footprint(y)
        assert a.intersection(b).area / a.area < 0.05
    # one id per location: any point of a cell maps to it
    assert majortom_cell(c.lon + 0.2 * dlon, c.lat - 0.0005, 320.0).key == c.key
