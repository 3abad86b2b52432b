"""GeoParquet export of any catalogue table or view.

:func:`export_geoparquet` writes GeoParquet 1.1: every ``GEOMETRY`` column as WKB (``BLOB``), the file-level
``geo`` metadata (``version``, ``primary_column``, per column ``encoding: WKB``, ``geometry_types``, ``bbox`` and
``crs``: OGC:CRS84 as PROJJSON, i.e. EPSG:4326 with longitude first), streamed in record batches so memory stays
bounded.
A relation without a geometry column but with ``lon``/``lat`` (e.g. ``resolved_toponyms``) gets a point column
``geometry`` built from them. GeoPandas reads the result with ``geopandas.read_parquet``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from georeset.errors import InputError

__all__ = ["relations", "geometry_columns", "export_geoparquet"]

# EPSG:4326 with longitude first (OGC:CRS84) is the GeoParquet default when "crs" is omitted; we state it.
_CRS84 = {
    "$schema": "https://proj.org/schemas/v0.7/projjson.schema.json",
    "type": "GeographicCRS",
    "name": "WGS 84 (CRS84)",
    "datum_ensemble": {
        "name": "World Geodetic System 1984 ensemble",
        "members": [{"name": "World Geodetic System 1984 (Transit)"}, {"name": "World Geodetic System 1984 (G730)"},
                    {"name": "World Geodetic System 1984 (G873)"}, {"name": "World Geodetic System 1984 (G1150)"},
                    {"name": "World Geodetic System 1984 (G1674)"}, {"name": "World Geodetic System 1984 (G1762)"},
                    {"name": "World Geodetic System 1984 (G2139)"}],
        "ellipsoid": {"name": "WGS 84", "semi_major_axis": 6378137, "inverse_flattening": 298.257223563},
        "accuracy": "2.0",
    },
    "coordinate_system": {
        "subtype": "ellipsoidal",
        "axis": [{"name": "Geodetic longitude", "abbreviation": "Lon", "direction": "east", "unit": "degree"},
                 {"name": "Geodetic latitude", "abbreviation": "Lat", "direction": "north", "unit": "degree"}],
    },
    "scope": "Not known.",
    "area": "World.",
    "bbox": {"south_latitude": -90, "west_longitude": -180, "north_latitude": 90, "east_longitude": 180},
    "id": {"authority": "OGC", "code": "CRS84"},
}


def relations(con: Any) -> list[str]:
    """Names of the tables and views an analyst can export."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]


def geometry_columns(con: Any, name: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? "
        "AND data_type = 'GEOMETRY' ORDER BY ordinal_position", [name]).fetchall()]


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


_GEOM_TYPES = {"POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon", "MULTIPOINT": "MultiPoint",
               "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon",
               "GEOMETRYCOLLECTION": "GeometryCollection"}


def export_geoparquet(db: Path | str, *, view: str, out: Path, geometry: str | None = None,
                      batch_rows: int = 65536, timeout_s: float = 600.0) -> dict[str, Any]:
    """Write ``view`` (table or view) to ``out`` as GeoParquet; returns ``{"rows", "out", "geometry_columns"}``.

    Reads committed data only (the published snapshot through the analyst sandbox, so a running writer does not
    block it); the file is written by pyarrow, never by DuckDB; ``timeout_s`` bounds the whole read.
    """
    from georeset.data_catalog.sandbox import analyst_connection

    ac = analyst_connection(db, timeout_s=timeout_s)
    con = ac.con
    try:
        with ac.guard():
            names = relations(con)
            if view not in names:
                raise InputError(f"--view {view!r} is not a table or view of the catalogue",
                                 hint=f"use one of: {', '.join(names)}")
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? "
                "ORDER BY ordinal_position", [view]).fetchall()]
            geoms = geometry_columns(con, view)
            src = _q(view)
            if not geoms:
                if "lon" in cols and "lat" in cols:
                    src = f"(SELECT *, CASE WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE ST_Point(lon, lat) END " \
                          f"AS geometry FROM {_q(view)})"
                    cols, geoms = [*cols, "geometry"], ["geometry"]
                else:
                    raise InputError(f"{view!r} has no GEOMETRY column and no lon/lat",
                                     hint="export it with georeset sql --format parquet instead")
            primary = geometry or geoms[0]
            if primary not in geoms:
                raise InputError(f"--geometry {primary!r} is not a geometry column of {view!r}", hint=f"use {geoms}")
            meta_cols: dict[str, Any] = {}
            for g in geoms:
                row = con.execute(
                    f"SELECT min(ST_XMin({_q(g)})), min(ST_YMin({_q(g)})), max(ST_XMax({_q(g)})), max(ST_YMax({_q(g)})), "
                    f"list(DISTINCT ST_GeometryType({_q(g)})::VARCHAR) FILTER (WHERE {_q(g)} IS NOT NULL) FROM {src}"
                ).fetchone()
                assert row is not None
                types = sorted({_GEOM_TYPES.get(str(t).upper(), str(t).title()) for t in (row[4] or [])})
                meta_cols[g] = {"encoding": "WKB", "geometry_types": types, "crs": _CRS84, "edges": "planar"}
                if row[0] is not None:
                    meta_cols[g]["bbox"] = [float(row[0]), float(row[1]), float(row[2]), float(row[3])]
            select = ", ".join(f"ST_AsWKB({_q(c)}) AS {_q(c)}" if c in geoms else _q(c) for c in cols)
            reader = con.execute(f"SELECT {select} FROM {src}").to_arrow_reader(batch_rows)
            geo = {"version": "1.1.0", "primary_column": primary, "columns": meta_cols}
            schema = reader.schema
            fields = [pa.field(f.name, pa.binary()) if f.name in geoms else f for f in schema]
            schema = pa.schema(fields, metadata={**(schema.metadata or {}), b"geo": json.dumps(geo).encode()})
            out = Path(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            n = 0
            with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
                for batch in reader:
                    arrays = [batch.column(i).cast(pa.binary()) if f.name in geoms else batch.column(i)
                              for i, f in enumerate(batch.schema)]
                    w.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                    n += batch.num_rows
            os.replace(tmp, out)
            return {"view": view, "rows": n, "out": str(out), "geometry_columns": geoms, "primary_column": primary}
    finally:
        ac.close()
