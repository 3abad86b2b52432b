"""The area a harvest covers: a bbox, a GeoJSON polygon file, or a named country.

Why a class: the tile planner needs a bbox, the result filter needs the exact shape, and the resumable harvest
needs a canonical text of the area for its progress key (the same area always maps to the same saved progress).

Named regions are resolved offline from the country outlines that ``countryinfo`` ships (English names and ISO
codes, e.g. ``Finland``, ``FI``, ``FIN``). Admin areas below the country level are not in any offline source this
project carries, so they are refused with a hint to pass ``--bbox`` or ``--area FILE`` instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.harvest._common import BBox, validate_bbox

__all__ = ["Area", "area_from_bbox", "area_from_geojson", "area_from_region", "resolve_area"]

_AREA_HINT = ("pass --area a GeoJSON file holding a Polygon or MultiPolygon (a geometry, a Feature or a "
              "FeatureCollection) in EPSG:4326 lon/lat order")


@dataclass(frozen=True)
class Area:
    """``bbox`` bounds the search; ``shape`` (a shapely geometry, or None for a plain bbox) decides what is kept."""

    bbox: BBox
    label: str
    key: str
    shape: Any = field(default=None, compare=False, repr=False)

    def contains(self, lon: float, lat: float) -> bool:
        """Whether a point lies inside the area (on the boundary counts as inside)."""
        minlon, minlat, maxlon, maxlat = self.bbox
        if not (minlon <= lon <= maxlon and minlat <= lat <= maxlat):
            return False
        if self.shape is None:
            return True
        import shapely

        return bool(shapely.intersects_xy(self.shape, lon, lat))

    def touches(self, box: BBox) -> bool:
        """Whether a tile box overlaps the area (tiles that do not are never searched)."""
        if self.shape is None:
            minlon, minlat, maxlon, maxlat = self.bbox
            return box[0] <= maxlon and box[2] >= minlon and box[1] <= maxlat and box[3] >= minlat
        import shapely

        return bool(shapely.intersects(self.shape, shapely.box(*box)))


def area_from_bbox(bbox: object) -> Area:
    box = validate_bbox(bbox)
    return Area(bbox=box, label=f"bbox {','.join(f'{v:g}' for v in box)}", key=f"bbox:{json.dumps(list(box))}")


def _from_shape(shape: Any, *, label: str) -> Area:
    import shapely

    if shape.is_empty or shape.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputError(f"{label}: the geometry is {shape.geom_type}, not a non-empty (Multi)Polygon", hint=_AREA_HINT)
    if not shape.is_valid:
        shape = shapely.make_valid(shape)
    shapely.prepare(shape)
    box = validate_bbox(shape.bounds, what=f"bounds of {label}")
    digest = hashlib.sha256(shapely.to_wkb(shape, output_dimension=2).hex().encode()).hexdigest()[:20]
    return Area(bbox=box, label=label, key=f"shape:{digest}", shape=shape)


def area_from_geojson(path: Path) -> Area:
    """A polygon area from a GeoJSON file (geometries of a FeatureCollection are unioned)."""
    import shapely
    from shapely.geometry import shape as to_shape

    path = Path(path)
    if not path.is_file():
        raise InputError(f"--area file {path} does not exist", hint=_AREA_HINT)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"--area file {path} is not valid JSON: {exc}", hint=_AREA_HINT) from exc
    if not isinstance(doc, dict):
        raise InputError(f"--area file {path} is not a GeoJSON object", hint=_AREA_HINT)
    if doc.get("type") == "FeatureCollection":
        geoms = [f.get("geometry") for f in doc.get("features", []) if isinstance(f, dict)]
    elif doc.get("type") == "Feature":
        geoms = [doc.get("geometry")]
    else:
        geoms = [doc]
    try:
        shapes = [to_shape(g) for g in geoms if g]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"--area file {path} holds an invalid GeoJSON geometry: {exc}", hint=_AREA_HINT) from exc
    if not shapes:
        raise InputError(f"--area file {path} holds no geometry", hint=_AREA_HINT)
    return _from_shape(shapely.union_all(shapes), label=f"area {path.name}")


def area_from_region(name: str) -> Area:
    """A country outline (``countryinfo``), by English name or ISO 3166 alpha-2/alpha-3 code."""
    from countryinfo import CountryInfo  # type: ignore[import-untyped]
    from shapely.geometry import shape as to_shape

    hint = ("name a country (e.g. --region Finland, --region FI); for a smaller region pass --bbox "
            "minlon,minlat,maxlon,maxlat or --area FILE.geojson")
    query = (name or "").strip()
    if not query:
        raise InputError("--region is empty", hint=hint)
    try:
        found = CountryInfo(query).geo_json()  # names, ISO alpha-2/alpha-3 codes, native names
    except (LookupError, ValueError, TypeError):
        found = None
    if not found or not found.get("features"):
        raise InputError(f"--region {name!r} is not a country known offline", hint=hint)
    import shapely

    shapes = [to_shape(f["geometry"]) for f in found["features"] if f.get("geometry")]
    return _from_shape(shapely.union_all(shapes), label=f"region {query}")


def resolve_area(*, bbox: object | None = None, area_file: Path | None = None, region: str | None = None) -> Area:
    """Exactly one of ``bbox``, ``area_file``, ``region``; refuses none or several with a hint."""
    given = [n for n, v in (("--bbox", bbox), ("--area", area_file), ("--region", region)) if v not in (None, "")]
    if len(given) != 1:
        raise InputError(f"give exactly one of --bbox, --area, --region (got {', '.join(given) or 'none'})",
                         hint="e.g. --bbox 24.90,60.15,24.98,60.19 or --area helsinki.geojson or --region Finland")
    if bbox not in (None, ""):
        return area_from_bbox(bbox)
    if area_file is not None:
        return area_from_geojson(Path(area_file))
    return area_from_region(str(region))
