"""Grid keys: pairing documents with patches by an integer equi-join instead of a geometric join.

Patches are cells of a projected grid (``patch_cells`` view, migration 0003): for grid ``'<crs>:<cell_m>'`` the
cell of a point (x, y) in that CRS is ``floor(x / cell_m) * 2^32 + floor(y / cell_m)``. A point lies in a patch
exactly when its key equals the patch's key, so "documents inside patch footprints" becomes a hash join on one
BIGINT, with no candidate set to refine. This is the catalogue's spatial index for pairing: ``patch_cells`` holds
the key of every grid-aligned patch (derived from its transform by the ``patch_grid_keys`` view) and
``document_cells`` each document's key in every grid that has patches around it. Both are rebuilt from scratch by
:func:`refresh_grid_index` (one transaction, so readers see the old or the new index) whenever pairing runs.

Semantics, compared with ``ST_Intersects(footprint, point)`` on the EPSG:4326 footprint: cells are half-open
(a point exactly on a west or south edge belongs to this cell, on an east or north edge to the next one), and the
test is done in the grid's own CRS, where the patch is an exact square; the EPSG:4326 footprint joins reprojected
corners with straight lines, which departs from it by micrometres along the edges. Points in that sliver can differ
(``bench/catalog.py`` counts them: 2 of ~800k pairs at 1M documents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

__all__ = ["CELL_SCALE", "Grid", "cell_key_sql", "grids", "point_cells_sql", "refresh_grid_index"]

CELL_SCALE = 4294967296  # 2^32: key = i * CELL_SCALE + j, injective for |j| < 2^31


@dataclass(frozen=True)
class Grid:
    """One patch grid in use: its name, CRS, cell size and the lon/lat envelope of its patches (padded)."""

    grid: str
    crs: str
    cell_m: float
    minlon: float
    minlat: float
    maxlon: float
    maxlat: float


def grids(con: duckdb.DuckDBPyConnection) -> list[Grid]:
    """The grids that hold patches (from ``patch_cells``), each with the lon/lat envelope of its patch centres
    widened by one cell diagonal (so every footprint lies inside), plus 0.001 degree."""
    rows = con.execute(
        """SELECT c.grid, any_value(c.crs), any_value(c.cell_m), min(p.lon), min(p.lat), max(p.lon), max(p.lat)
           FROM patch_cells c JOIN patches p USING (patch_id) GROUP BY c.grid ORDER BY c.grid"""
    ).fetchall()
    out = []
    for g, crs, cell_m, x0, y0, x1, y1 in rows:
        coslat = max(math.cos(math.radians(max(abs(float(y0)), abs(float(y1))))), 0.01)
        pad_lat = float(cell_m) * 1.5 / 110_574 + 0.001
        pad_lon = float(cell_m) * 1.5 / (111_320 * coslat) + 0.001
        out.append(Grid(str(g), str(crs), float(cell_m), max(-180.0, float(x0) - pad_lon),
                        max(-90.0, float(y0) - pad_lat), min(180.0, float(x1) + pad_lon), min(90.0, float(y1) + pad_lat)))
    return out


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def cell_key_sql(lon: str, lat: str, grid: Grid) -> str:
    """SQL expression: the BIGINT key of the point (lon, lat) in ``grid`` (CRS constant, so PROJ is set up once)."""
    p = f"ST_Transform(ST_Point({lon}, {lat}), 'EPSG:4326', {_q(grid.crs)}, always_xy := true)"
    return (f"(floor(ST_X({p}) / {grid.cell_m!r})::BIGINT * {CELL_SCALE} "
            f"+ floor(ST_Y({p}) / {grid.cell_m!r})::BIGINT)")


def point_cells_sql(relation: str, id_col: str, grid_list: list[Grid], *, lon: str = "lon", lat: str = "lat") -> str:
    """SQL yielding ``(<id_col>, grid, cell)`` for the points of ``relation`` inside each grid's envelope."""
    if not grid_list:
        return f"SELECT NULL::VARCHAR AS {id_col}, NULL::VARCHAR AS grid, NULL::BIGINT AS cell WHERE false"
    parts = [
        f"SELECT {id_col}, {_q(g.grid)} AS grid, {cell_key_sql(lon, lat, g)} AS cell FROM {relation} "
        f"WHERE {lon} BETWEEN {g.minlon!r} AND {g.maxlon!r} AND {lat} BETWEEN {g.minlat!r} AND {g.maxlat!r}"
        for g in grid_list
    ]
    return "\nUNION ALL\n".join(parts)


DOC_POINTS = ("(SELECT doc_id, coalesce(lon, ST_X(ST_Centroid(geom))) AS lon, "
              "coalesce(lat, ST_Y(ST_Centroid(geom))) AS lat FROM documents "
              "WHERE lon IS NOT NULL OR geom IS NOT NULL)")


def refresh_grid_index(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rebuild ``patch_cells`` and ``document_cells`` from the current patches and documents, atomically;
    returns their counts."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM patch_cells")
        con.execute("INSERT INTO patch_cells SELECT patch_id, crs, cell_m, grid, cell FROM patch_grid_keys")
        grid_list = grids(con)
        con.execute("DELETE FROM document_cells")
        if grid_list:
            con.execute("INSERT INTO document_cells SELECT * FROM ("
                        + point_cells_sql(DOC_POINTS, "doc_id", grid_list) + ") WHERE cell IS NOT NULL")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    row = con.execute("SELECT (SELECT count(*) FROM patch_cells), (SELECT count(*) FROM document_cells)").fetchone()
    assert row is not None
    return {"grids": len(grid_list), "patch_cells": int(row[0]), "document_cells": int(row[1])}
