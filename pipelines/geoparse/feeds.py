"""Per-feed points for the geoparse stage (``georeset geoparse run --feed-points``).

A harvester that reads known feeds knows where each one is (a local newspaper writes about its town): that point,
given to the geoparser as the document's own point (the ``(text, lon, lat)`` input of
:meth:`Geoparser.parse_many`), settles the names that are ambiguous worldwide ("Paris" in a Texan paper). It is an
explicit input of the stage, never a property of the text; a document with a point of its own keeps it.

A document's feed key is the host of its URL without a leading ``www.`` ("parisnews.com"), else its ``source``
("osm", "wikipedia", "file"). The points come either from a file (:func:`load_feed_points`: CSV with a header
``feed,lon,lat``, or JSON ``{"feed": [lon, lat]}`` / ``{"feed": {"lon": .., "lat": ..}}``) or from the catalogue's
own earlier output (:func:`feed_points_from_catalog`: the toponyms the geoparser asserted in each feed's
documents, through :func:`georeset.pipelines.geoparse.sources.points_from_places`: a feed gets the point of the
densest cluster of its places when it looks local, no annotation needed).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from georeset.errors import InputError

__all__ = ["feed_key", "feed_points_from_catalog", "load_feed_points", "point_for"]

FeedPoints = dict[str, tuple[float, float]]


def feed_key(source: str | None, url: str | None) -> str | None:
    """The host of ``url`` (lower case, without ``www.``), else ``source``, else None."""
    if url:
        try:
            host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
        except ValueError:
            host = ""
        if host.startswith("www."):
            host = host[4:]
        if host:
            return host
    return source or None


def point_for(points: FeedPoints, source: str | None, url: str | None) -> tuple[float | None, float | None]:
    """The point of the document's feed, or ``(None, None)``."""
    key = feed_key(source, url)
    p = points.get(key) if key else None
    return p if p is not None else (None, None)


def _point(feed: str, lon: Any, lat: Any, where: str) -> tuple[float, float]:
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError):
        raise InputError(f"{where}: feed {feed!r} has no numeric lon/lat ({lon!r}, {lat!r})") from None
    if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
        raise InputError(f"{where}: feed {feed!r} has lon/lat out of range ({x}, {y})")
    return x, y


def load_feed_points(path: Path | str) -> FeedPoints:
    """``{feed key: (lon, lat)}`` from a CSV (header ``feed,lon,lat``) or JSON file; keys are matched as
    :func:`feed_key` writes them (a URL or host given as key is reduced to its host)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"feed points file {p} does not exist")
    out: FeedPoints = {}
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{p}: expected an object {{feed: [lon, lat]}}")
        for feed, v in data.items():
            lon, lat = (v.get("lon"), v.get("lat")) if isinstance(v, dict) else (
                (v[0], v[1]) if isinstance(v, list) and len(v) == 2 else (None, None))
            out[_key(str(feed))] = _point(str(feed), lon, lat, str(p))
        return out
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"feed", "lon", "lat"} <= set(reader.fieldnames):
            raise InputError(f"{p}: expected a CSV header with feed, lon, lat (got {reader.fieldnames})")
        for i, row in enumerate(reader, start=2):
            feed = (row.get("feed") or "").strip()
            if not feed:
                raise InputError(f"{p}:{i}: empty feed")
            out[_key(feed)] = _point(feed, row.get("lon"), row.get("lat"), f"{p}:{i}")
    return out


def _key(feed: str) -> str:
    """A key as written in a points file: a URL or host becomes its host; anything else (a source name) stays."""
    return (feed_key(None, feed) or feed) if ("." in feed or "/" in feed) else feed


def feed_points_from_catalog(con: Any, *, threshold: float | None = None) -> FeedPoints:
    """Points learned from the toponyms already in the catalogue: per feed, the asserted toponyms (a gazetteer
    place, ``kind = 'toponym'``, probability >= ``threshold``, default the shipped commit threshold) of its
    documents, reduced by :func:`sources.points_from_places` (only feeds that look local get a point)."""
    from georeset.pipelines.geoparse import commit
    from georeset.pipelines.geoparse.sources import points_from_places

    t = commit.COMMIT_THRESHOLD if threshold is None else threshold
    rows = con.execute(
        "SELECT d.doc_id, d.source, d.url, tp.lon, tp.lat FROM toponyms tp JOIN documents d USING (doc_id) "
        "WHERE tp.place_id IS NOT NULL AND tp.lon IS NOT NULL AND tp.lat IS NOT NULL "
        "AND coalesce(tp.kind, 'toponym') = 'toponym' AND tp.probability >= ? ORDER BY d.doc_id, tp.start_char",
        [t]).fetchall()
    by_doc: dict[str, tuple[str | None, list[tuple[float, float]]]] = {}
    for doc_id, source, url, lon, lat in rows:
        by_doc.setdefault(doc_id, (feed_key(source, url), []))[1].append((float(lon), float(lat)))
    learned = points_from_places(by_doc.values())
    return {k: (sp.lon, sp.lat) for k, sp in learned.items()}
