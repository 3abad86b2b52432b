"""Grid keys: patch_cells / document_cells give the same pairs as the geometry, as an integer equi-join."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime
from pathlib import Path
from typing import Any

from georeset.data_catalog import merge, open_catalog, stage
from georeset.data_catalog.grid import CELL_SCALE, grids, refresh_grid_index
from georeset.pipelines.imagery.grid import cell_of, from_lonlat, patch_transform, to_lonlat
from georeset.pipelines.pairing import pair_documents

NOW = datetime(2024, 7, 1)
CRS = "EPSG:32635"
CELL_M = 160.0


def _h(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _patch_row(pid: str, i: int, j: int, *, aligned: bool = True) -> dict[str, Any]:
    x, y = (i + 0.5) * CELL_M, (j + 0.5) * CELL_M
    t = patch_transform(x, y, gsd=10.0, size=16)
    if not aligned:  # shifted by half a pixel: not on the 160 m grid
        t = t.__class__(10.0, 0.0, t.c + 5.0, 0.0, -10.0, t.f)
    corners = [to_lonlat(CRS, t.c + dx, t.f - dy) for dx, dy in ((0, 0), (160, 0), (160, 160), (0, 160), (0, 0))]
    wkt = "POLYGON((" + ", ".join(f"{lo!r} {la!r}" for lo, la in corners) + "))"
    clon, clat = to_lonlat(CRS, t.c + 80, t.f - 80)
    return {"patch_id": pid, "scene_id": "s2/x", "sensor": "S2", "lon": clon, "lat": clat, "crs": CRS,
            "transform": [t.a, t.b, t.c, t.d, t.e, t.f], "gsd": 10.0, "size": 16, "bands": ["B04"],
            "path": f"patches/{pid}.npy", "checksum": _h(pid), "geom_wkt": wkt, "source": "test",
            "licence": "CC0-1.0", "retrieved_at": NOW, "content_hash": _h("patch", pid, aligned)}


def _doc_row(k: int, lon: float, lat: float) -> dict[str, Any]:
    return {"doc_id": f"d{k}", "source": "t", "source_id": str(k), "title": f"d{k}", "text": "x", "lon": lon,
            "lat": lat, "licence": "CC0-1.0", "retrieved_at": NOW, "content_hash": _h("doc", k, lon, lat)}


def _catalogue(tmp_path: Path, docs: list[dict[str, Any]], patches: list[dict[str, Any]]) -> Any:
    con = open_catalog(":memory:")
    stage(docs, table="documents", staging_dir=tmp_path)
    stage(patches, table="patches", staging_dir=tmp_path)
    merge(con, table="documents", staging_dir=tmp_path)
    merge(con, table="patches", staging_dir=tmp_path)
    return con


def test_patch_cells_keys_come_from_the_transform_and_skip_unaligned(tmp_path: Path) -> None:
    con = _catalogue(tmp_path, [_doc_row(0, 24.9, 60.2)],
                     [_patch_row("A", 2409, 41697), _patch_row("B", 2410, 41697, aligned=False)])
    assert con.execute("SELECT count(*) FROM patch_cells").fetchone() == (0,)  # an index: empty until refreshed
    assert refresh_grid_index(con)["patch_cells"] == 1
    rows = con.execute("SELECT patch_id, grid, cell FROM patch_cells").fetchall()
    assert rows == [("A", f"{CRS}:160.0", 2409 * CELL_SCALE + 41697)]
    (g,) = grids(con)
    assert (g.crs, g.cell_m) == (CRS, CELL_M) and g.minlon < 24.937 < g.maxlon and g.minlat < 60.165 < g.maxlat


def test_grid_pairs_equal_independent_cells_and_geometry(tmp_path: Path) -> None:
    rng = random.Random(7)
    base = cell_of(24.94, 60.17, CELL_M)
    cells = [(base.i + di, base.j + dj) for di in range(-3, 4) for dj in range(-3, 4) if rng.random() < 0.6]
    patches = [_patch_row(f"p{i}_{j}", i, j) for i, j in cells]
    patches.append(_patch_row("offgrid", base.i + 5, base.j, aligned=False))
    x0, y0 = from_lonlat(CRS, 24.94, 60.17)
    docs = []
    for k in range(400):
        x, y = x0 + rng.uniform(-700, 1100), y0 + rng.uniform(-700, 700)
        docs.append(_doc_row(k, *to_lonlat(CRS, x, y)))
    con = _catalogue(tmp_path, docs, patches)
    staging = tmp_path / "stg"
    pair_documents(con, staging_dir=staging, retrieved_at=NOW)
    merge(con, table="pairs", staging_dir=staging)
    got = set(con.execute("SELECT doc_id, patch_id FROM pairs").fetchall())
    # Independent expectation: pyproj cell of each document (pipelines/imagery/grid.cell_of) for grid patches ...
    by_cell = {(i, j): f"p{i}_{j}" for i, j in cells}
    want = set()
    for d in docs:
        c = cell_of(d["lon"], d["lat"], CELL_M)
        if (c.i, c.j) in by_cell:
            want.add((d["doc_id"], by_cell[(c.i, c.j)]))
    # ... and the geometry for the off-grid patch.
    want |= set(con.execute("SELECT d.doc_id, p.patch_id FROM documents d JOIN patches p "
                            "ON ST_Intersects(p.geom, d.geom) WHERE p.patch_id = 'offgrid'").fetchall())
    assert any(p == "offgrid" for _, p in want) and len(want) > 100
    assert got == want
    # The geometric join agrees too (random points are not within micrometres of an edge).
    geo = set(con.execute("SELECT d.doc_id, p.patch_id FROM documents d JOIN patches p "
                          "ON ST_Intersects(p.geom, d.geom)").fetchall())
    assert geo == got


def test_cells_are_half_open_and_refresh_is_idempotent(tmp_path: Path) -> None:
    i, j = 2409, 41697
    west_edge = to_lonlat(CRS, i * CELL_M, (j + 0.5) * CELL_M)  # on the shared edge of cells (i-1, j) and (i, j)
    con = _catalogue(tmp_path, [_doc_row(0, *west_edge), _doc_row(1, 10.0, 50.0)],
                     [_patch_row("W", i - 1, j), _patch_row("E", i, j)])
    first = refresh_grid_index(con)
    # the far document is outside every grid's envelope
    assert first == {"grids": 1, "patch_cells": 2, "document_cells": 1}
    assert refresh_grid_index(con) == first
    staging = tmp_path / "stg"
    pair_documents(con, staging_dir=staging, retrieved_at=NOW)
    merge(con, table="pairs", staging_dir=staging)
    pairs = con.execute("SELECT doc_id, patch_id FROM pairs").fetchall()
    # x = i * cell_m exactly maps to cell i (floor), up to the reprojection round trip of the edge point itself
    assert len(pairs) == 1 and pairs[0][0] == "d0" and pairs[0][1] in {"W", "E"}
