"""fetch_patches: item choice per location, .npy + staged rows, re-run skips, failed assets recorded."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from imagery_fixture_world import REFLECTANCE, point, write_fixture_world
from stac_server import serve

from georeset.data_catalog import merge, open_catalog
from georeset.pipelines.imagery import ImageryReadWarning, fetch_patches, grid_cells, pixel_checksum

COLLS = ["sentinel-2-l2a", "sentinel-1-grd"]


def _fetch(con: Any, url: str, tmp: Path, locations: list[Any]) -> Any:
    res = fetch_patches(
        con, stac_url=url, locations=locations, collections=COLLS, datetime="2024-06-01/2024-06-30",
        staging_dir=tmp / "staging", data_dir=tmp / "data", gsd=10.0, size=32, progress=False,
        target_date=datetime(2024, 6, 2, tzinfo=UTC),
    )  # fmt: skip
    for table in ("scenes", "patches"):
        merge(con, table=table, staging_dir=tmp / "staging")
    return res


def test_fetch_twice_no_duplicates_and_best_clear(stac_url: str, tmp_path: Path) -> None:
    con = open_catalog(":memory:")
    cells = grid_cells([point(0.25, 0.5), point(0.26, 0.51), point(0.75, 0.5)], 320.0)
    assert len(cells) == 2
    res = _fetch(con, stac_url, tmp_path, cells)
    assert (res.patches_read, res.failed, res.no_item) == (4, 0, 0)
    rows = con.execute(
        "SELECT sensor, scene_id, clear_fraction, path, checksum, size, bands, ST_AsText(geom) FROM patches ORDER BY lon, sensor"
    ).fetchall()
    assert len(rows) == 4
    # west cell: both S2 scenes clear -> nearest to 2024-06-02 (S2A); east cell: S2A is cloudy there -> S2B
    by = {(r[0], i // 2): r for i, r in enumerate(rows)}
    assert by[("S2", 0)][1].endswith("S2A_FIXTURE_20240601") and by[("S2", 1)][1].endswith("S2B_FIXTURE_20240620")
    assert by[("S1", 0)][1] == "sentinel-1-grd/S1A_FIXTURE_20240605"
    for _sensor, _sid, clear, path, checksum, size, bands, wkt in rows:
        arr = np.load(tmp_path / "data" / path)
        assert arr.shape == (len(bands), size, size) and pixel_checksum(arr) == checksum
        assert clear == 1.0 and wkt.startswith("POLYGON")
    assert con.execute("SELECT count(*) FROM scenes").fetchone()[0] == 3
    again = _fetch(con, stac_url, tmp_path, cells)
    assert (again.patches_read, again.patches_skipped) == (0, 4)
    assert sorted(again.patch_ids) == sorted(res.patch_ids)
    assert con.execute("SELECT count(*) FROM patches").fetchone()[0] == 4
    assert len([p for p in (tmp_path / "data" / "patches").glob("*.npy") if not p.name.endswith(".mask.npy")]) == 4
    assert len(list((tmp_path / "data" / "patches").glob("*.mask.npy"))) == 4


def test_failed_asset_is_recorded_and_run_goes_on(tmp_path: Path) -> None:
    world = write_fixture_world(tmp_path / "world")
    (Path(world["root"]) / "S2A_FIXTURE_20240601" / "B04.tif").unlink()
    con = open_catalog(":memory:")
    with serve(world["serve_paths"]) as url, pytest.warns(ImageryReadWarning, match="B04"):
        res = _fetch(con, url, tmp_path, [point(0.25, 0.5)])
    # S2A (preferred: nearest date) fails, the run falls back to S2B and goes on to S1
    assert res.failed == 1 and res.patches_read == 2
    assert res.failures[0].scene_id.endswith("S2A_FIXTURE_20240601") and "B04" in res.failures[0].reason
    assert con.execute("SELECT sensor, scene_id FROM patches ORDER BY sensor").fetchall() == [
        ("S1", "sentinel-1-grd/S1A_FIXTURE_20240605"),
        ("S2", "sentinel-2-l2a/S2B_FIXTURE_20240620"),
    ]


def test_truncated_cog_and_missing_file_recorded_with_reason(tmp_path: Path) -> None:
    world = write_fixture_world(tmp_path / "world")
    root = Path(world["root"])
    b04 = root / "S2A_FIXTURE_20240601" / "B04.tif"
    data = b04.read_bytes()
    b04.write_bytes(data[: len(data) * 2 // 3])  # header intact, tile data cut off
    (root / "S1A_FIXTURE_20240605" / "VV.tif").unlink()
    con = open_catalog(":memory:")
    with serve(world["serve_paths"]) as url, pytest.warns(ImageryReadWarning):
        res = _fetch(con, url, tmp_path, [point(0.25, 0.5)])
    kinds = {(f.scene_id.split("/")[1], f.asset, f.kind) for f in res.failures}
    assert kinds == {("S2A_FIXTURE_20240601", "B04", "corrupt"), ("S1A_FIXTURE_20240605", "VV", "not_found")}
    assert all(f.reason.startswith(f"{f.kind}: ") for f in res.failures)
    assert res.patches_read == 1  # the run went on: S2 from the other scene
    assert con.execute("SELECT scene_id FROM patches").fetchall() == [("sentinel-2-l2a/S2B_FIXTURE_20240620",)]


def test_nodata_is_saved_as_nan_never_as_a_value(stac_url: str, tmp_path: Path) -> None:
    con = open_catalog(":memory:")
    _fetch(con, stac_url, tmp_path, [point(0.999, 0.5)])  # the scenes end inside the patch
    rows = con.execute("SELECT path, nodata_fraction FROM patches").fetchall()
    assert rows
    for path, nodata_fraction in rows:
        arr = np.load(tmp_path / "data" / path)
        nodata_px = np.isnan(arr).any(axis=0)
        assert nodata_fraction > 0.2 and nodata_px.mean() == pytest.approx(nodata_fraction)
        assert np.isnan(arr[:, nodata_px]).all() and not (arr[:, nodata_px] == 0.0).any()


@pytest.mark.parametrize("max_open", [64, 16])
def test_hundreds_of_candidate_scenes_lose_no_patch(tmp_path: Path, max_open: int) -> None:
    """300 S2 candidates per location: ranking opens 300 SCLs and the reader 12 bands per patch, far past the
    dataset cache's limit of open files (the default 64, and 16: fewer than a patch's 13 files); no band a patch
    holds may be closed under it (`Dataset is closed`)."""
    from imagery_fixture_world import write_many_scenes_world

    world = write_many_scenes_world(tmp_path / "world", 300)
    cells = grid_cells([point(fx, fy) for fx in (0.2, 0.5, 0.8) for fy in (0.2, 0.5, 0.8)], 320.0)
    assert len(cells) == 9
    con = open_catalog(":memory:")
    with serve(world["serve_paths"]) as url, warnings.catch_warnings():
        warnings.simplefilter("error", ImageryReadWarning)
        res = fetch_patches(
            con, stac_url=url, locations=cells, collections=["sentinel-2-l2a"], datetime="2024-01-01/2024-12-31",
            staging_dir=tmp_path / "staging", data_dir=tmp_path / "data", gsd=10.0, size=32, progress=False,
            max_items=1000, max_open=max_open,
        )  # fmt: skip
    assert res.items_found == 302
    assert (res.failed, res.patches_read, res.no_item) == (0, 9, 0)
    merge(con, table="patches", staging_dir=tmp_path / "staging")
    for (path,) in con.execute("SELECT path FROM patches").fetchall():
        arr = np.load(tmp_path / "data" / path)
        assert np.allclose(arr[3], REFLECTANCE["B04"], atol=1e-4)


def test_min_clear_quality_columns_and_mask(stac_url: str, tmp_path: Path) -> None:
    """Only the half-cloudy S2A scene in range: its east half is all cloud. With the default min_clear (0.5) that
    cell gets no S2 patch (counted in below_min_clear), with min_clear 0 it gets one, its cloud in the mask."""
    east = grid_cells([point(0.8, 0.5)], 320.0)
    common = dict(stac_url=stac_url, locations=east, collections=["sentinel-2-l2a"], datetime="2024-06-01/2024-06-05",
                  gsd=10.0, size=32, progress=False)  # fmt: skip
    con = open_catalog(":memory:")
    res = fetch_patches(con, staging_dir=tmp_path / "a" / "staging", data_dir=tmp_path / "a" / "data", **common)
    assert (res.patches_read, res.below_min_clear, res.failed) == (0, 1, 0)
    res = fetch_patches(con, staging_dir=tmp_path / "b" / "staging", data_dir=tmp_path / "b" / "data", min_clear=0.0,
                        **common)  # fmt: skip
    assert (res.patches_read, res.below_min_clear) == (1, 0)
    merge(con, table="patches", staging_dir=tmp_path / "b" / "staging")
    clear, cloud, shadow, nodata, source, mask_path, rules = con.execute(
        "SELECT clear_fraction, cloud_fraction, shadow_fraction, nodata_fraction, quality_source, mask_path, offset_rules"
        " FROM patches").fetchone()  # fmt: skip
    assert (clear, cloud, shadow, nodata, source) == (0.0, 1.0, 0.0, 0.0, "SCL")
    assert set(rules) == {"raster:bands"}
    mask = np.load(tmp_path / "b" / "data" / mask_path)
    assert mask.shape == (32, 32) and mask.dtype == np.uint8 and (mask == 1).all()


def test_fetch_on_the_majortom_grid(stac_url: str, tmp_path: Path) -> None:
    """Two documents in one Major TOM cell share one patch, centred on the cell centre (on the 10 m grid)."""
    from georeset.pipelines.imagery.grid import from_lonlat, majortom_cell

    c = majortom_cell(*point(0.5, 0.5), 320.0)
    cells = grid_cells([(c.lon - 0.001, c.lat + 0.001), (c.lon + 0.001, c.lat - 0.001)], 320.0, grid="majortom")
    assert len(cells) == 1 and cells[0].crs == "EPSG:32635"
    con = open_catalog(":memory:")
    res = fetch_patches(con, stac_url=stac_url, locations=cells, collections=["sentinel-2-l2a"], progress=False,
                        datetime="2024-06-01/2024-06-30", staging_dir=tmp_path / "staging", data_dir=tmp_path / "data",
                        gsd=10.0, size=32)  # fmt: skip
    assert (res.patches_read, res.failed) == (1, 0)
    merge(con, table="patches", staging_dir=tmp_path / "staging")
    tf, crs = con.execute("SELECT transform, crs FROM patches").fetchone()
    x, y = from_lonlat(crs, cells[0].lon, cells[0].lat)
    assert abs(tf[2] + 160 - x) <= 5 and abs(tf[5] - 160 - y) <= 5 and tf[2] % 10 == 0
