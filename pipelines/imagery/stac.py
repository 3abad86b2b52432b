"""STAC search with pystac-client (injected timeout / retries / headers / modifier) and items -> ``scenes`` rows."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pystac
import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from shapely.geometry import shape
from urllib3.util.retry import Retry

from georeset.errors import ServiceUnavailableError
from georeset.pipelines.imagery.bands import sensor_of

__all__ = [
    "USER_AGENT",
    "LICENCE_SIMULATED",
    "LICENCE_COPERNICUS",
    "open_client",
    "search_items",
    "item_crs",
    "item_datetime",
    "unsigned_item_dict",
    "scene_id_of",
    "scene_row",
    "is_simulated",
]

USER_AGENT = "GEO-ReSeT/0.1 (+https://github.com/georeset; imagery pipeline)"
LICENCE_SIMULATED = "simulated (GEO-ReSeT sample world, CC0-1.0)"
LICENCE_COPERNICUS = "Copernicus-Sentinel-terms"
_SIGNATURE_KEYS = {"sig", "se", "st", "sp", "sv", "sr", "skoid", "sktid", "x-amz-signature", "x-amz-credential"}


def _unavailable(url: str, exc: BaseException) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"STAC API {url} cannot be reached or misbehaves: {type(exc).__name__}: {exc}",
        hint="start the local server (georeset demo starts it itself) or check --stac-url / your network",
    )


def open_client(
    url: str,
    *,
    timeout: float = 10.0,
    max_retries: int = 3,
    backoff_factor: float = 0.5,
    headers: dict[str, str] | None = None,
    modifier: Callable[[Any], None] | None = None,
) -> Client:
    """``Client.open`` with injected I/O: timeout, retries with back-off on 429/5xx, a User-Agent, a modifier
    (e.g. ``planetary_computer.sign_inplace``: signing happens at read time, the catalogue keeps unsigned hrefs)."""
    retry = Retry(
        total=max_retries,
        backoff_factor=backoff_factor,
        status_forcelist=[429, 502, 503, 504],
        allowed_methods=None,
    )
    io = StacApiIO(headers={"User-Agent": USER_AGENT, **(headers or {})}, timeout=timeout, max_retries=retry)
    try:
        return Client.open(url, stac_io=io, modifier=modifier)
    except (requests.RequestException, APIError, OSError, ValueError, pystac.STACError) as exc:
        raise _unavailable(url, exc) from exc


def search_items(
    url: str | Client,
    *,
    collections: Sequence[str],
    bbox: Sequence[float] | None = None,
    intersects: dict[str, Any] | None = None,
    datetime: str | None = None,
    max_cloud: float | None = None,
    max_items: int | None = 500,
    limit: int = 100,
    **client_kwargs: Any,
) -> list[pystac.Item]:
    """Search items; ``max_cloud`` (percent) keeps optical items with ``eo:cloud_cover <= max_cloud``.

    The cloud filter is sent as a ``query`` only when the server conforms to it and every collection is optical
    (SAR items have no cloud cover and would be dropped server-side); it is always applied client-side as well.
    """
    client = url if isinstance(url, Client) else open_client(url, **client_kwargs)
    api = client.self_href or str(url)
    kwargs: dict[str, Any] = {"collections": list(collections), "max_items": max_items, "limit": limit}
    if bbox is not None:
        kwargs["bbox"] = list(bbox)
    if intersects is not None:
        kwargs["intersects"] = intersects
    if datetime:
        kwargs["datetime"] = datetime
    optical = all(sensor_of(c) == "S2" for c in collections)
    if max_cloud is not None and optical and client.conforms_to("QUERY"):
        kwargs["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not conform.*")
            items = list(client.search(**kwargs).items())
    except (requests.RequestException, APIError, OSError) as exc:
        raise _unavailable(api, exc) from exc
    if max_cloud is not None:
        items = [
            it for it in items if it.properties.get("eo:cloud_cover") is None or it.properties["eo:cloud_cover"] <= max_cloud
        ]
    return items


def item_crs(item: pystac.Item) -> str | None:
    """'EPSG:nnnn' from ``proj:code`` / ``proj:epsg`` on the item, else on its first asset that has one."""
    for fields in [item.properties, *(a.extra_fields for a in item.assets.values())]:
        code = fields.get("proj:code")
        if code:
            return str(code)
        epsg = fields.get("proj:epsg")
        if epsg:
            return f"EPSG:{int(epsg)}"
    return None


def item_datetime(item: pystac.Item) -> datetime | None:
    dt = item.datetime
    if dt is None:
        raw = item.properties.get("start_datetime")
        dt = pystac.utils.str_to_datetime(raw) if raw else None
    if dt is not None and dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _unsign(href: str) -> str:
    parts = urlsplit(href)
    if not parts.query:
        return href
    keys = {k.lower() for k in parse_qs(parts.query)}
    if keys & _SIGNATURE_KEYS:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", parts.fragment))
    return href


def unsigned_item_dict(item: pystac.Item) -> dict[str, Any]:
    """The item as a dict, hrefs stripped of SAS / presigned query strings, API navigation links dropped (so the
    content hash does not depend on the server address)."""
    d = copy.deepcopy(item.to_dict(include_self_link=False, transform_hrefs=False))
    for asset in d.get("assets", {}).values():
        asset["href"] = _unsign(asset["href"])
    api_rels = {"self", "root", "parent", "collection", "items", "next", "prev"}
    d["links"] = [ln for ln in d.get("links", []) if ln.get("rel") not in api_rels]
    return d


def scene_id_of(item: pystac.Item) -> str:
    return f"{item.collection_id}/{item.id}"


def is_simulated(item: pystac.Item) -> bool:
    return bool(item.properties.get("georeset:simulated", False))


def scene_row(item: pystac.Item, *, stac_api: str, retrieved_at: datetime) -> dict[str, Any]:
    """One ``scenes`` row (columns of migrations/0001_initial.sql) for an item."""
    d = unsigned_item_dict(item)
    item_json = json.dumps(d, sort_keys=True, separators=(",", ":"))
    p = item.properties
    simulated = is_simulated(item)
    geom_wkt = shape(item.geometry).wkt if item.geometry else None
    dt = item_datetime(item)
    return {
        "scene_id": scene_id_of(item),
        "collection": item.collection_id or "",
        "item_id": item.id,
        "datetime": dt.astimezone(UTC).replace(tzinfo=None) if dt else None,
        "platform": p.get("platform"),
        "constellation": p.get("constellation"),
        "sensor": sensor_of(item.collection_id, p.get("platform"), p.get("constellation")),
        "crs": item_crs(item),
        "cloud_cover": None if p.get("eo:cloud_cover") is None else float(p["eo:cloud_cover"]),
        "simulated": simulated,
        "geom_wkt": geom_wkt,
        "stac_api": stac_api,
        "item_json": item_json,
        "source": "stac",
        "licence": LICENCE_SIMULATED if simulated else LICENCE_COPERNICUS,
        "retrieved_at": retrieved_at.astimezone(UTC).replace(tzinfo=None) if retrieved_at.tzinfo else retrieved_at,
        "content_hash": hashlib.sha256(item_json.encode()).hexdigest(),
    }
