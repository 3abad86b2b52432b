"""Tile and zone edges: the tile in the cell's own CRS wins a tie; same-day (solar day) tiles fill a patch's nodata
edge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from imagery_fixture_world import CRS, EXTENT, REFLECTANCE, X0, Y0, point, write_fixture_world
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from rasterio.warp import Resampling, calculate_default_transform, reproject
from stac_server import serve

from georeset.data_catalog import merge, open_catalog
from georeset.pipelines.imagery import fetch_patches, grid_cells

DAY = "2024-06-10T10:00:00Z"


def _cog(path: Path, arr: np.ndarray, crs: str, transform: Any, nodata: float) -> None:
    prof = {"driver": "GTiff", "width": arr.shape[1], "height": arr.shape[0], "count": 1, "dtype": arr.dtype.name,
            "crs": crs, "transform": transform, "nodata": nodata}  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**prof) as ds:
            ds.write(arr, 1)
        with mem.open() as ds:
            rio_copy(ds, path, driver="COG", blocksize=128, compress="DEFLATE", overviews="NONE")


def _tile(root: Path, base: dict[str, Any], item_id: str, *, keep: str = "all", crs: str = CRS, dn_shift: int = 0) -> dict[str, Any]:
    """A copy of the fixture's clear S2 item as another tile of the same pass: pixels only in the ``keep`` half
    ('west', 'east', 'all'), optionally reprojected to ``crs``; DN shifted by ``dn_shift`` to tell tiles apart."""
    d = root / item_id
    d.mkdir(parents=True, exist_ok=True)
    assets = {}
    for key, asset in base["assets"].items():
        with rasterio.open(asset["href"]) as src:
            arr, tf, nodata = src.read(1), src.transform, src.nodata or 0
        if key != "SCL" and dn_shift:
            arr = np.where(arr > 0, arr + dn_shift, 0).astype(arr.dtype)
        half = arr.shape[1] // 2
        if keep == "west":
            arr[:, half:] = 0
        elif keep == "east":
            arr[:, :half] = 0
        path = d / Path(asset["href"]).name
        if crs != CRS:
            dst_tf, w, h = calculate_default_transform(CRS, crs, arr.shape[1], arr.shape[0], X0, Y0 - EXTENT, X0 + EXTENT, Y0,
                                                       resolution=tf.a)  # fmt: skip
            out = np.zeros((h, w), dtype=arr.dtype)
            reproject(arr, out, src_transform=tf, src_crs=CRS, dst_transform=dst_tf, dst_crs=crs,
                      resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)  # fmt: skip
            arr, tf = out, dst_tf
        _cog(path, arr, crs, tf, nodata)
        assets[key] = {**asset, "href": str(path)}
    return {**base, "id": item_id, "assets": assets, "properties": {**base["properties"], "datetime": DAY, "proj:code": crs}}


def _world(root: Path, tiles: list[dict[str, Any]], base_world: dict[str, Any]) -> list[Path]:
    ip = root / "items-edges.json"
    ip.write_text(json.dumps({"type": "FeatureCollection", "features": tiles}))
    return [p for p in base_world["serve_paths"] if p.name.startswith("collection-")] + [ip]


def _fetch(url: str, tmp: Path, cells: list[Any]) -> tuple[Any, Any]:
    con = open_catalog(":memory:")
    res = fetch_patches(con, stac_url=url, locations=cells, collections=["sentinel-2-l2a"], datetime="2024-06-09/2024-06-11",
                        staging_dir=tmp / "staging", data_dir=tmp / "data", gsd=10.0, size=32, progress=False,
                        bands={"S2": ["B04"]})  # fmt: skip
    merge(con, table="patches", staging_dir=tmp / "staging")
    return res, con


def test_same_day_tiles_fill_the_edge(tmp_path: Path) -> None:
    world = write_fixture_world(tmp_path / "world")
    base = next(i for i in world["items"] if i["id"] == "S2B_FIXTURE_20240620")
    tiles = [_tile(tmp_path, base, "T_A_WEST", keep="west"), _tile(tmp_path, base, "T_B_EAST", keep="east", dn_shift=100)]
    cells = grid_cells([point(0.5, 0.5)], 320.0)  # a cell across the tiles' data edge
    with serve(_world(tmp_path, tiles, world)) as url:
        res, con = _fetch(url, tmp_path, cells)
    assert (res.patches_read, res.mosaicked, res.failed) == (1, 1, 0)
    sid, clear, nodata, mosaic, path = con.execute(
        "SELECT scene_id, clear_fraction, nodata_fraction, mosaic_scenes, path FROM patches").fetchone()  # fmt: skip
    assert (clear, nodata) == (1.0, 0.0) and sid.endswith("T_A_WEST") and list(mosaic) == ["T_B_EAST"]
    img = np.load(tmp_path / "data" / path)[0]
    west, east = img[:, :4], img[:, -4:]
    assert np.allclose(west, REFLECTANCE["B04"], atol=1e-4) and np.allclose(east, REFLECTANCE["B04"] + 0.01, atol=1e-4)


def test_tile_in_the_cells_own_crs_wins_a_tie(tmp_path: Path) -> None:
    world = write_fixture_world(tmp_path / "world")
    base = next(i for i in world["items"] if i["id"] == "S2B_FIXTURE_20240620")
    # same pass, both fully clear over the cell: the zone-34 tile sorts first by id, the zone-35 one is native
    tiles = [_tile(tmp_path, base, "A_ZONE34", crs="EPSG:32634", dn_shift=100), _tile(tmp_path, base, "Z_ZONE35")]
    cells = grid_cells([point(0.5, 0.5)], 320.0)
    assert cells[0].crs == CRS
    with serve(_world(tmp_path, tiles, world)) as url:
        res, con = _fetch(url, tmp_path, cells)
    assert res.patches_read == 1
    assert con.execute("SELECT scene_id FROM patches").fetchone()[0].endswith("Z_ZONE35")
