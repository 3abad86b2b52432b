"""Geotagged Wikipedia articles of an area (MediaWiki ``list=geosearch`` tiles, then details) as documents rows.

The area's bbox is covered by square tiles whose circumscribed circle has radius <= ``radius_m`` (<= 10 km, the
GeoData limit); tiles that miss the area's polygon are skipped, and a tile that comes back full (``gslimit``
results) is split in four and searched again, so dense areas are not truncated. Results outside the area are
dropped, pages are deduplicated by page id, and their lead extracts, primary coordinates, Wikidata ids and revision
ids are fetched 50 at a time. With a state directory the harvest is resumable and incremental
(:mod:`georeset.pipelines.harvest.progress`). The requests go through ``wikipedia-api``
(:class:`~georeset.pipelines.harvest.mediawiki.MediaWikiClient` is a ``wikipediaapi.Wikipedia``).
"""

from __future__ import annotations

import math
import re
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.harvest._common import BBox, document_row, validate_bbox
from georeset.pipelines.harvest.area import Area, area_from_bbox
from georeset.pipelines.harvest.mediawiki import MediaWikiClient, check_user_agent
from georeset.pipelines.harvest.progress import HarvestProgress

__all__ = ["WIKIPEDIA_LICENCE", "Tile", "api_url_for", "check_lang", "harvest_wikipedia", "page_document",
           "run_wikipedia_harvest", "tiles_for_bbox"]

WIKIPEDIA_LICENCE = "CC-BY-SA-4.0"
_KM_PER_DEG_LAT = 110.574
# The tile radius is a flat-earth estimate (about 1 % short near 60 degrees, where a degree of latitude is 111.4 km):
# tiles are planned 2 % smaller and searched with a 2 % larger circle, so their corners are always covered.
_MARGIN = 1.02


@dataclass(frozen=True)
class Tile:
    """A square part of the bbox, searched as the circle around it."""

    minlon: float
    minlat: float
    maxlon: float
    maxlat: float

    @property
    def box(self) -> BBox:
        return self.minlon, self.minlat, self.maxlon, self.maxlat

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
    side_km = radius_m / 1000.0 * math.sqrt(2) / _MARGIN
    mid = math.radians((minlat + maxlat) / 2)
    width_km = (maxlon - minlon) * 111.320 * max(math.cos(mid), math.cos(math.radians(max(abs(minlat), abs(maxlat)))))
    height_km = (maxlat - minlat) * _KM_PER_DEG_LAT
    nx, ny = max(1, math.ceil(width_km / side_km)), max(1, math.ceil(height_km / side_km))
    dlon, dlat = (maxlon - minlon) / nx, (maxlat - minlat) / ny
    return [Tile(minlon + i * dlon, minlat + j * dlat, minlon + (i + 1) * dlon, minlat + (j + 1) * dlat)
            for j in range(ny) for i in range(nx)]


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


Sink = Callable[[list[dict[str, Any]], str], None]
_CHECK_CHUNK = 500  # page ids per journal record of the revision check (10 prop=info calls)
_MISSING = -1  # a known page that prop=info no longer finds (deleted): not fetched


def check_lang(lang: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9\-]{1,15}", lang or ""):
        raise InputError(f"invalid Wikipedia language code {lang!r}", hint="pass e.g. --lang en --lang de, or --lang en,de")
    return lang


def api_url_for(lang: str, api_url: str | None = None) -> str:
    """The endpoint of one language: ``api_url`` with ``{lang}`` filled in, or the Wikipedia of ``lang``."""
    if not api_url:
        return f"https://{lang}.wikipedia.org/w/api.php"
    return api_url.replace("{lang}", lang)


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _search(client: MediaWikiClient, area: Area, prog: HarvestProgress, *, radius_m: float, gslimit: int,
            namespace: int, progress: bool) -> int:
    """Search the pending tiles, recording each one; returns the number of tiles searched now."""
    if prog.pending is None:
        prog.plan([t.box for t in tiles_for_bbox(area.bbox, radius_m) if area.touches(t.box)])
    assert prog.pending is not None
    searched = 0
    while prog.pending:
        tile = Tile(*prog.pending[0])
        lon, lat = tile.centre
        hits = client.geosearch_around(lat=lat, lon=lon, radius_m=max(10.0, min(10000.0, math.ceil(tile.radius_m * _MARGIN))),
                                limit=gslimit, namespace=namespace)
        split = [t for t in tile.split() if area.touches(t.box)] if len(hits) >= gslimit and tile.radius_m > 100 else []
        keep = [h for h in hits if int(h["pageid"]) not in prog.found and area.contains(float(h["lon"]), float(h["lat"]))]
        prog.tile_done(tile.box, keep, [t.box for t in split])
        searched += 1
        _say(progress, f"[{prog.params['lang']}] geosearch tile {len(prog.tiles_done)} ({len(prog.pending)} left): "
                       f"{len(prog.found)} pages")
    return searched


def run_wikipedia_harvest(
    *,
    client: MediaWikiClient,
    area: Area,
    lang: str,
    retrieved_at: datetime,
    sink: Sink,
    state_dir: Path | None = None,
    radius_m: float = 10000.0,
    gslimit: int = 500,
    namespace: int = 0,
    limit: int | None = None,
    batch_pages: int = 500,
    progress: bool = False,
) -> dict[str, Any]:
    """Harvest one language over ``area``: resumable (with ``state_dir``) and incremental by revision.

    Every searched tile and every staged batch is recorded under ``state_dir`` before the next one starts, so a
    run that stops (crash, Ctrl-C, the API giving up) resumes at the first unsearched tile / unfetched batch.
    Pages known from an earlier completed run are first checked with ``prop=info`` (50 ids a call); only new pages
    and pages whose ``lastrevid`` changed are fetched. Rows go to ``sink(rows, name)`` in batches of
    ``batch_pages`` (a multiple of 50), named ``wikipedia-<lang>-<key>-r<run>-b<batch>`` so a batch redone after a
    crash replaces its own staging file. Returns a summary dict.
    """
    check_lang(lang)
    if batch_pages < 50 or batch_pages % 50:
        raise InputError(f"batch_pages={batch_pages} is not a positive multiple of 50", hint="use e.g. 500")
    params = {"endpoint": client.api_url, "lang": lang, "area": area.key, "radius_m": radius_m, "gslimit": gslimit,
              "namespace": namespace, "limit": limit}
    prog = HarvestProgress(state_dir, params=params)
    requests_before = client.requests_made
    tiles_before = len(prog.tiles_done)
    if prog.resumed:
        _say(progress, f"[{lang}] resuming run {prog.run}: {tiles_before} tiles searched, {len(prog.fetched)} pages "
                       f"staged in {prog.batches} batches")
    searched = _search(client, area, prog, radius_m=radius_m, gslimit=gslimit, namespace=namespace,
                       progress=progress)
    ids = list(prog.found)[:limit] if limit is not None else list(prog.found)

    to_check = [p for p in ids if p in prog.known and p not in prog.checked]
    for i in range(0, len(to_check), _CHECK_CHUNK):
        chunk = to_check[i : i + _CHECK_CHUNK]
        revs = client.revisions(chunk)
        prog.revisions_checked({p: revs.get(p, _MISSING) for p in chunk})
        _say(progress, f"[{lang}] revisions checked: {min(i + _CHECK_CHUNK, len(to_check))}/{len(to_check)}")

    def wanted(p: int) -> bool:
        if p in prog.fetched:
            return False
        if p not in prog.known:
            return True
        cur = prog.checked.get(p)
        return cur != _MISSING and cur != prog.known[p]

    to_fetch = [p for p in ids if wanted(p)]
    new = sum(1 for p in ids if p not in prog.known)
    rows_staged = 0
    for i in range(0, len(to_fetch), batch_pages):
        chunk = to_fetch[i : i + batch_pages]
        rows, revs = [], dict.fromkeys(chunk)
        for page in client.page_details(chunk):
            pid = int(page["pageid"])
            row = page_document(page, lang=lang, retrieved_at=retrieved_at, fallback=prog.found.get(pid))
            if row is not None:
                rows.append(row)
                revs[pid] = int(page["lastrevid"]) if page.get("lastrevid") is not None else None
        name = f"wikipedia-{lang}-{prog.key}-r{prog.run:03d}-b{prog.batches:05d}"
        if rows:
            sink(rows, name)
        prog.batch_staged(revs, name=name)
        rows_staged += len(rows)
        _say(progress, f"[{lang}] pages fetched: {min(i + batch_pages, len(to_fetch))}/{len(to_fetch)}")
    unchanged = sum(1 for p in ids if p in prog.known and prog.checked.get(p) == prog.known[p])
    summary = {
        "lang": lang, "area": area.label, "key": prog.key, "run": prog.run, "resumed": prog.resumed,
        "tiles_searched": searched, "tiles_resumed": tiles_before, "pages_found": len(ids), "pages_new": new,
        "pages_unchanged": unchanged, "pages_fetched": len(prog.fetched), "rows_staged_now": rows_staged,
        "requests": client.requests_made - requests_before, "retries": client.retries,
    }
    prog.complete()
    return summary


def harvest_wikipedia(
    *,
    api_url: str | None = None,
    bbox: BBox | None = None,
    area: Area | None = None,
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
    """Geotagged articles in ``bbox`` (minlon,minlat,maxlon,maxlat) or ``area`` as documents rows, in memory
    (doc_id ``wikipedia:<lang>:<pageid>``, licence CC-BY-SA-4.0); no progress is kept (see
    :func:`run_wikipedia_harvest` for the resumable, incremental harvest).

    ``api_url`` defaults to ``https://<lang>.wikipedia.org/w/api.php`` (``{lang}`` in it is filled in).
    ``user_agent`` must name the tool, its version and a contact; a missing or generic one raises
    :class:`InputError`. ``client`` overrides the transport settings (timeouts, retries, pacing).
    """
    if not 10 <= radius_m <= 10000:
        raise InputError(f"radius_m={radius_m} is outside 10..10000 m", hint="use at most 10000 (the GeoData limit)")
    check_lang(lang)
    check_user_agent(user_agent)
    the_area = area if area is not None else area_from_bbox(bbox)
    own = client is None
    the_client = client or MediaWikiClient(api_url_for(lang, api_url), user_agent=user_agent, lang=lang,
                                           min_interval_s=0.1)
    out: list[dict[str, Any]] = []
    try:
        run_wikipedia_harvest(client=the_client, area=the_area, lang=lang, retrieved_at=retrieved_at,
                              sink=lambda rows, name: out.extend(rows), radius_m=radius_m, gslimit=gslimit,
                              namespace=namespace, limit=limit, progress=progress)
    finally:
        if own:
            the_client.close()
    return out
