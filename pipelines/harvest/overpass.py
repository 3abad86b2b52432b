"""Named OpenStreetMap features of a small area through the Overpass API, as the same rows as the .pbf path.

For areas up to a city district; a region or a country belongs to the ``.osm.pbf`` path
(:mod:`georeset.pipelines.harvest.osm`), which the Overpass operators ask bulk users to take. The etiquette follows
https://dev.overpass-api.de/overpass-doc/en/preface/commons.html: a descriptive User-Agent with a contact
(required; generic ones refused), one query at a time, a minimum interval between queries, a look at
``/api/status`` for a free slot before each query, ``Retry-After`` honoured on 429, exponential backoff with jitter
on 5xx (504 is the usual "server busy"), timeouts and ``runtime error`` remarks (a query the server cut off), and
truncated JSON retried, then a clear error.

Elements (``out geom`` or ``out center``) become :class:`~georeset.pipelines.harvest.osm.OsmFeature` and go through
the same row builder as the .pbf path, so ``doc_id`` (``osm:<type>/<id>``), captions, tags and links match and both
sources merge without duplicates.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from georeset.errors import InputError, ServiceUnavailableError
from georeset.pipelines.harvest.area import Area, area_from_bbox
from georeset.pipelines.harvest.mediawiki import _retry_after, check_user_agent
from georeset.pipelines.harvest.osm import OsmFeature, feature_rows

__all__ = ["DEFAULT_ENDPOINT", "FEATURE_KEYS", "OverpassClient", "build_query", "element_feature",
           "harvest_overpass"]

DEFAULT_ENDPOINT = "https://overpass-api.de/api/interpreter"
# The tag keys of the .pbf layers (POIs, buildings, leisure, land use, natural, places, historic, roads).
FEATURE_KEYS = ("amenity", "shop", "tourism", "building", "leisure", "landuse", "natural", "place", "historic",
                "highway")
_RETRY_STATUS = {429, 500, 502, 503, 504}
_LINEAR = {"highway", "barrier", "railway", "power", "waterway"}
_LINEAR_NATURAL = {"coastline", "tree_row", "cliff", "ridge", "arete"}


class OverpassClient:
    """Serial, paced, retrying client for one Overpass ``interpreter`` endpoint (``sleep``/``rng`` injectable)."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        user_agent: str,
        query_timeout_s: int = 180,
        max_retries: int = 5,
        backoff_s: float = 2.0,
        max_wait_s: float = 300.0,
        min_interval_s: float = 1.0,
        check_status: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not re.match(r"^https?://", endpoint or ""):
            raise InputError(f"invalid Overpass endpoint {endpoint!r}",
                             hint=f"pass the interpreter URL, e.g. --endpoint {DEFAULT_ENDPOINT}")
        from georeset import __version__

        self.endpoint = endpoint
        self.user_agent = f"{check_user_agent(user_agent, service='the Overpass API')} georeset/{__version__}"
        self.query_timeout_s = query_timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.min_interval_s = min_interval_s
        self.check_status = check_status and endpoint.rstrip("/").endswith("/interpreter")
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.requests_made = 0
        self.retries = 0
        self._last = float("-inf")

    # -- transport ---------------------------------------------------------------------------------------------
    def _http(self, url: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(url, data=data, headers=headers)
        self.requests_made += 1
        try:  # the HTTP timeout leaves the server its own query timeout plus a margin
            with urllib.request.urlopen(req, timeout=self.query_timeout_s + 30) as resp:  # noqa: S310 (scheme checked)
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def slot_wait(self) -> float:
        """Seconds until a query slot is free, from ``/api/status`` (0 when one is free or status is unknown)."""
        if not self.check_status:
            return 0.0
        url = self.endpoint.rstrip("/")[: -len("interpreter")] + "status"
        try:
            status, _, body = self._http(url)
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return 0.0
        text = body.decode("utf-8", "replace")
        if status != 200 or re.search(r"^\s*[1-9]\d* slots? available now", text, re.MULTILINE):
            return 0.0
        waits = [int(m) for m in re.findall(r"Slot available after: \S+, in (-?\d+) seconds", text)]
        return float(max(0, min(waits))) if waits else 0.0

    def _backoff(self, attempt: int) -> float:
        return min(self.max_wait_s, self.backoff_s * (2**attempt) * self.rng.uniform(0.75, 1.25))

    def query(self, ql: str) -> dict[str, Any]:
        """Run one Overpass QL query (``[out:json]``) with pacing and retries; returns the JSON body."""
        problem = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait_for = max(self.min_interval_s - (time.monotonic() - self._last), self.slot_wait())
            if wait_for > 0:
                self.sleep(min(self.max_wait_s, wait_for))
            self._last = time.monotonic()
            wait: float | None = None
            try:
                status, headers, body = self._http(self.endpoint, urllib.parse.urlencode({"data": ql}).encode())
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                problem = f"connection failed or timed out: {getattr(exc, 'reason', exc)}"
            else:
                if status in _RETRY_STATUS:
                    problem, wait = f"HTTP {status}", _retry_after(headers)
                    if status == 429 and wait is None:
                        wait = self.slot_wait() or None
                elif status != 200:
                    excerpt = re.sub(r"<[^>]+>", " ", body.decode("utf-8", "replace"))
                    raise ServiceUnavailableError(
                        f"Overpass API {self.endpoint} answered HTTP {status}: {' '.join(excerpt.split())[:300]}",
                        hint="check the endpoint URL (it ends in /api/interpreter) and the bbox")
                else:
                    try:
                        data = json.loads(body)
                    except ValueError:
                        if not body.lstrip().startswith(b"{"):
                            raise ServiceUnavailableError(
                                f"Overpass API {self.endpoint} returned something other than JSON",
                                hint="check that --endpoint is an Overpass interpreter URL") from None
                        problem = "truncated JSON"
                    else:
                        remark = str(data.get("remark") or "") if isinstance(data, dict) else ""
                        if not isinstance(data, dict) or not isinstance(data.get("elements"), list):
                            problem = "JSON without an 'elements' list"
                        elif "runtime error" in remark or "runtime remark" in remark:
                            problem = f"the server cut the query off ({remark.strip()[:200]})"
                        else:
                            return data
            if attempt == self.max_retries:
                break
            self.retries += 1
            self.sleep(min(self.max_wait_s, wait) if wait is not None else self._backoff(attempt))
        raise ServiceUnavailableError(
            f"Overpass API {self.endpoint} failed after {self.max_retries + 1} attempts ({problem})",
            hint="retry later, use a smaller --bbox, or harvest a .osm.pbf extract with `georeset harvest osm`",
        )


def build_query(area: Area, *, out: str = "geom", timeout_s: int = 180) -> str:
    """Named features with a defining key of the .pbf layers inside the area's bbox."""
    if out not in ("geom", "center"):
        raise InputError(f"Overpass output {out!r} is not known", hint="use --out geom or --out center")
    minlon, minlat, maxlon, maxlat = area.bbox
    keys = "|".join(FEATURE_KEYS)
    return (f"[out:json][timeout:{int(timeout_s)}];\n"
            f'nwr["name"][~"^({keys})$"~"."]({minlat},{minlon},{maxlat},{maxlon});\n'
            f"out {out};\n")


def _is_area(tags: dict[str, str]) -> bool:
    if tags.get("area") in ("yes", "no"):
        return tags["area"] == "yes"
    if any(k in tags for k in _LINEAR) or tags.get("natural") in _LINEAR_NATURAL:
        return False
    return True


def _line(points: Any) -> list[tuple[float, float]]:
    return [(float(p["lon"]), float(p["lat"])) for p in points or [] if p]


def _relation_geometry(el: dict[str, Any]) -> Any:
    from shapely.geometry import LineString, MultiLineString
    from shapely.ops import linemerge, polygonize, unary_union

    rings: dict[str, list[Any]] = {"outer": [], "inner": []}
    lines = []
    for m in el.get("members", []):
        pts = _line(m.get("geometry"))
        if m.get("type") == "way" and len(pts) >= 2:
            line = LineString(pts)
            lines.append(line)
            rings["inner" if m.get("role") == "inner" else "outer"].append(line)
    if el.get("tags", {}).get("type") in ("multipolygon", "boundary") and rings["outer"]:
        outer = unary_union(list(polygonize(linemerge(rings["outer"]))))
        if not outer.is_empty:
            if rings["inner"]:
                inner = unary_union(list(polygonize(linemerge(rings["inner"]))))
                outer = outer.difference(inner) if not inner.is_empty else outer
            return outer
    return MultiLineString(lines) if lines else None


def element_feature(el: dict[str, Any]) -> OsmFeature | None:
    """An :class:`OsmFeature` for one Overpass element (``out geom`` or ``out center``), or None."""
    from shapely.geometry import LineString, Point, Polygon

    tags = {str(k): str(v) for k, v in (el.get("tags") or {}).items()}
    name = tags.get("name", "").strip()
    kind = el.get("type")
    if not name or kind not in ("node", "way", "relation") or "id" not in el:
        return None
    geom: Any = None
    if kind == "node" and "lat" in el and "lon" in el:
        geom = Point(float(el["lon"]), float(el["lat"]))
    elif kind == "way" and el.get("geometry"):
        pts = _line(el["geometry"])
        if len(pts) >= 4 and pts[0] == pts[-1] and _is_area(tags):
            geom = Polygon(pts)
        elif len(pts) >= 2:
            geom = LineString(pts)
    elif kind == "relation" and el.get("members"):
        geom = _relation_geometry(el)
    if geom is None and isinstance(el.get("center"), dict):
        geom = Point(float(el["center"]["lon"]), float(el["center"]["lat"]))
    if geom is None or geom.is_empty:
        return None
    road = kind == "way" and "highway" in tags and not any(k in tags for k in FEATURE_KEYS if k != "highway")
    return OsmFeature(osm_type=str(kind), osm_id=int(el["id"]), name=name, tags=tags, geometry=geom, road=road)


def _features(elements: list[dict[str, Any]], area: Area) -> Iterator[OsmFeature]:
    for el in elements:
        f = element_feature(el)
        if f is None:
            continue
        pt = f.geometry if f.geometry.geom_type == "Point" else f.geometry.representative_point()
        if area.contains(float(pt.x), float(pt.y)):
            yield f


def harvest_overpass(
    *,
    bbox: object | None = None,
    area: Area | None = None,
    user_agent: str,
    retrieved_at: datetime,
    endpoint: str = DEFAULT_ENDPOINT,
    out: str = "geom",
    place: str | None = None,
    max_area_deg2: float = 0.25,
    client: OverpassClient | None = None,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Named features of a small area as documents rows, plus a summary dict.

    Areas larger than ``max_area_deg2`` square degrees are refused (use the .pbf path). Features whose point lies
    outside the area (a polygon from ``--area``) are dropped.
    """
    the_area = area if area is not None else area_from_bbox(bbox)
    minlon, minlat, maxlon, maxlat = the_area.bbox
    size = (maxlon - minlon) * (maxlat - minlat)
    if size > max_area_deg2:
        raise InputError(
            f"the area ({size:.3f} square degrees) is too large for the Overpass API (limit {max_area_deg2})",
            hint="use a smaller --bbox, raise --max-area if the server allows it, or download a .osm.pbf extract "
            "(download.geofabrik.de) and run `georeset harvest osm --pbf FILE`")
    if client is None:
        client = OverpassClient(endpoint, user_agent=user_agent)
    else:
        check_user_agent(user_agent, service="the Overpass API")
    query = build_query(the_area, out=out, timeout_s=client.query_timeout_s)
    if progress:
        print(f"overpass: querying {the_area.label} at {client.endpoint}", file=sys.stderr, flush=True)
    data = client.query(query)
    elements = data["elements"]
    rows = feature_rows(_features(elements, the_area), retrieved_at=retrieved_at, place=place)
    summary = {"area": the_area.label, "elements": len(elements), "documents": len(rows),
               "requests": client.requests_made, "retries": client.retries,
               "osm_base": (data.get("osm3s") or {}).get("timestamp_osm_base")}
    if progress:
        print(f"overpass: {len(elements)} elements -> {len(rows)} documents", file=sys.stderr, flush=True)
    return rows, summary
