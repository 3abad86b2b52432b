"""Geotagged Wikipedia articles of an area (MediaWiki ``list=geosearch`` tiles, then details) as documents rows.

The bbox is covered by square tiles whose circumscribed circle has radius <= ``radius_m`` (<= 10 km, the GeoData
limit); a tile that comes back full (``gslimit`` results) is split in four and searched again, so dense areas are
not truncated. Results outside the bbox are dropped, pages are deduplicated by page id, and their lead extracts,
primary coordinates, Wikidata ids and revision ids are fetched 50 at a time.
"""

from __future__ import annotations

import math
import re
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.harvest._common import BBox, document_row, validate_bbox
from georeset.pipelines.harvest.mediawiki import MediaWikiClient, check_user_agent

__all__ = ["WIKIPEDIA_LICENCE", "Tile", "harvest_wikipedia", "iter_wikipedia", "page_document", "tiles_for_bbox"]

WIKIPEDIA_LICENCE = "CC-BY-SA-4.0"
_KM_PER_DEG_LAT = 110.574


@dataclass(frozen=True)
class Tile:
    """A square part of the bbox, searched as the circle around it."""

    minlon: float
    minlat: float
    maxlon: float
    maxlat: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.minlon + self.maxlon) / 2, (self.minlat + self.maxlat) / 2

    @property
    def radius_m(self) -> float:
        lon, lat = self.centre
        dx = (self.maxlon - self.minlon) / 2 * 111.320 * math.cos(math.radians(lat))
        dy = (self.maxlat - self.minlat) / 2 * _KM_PER_DEG_LAT
        return math.hypot(dx, dy) * 1000.0

    def split(self) -> list[Tile]:
        lon, lat = self.centre
        return [Tile(self.minlon, self.minlat, lon, lat), Tile(lon, self.minlat, self.maxlon, lat),
                Tile(self.minlon, lat, lon, self.maxlat), Tile(lon, lat, self.maxlon, self.maxlat)]


def tiles_for_bbox(bbox: BBox, radius_m: float = 10000.0) -> list[Tile]:
    """Tiles covering ``bbox`` whose search circles have radius <= ``radius_m``."""
    minlon, minlat, maxlon, maxlat = validate_bbox(bbox)
    side_km = radius_m / 1000.0 * math.sqrt(2) * 0.999
    mid = math.radians((minlat + maxlat) / 2)
    width_km = (maxlon - minlon) * 111.320 * max(math.cos(mid), math.cos(math.radians(max(abs(minlat), abs(maxlat)))))
    height_km = (maxlat - minlat) * _KM_PER_DEG_LAT
    nx, ny = max(1, math.ceil(width_km / side_km)), max(1, math.ceil(height_km / side_km))
    dlon, dlat = (maxlon - minlon) / nx, (maxlat - minlat) / ny
    return [Tile(minlon + i * dlon, minlat + j * dlat, minlon + (i + 1) * dlon, minlat + (j + 1) * dlat)
            for j in range(ny) for i in range(nx)]


def _search_area(client: MediaWikiClient, bbox: BBox, *, radius_m: float, gslimit: int, namespace: int,
                 progress: bool) -> dict[int, dict[str, Any]]:
    minlon, minlat, maxlon, maxlat = bbox
    pending = tiles_for_bbox(bbox, radius_m)
    found: dict[int, dict[str, Any]] = {}
    done = 0
    while pending:
        tile = pending.pop(0)
        lon, lat = tile.centre
        hits = client.geosearch(lat=lat, lon=lon, radius_m=max(10.0, min(10000.0, math.ceil(tile.radius_m))),
                                limit=gslimit, namespace=namespace)
        if len(hits) >= gslimit and tile.radius_m > 100:
            pending.extend(tile.split())
        for h in hits:
            if minlon <= float(h["lon"]) <= maxlon and minlat <= float(h["lat"]) <= maxlat:
                found.setdefault(int(h["pageid"]), h)
        done += 1
        if progress:
            print(f"geosearch tile {done} ({len(pending)} left): {len(found)} pages", file=sys.stderr)
    return found


def page_document(page: dict[str, Any], *, lang: str, retrieved_at: datetime,
                  fallback: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """documents row for one ``prop=extracts|coordinates|pageprops|info`` page (formatversion=2), or None."""
    title = str(page.get("title") or (fallback or {}).get("title") or "").strip()
    pid = page.get("pageid")
    if not title or pid is None:
        return None
    coords = [c for c in page.get("coordinates", []) if c.get("globe", "earth") == "earth"]
    primary = next((c for c in coords if c.get("primary")), coords[0] if coords else fallback)
    lat = float(primary["lat"]) if primary else None
    lon = float(primary["lon"]) if primary else None
    text = str(page.get("extract") or "").strip() or title
    url = page.get("fullurl") or f"https://{lang}.wikipedia.org/wiki/{urllib.parse.quote(title.replace(' ', '_'))}"
    tags = {"pageid": int(pid), "ns": page.get("ns", 0), "lastrevid": page.get("lastrevid"),
            "wikibase_item": (page.get("pageprops") or {}).get("wikibase_item")}
    return document_row(source="wikipedia", source_id=f"{lang}:{int(pid)}", title=title, text=text, lang=lang,
                        url=url, lon=lon, lat=lat, tags=tags, licence=WIKIPEDIA_LICENCE, retrieved_at=retrieved_at)


def iter_wikipedia(client: MediaWikiClient, *, bbox: BBox, lang: str, retrieved_at: datetime,
                   radius_m: float = 10000.0, gslimit: int = 500, namespace: int = 0, limit: int | None = None,
                   progress: bool = False) -> Iterator[dict[str, Any]]:
    found = _search_area(client, validate_bbox(bbox), radius_m=radius_m, gslimit=gslimit, namespace=namespace,
                         progress=progress)
    ids = list(found)[:limit] if limit is not None else list(found)
    for page in client.pages(ids):
        row = page_document(page, lang=lang, retrieved_at=retrieved_at, fallback=found.get(int(page["pageid"])))
        if row is not None:
            yield row


def harvest_wikipedia(
    *,
    api_url: str | None = None,
    bbox: BBox,
    user_agent: str,
    lang: str = "en",
    retrieved_at: datetime,
    radius_m: float = 10000.0,
    gslimit: int = 500,
    namespace: int = 0,
    limit: int | None = None,
    client: MediaWikiClient | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Geotagged articles in ``bbox`` (minlon,minlat,maxlon,maxlat) as documents rows
    (doc_id ``wikipedia:<lang>:<pageid>``, licence CC-BY-SA-4.0).

    ``api_url`` defaults to ``https://<lang>.wikipedia.org/w/api.php``. ``user_agent`` must name the tool,
    its version and a contact; a missing or generic one raises :class:`InputError`. ``client`` overrides the
    transport settings (timeouts, retries, pacing).
    """
    if not 10 <= radius_m <= 10000:
        raise InputError(f"radius_m={radius_m} is outside 10..10000 m", hint="use at most 10000 (the GeoData limit)")
    if not re.fullmatch(r"[a-z][a-z0-9\-]{1,15}", lang or ""):
        raise InputError(f"invalid Wikipedia language code {lang!r}", hint="pass e.g. --lang en")
    check_user_agent(user_agent)
    if client is None:
        client = MediaWikiClient(api_url or f"https://{lang}.wikipedia.org/w/api.php", user_agent=user_agent,
                                 min_interval_s=0.1)
    return list(iter_wikipedia(client, bbox=bbox, lang=lang, retrieved_at=retrieved_at, radius_m=radius_m,
                               gslimit=gslimit, namespace=namespace, limit=limit, progress=progress))
