"""STAC search with pystac-client (injected timeout / retries / headers / modifier) and items -> ``scenes`` rows."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pystac
import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from shapely.geometry import shape
from urllib3.util.retry import Retry

from georeset.errors import GeoResetWarning, InputError, ServiceUnavailableError
from georeset.fileio import atomic_write_bytes
from georeset.pipelines.imagery.bands import is_optical, sensor_of
from georeset.timeutil import naive_utc

__all__ = [
    "USER_AGENT",
    "LICENCE_SIMULATED",
    "LICENCE_COPERNICUS",
    "check_collections",
    "check_datetime",
    "check_point_in_item",
    "open_client",
    "resolve_signer",
    "search_cache_key",
    "scene_bands",
    "search_items",
    "SearchTruncatedWarning",
    "parse_sortby",
    "sort_items",
    "cloud_filter",
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


def resolve_signer(name: str | None) -> Callable[[str], str] | None:
    """The href signer to use at read time: None / '' / 'none' (no signing), 'planetary-computer' (the optional
    ``planetary-computer`` package's ``sign``; SAS tokens are never stored, the catalogue keeps unsigned hrefs)."""
    if not name or name.lower() == "none":
        return None
    if name.lower() in {"planetary-computer", "pc", "planetary_computer"}:
        try:
            import planetary_computer  # type: ignore[import-not-found]
        except ImportError as exc:
            raise InputError(
                "signing 'planetary-computer' needs the planetary-computer package",
                hint="pip install planetary-computer (optional dependency), or read unsigned hrefs",
            ) from exc
        sign: Callable[[str], str] = planetary_computer.sign
        return sign
    raise InputError(f"unknown href signer {name!r}", hint="use --sign planetary-computer or leave it out")


def check_point_in_item(item: pystac.Item, lon: float, lat: float, *, flag: str = "--item") -> None:
    """An :class:`InputError` when (lon, lat) is outside the item's footprint (its geometry, else its bbox)."""
    from shapely.geometry import Point, box

    geom = shape(item.geometry) if item.geometry else (box(*item.bbox[:2], *item.bbox[-2:]) if item.bbox else None)
    if geom is not None and not geom.buffer(1e-9).covers(Point(lon, lat)):
        w, s, e, n = geom.bounds
        raise InputError(
            f"the point {lon},{lat} is outside {flag} {item.id} (footprint {w:.4f},{s:.4f} .. {e:.4f},{n:.4f})",
            hint="give --lon/--lat inside the item's footprint, or pick an item that covers the point",
        )


def check_datetime(text: str | None, flag: str = "--datetime") -> str | None:
    """Validate an RFC 3339 date / datetime or an interval ``A/B`` (``..`` open ends): InputError naming ``flag``."""
    if text is None or text == "":
        return None
    from datetime import date

    parts = text.split("/")
    if len(parts) > 2 or all(p in {"", ".."} for p in parts):
        raise InputError(f"bad {flag} {text!r}", hint="use a date, a datetime or an interval: 2024-06-01/2024-06-30")
    bounds = []
    for part in parts:
        if part in {"", ".."}:
            continue
        try:
            if "T" in part or "t" in part or " " in part:
                bounds.append(pystac.utils.str_to_datetime(part).replace(tzinfo=None))
            else:
                d = date.fromisoformat(part)
                bounds.append(datetime(d.year, d.month, d.day))  # noqa: DTZ001 - compared with naive bounds only
        except (ValueError, OverflowError) as exc:
            raise InputError(f"bad {flag} {text!r}: {part!r} is not a date ({exc})",
                             hint="use RFC 3339 dates: 2024-06-01 or 2024-06-01T00:00:00Z, intervals A/B") from exc  # fmt: skip
    if len(bounds) == 2 and bounds[0] > bounds[1]:
        raise InputError(f"bad {flag} {text!r}: the interval ends before it starts", hint="give START/END with START <= END")
    return text


def check_collections(client: Client, collections: Sequence[str], flag: str = "--collections") -> None:
    """An :class:`InputError` naming the collections the API does not serve (instead of 0 items)."""
    try:
        known = {c.id for c in client.get_all_collections()}
    except (requests.RequestException, APIError, OSError, ValueError, pystac.STACError, NotImplementedError):
        return  # the API does not list its collections: the search itself decides
    missing = [c for c in collections if c not in known]
    if missing and known:
        raise InputError(
            f"{flag}: the STAC API {client.self_href} has no collection {', '.join(map(repr, missing))}",
            hint=f"use collections it serves: {', '.join(sorted(known))}",
        )


def search_cache_key(api: str, query: dict[str, Any]) -> str:
    """sha256 of the API address and the normalised query (the file name of a cached search)."""
    canon = json.dumps({"api": api.rstrip("/"), **query}, sort_keys=True, default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


def _read_cache(path: Path) -> list[pystac.Item] | None:
    try:
        body = json.loads(path.read_text())
        return [pystac.Item.from_dict(f) for f in body["features"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: search again


def _write_cache(path: Path, items: list[pystac.Item]) -> None:
    body = {"type": "FeatureCollection", "features": [unsigned_item_dict(it) for it in items]}
    atomic_write_bytes(path, json.dumps(body).encode())


class SearchTruncatedWarning(GeoResetWarning):
    """A search stopped at ``max_items``: there are more matching items than were considered."""


def parse_sortby(sortby: str | Sequence[str] | None) -> list[tuple[str, bool]]:
    """``'-eo:cloud_cover,+datetime'`` (pystac-client's form; ``properties.`` prefixes allowed) -> [(field, descending)]."""
    if not sortby:
        return []
    parts = [p.strip() for raw in ([sortby] if isinstance(sortby, str) else sortby) for p in raw.split(",") if p.strip()]
    out = []
    for part in parts:
        desc = part.startswith("-")
        name = part.lstrip("+-").removeprefix("properties.")
        if not name or any(c.isspace() for c in name):
            raise InputError(f"bad --sortby {sortby!r}", hint="use fields with an optional sign: -eo:cloud_cover,+datetime")
        out.append((name, desc))
    return out


def _sort_key(item: pystac.Item, name: str) -> tuple[int, Any]:
    if name == "id":
        return (0, item.id)
    if name == "collection":
        return (0, item.collection_id or "")
    v = item.properties.get(name)
    return (1, "") if v is None else (0, v if isinstance(v, int | float) else str(v))


def sort_items(items: list[pystac.Item], sortby: list[tuple[str, bool]]) -> list[pystac.Item]:
    """Client-side sort (stable, missing values last), so the order does not depend on the API's SORT support."""
    out = list(items)
    for name, desc in reversed(sortby):
        present = [it for it in out if _sort_key(it, name)[0] == 0]
        absent = [it for it in out if _sort_key(it, name)[0] == 1]
        out = sorted(present, key=lambda it, n=name: _sort_key(it, n)[1], reverse=desc) + absent  # type: ignore[misc]
    return out


def cloud_filter(max_cloud: float) -> dict[str, Any]:
    """The CQL2-JSON filter ``eo:cloud_cover <= max_cloud`` (STAC API Filter extension)."""
    return {"op": "<=", "args": [{"property": "eo:cloud_cover"}, float(max_cloud)]}


def _search_group(client: Client, api: str, collections: list[str], kwargs: dict[str, Any], *, max_cloud: float | None,
                  sortby: list[tuple[str, bool]], max_items: int | None) -> tuple[list[pystac.Item], dict[str, Any]]:  # fmt: skip
    """One search over ``collections``: the cloud limit sent as CQL2 ``filter`` when the API conforms to Filter, else as
    ``query`` when it conforms to Query (never for SAR: those items have no cloud cover); ``sortby`` sent when the API
    conforms to Sort. Returns the items and what was sent (for tests and logs)."""
    kw = {**kwargs, "collections": collections}
    if max_cloud is not None:
        if client.conforms_to("FILTER"):
            kw["filter"], kw["filter_lang"] = cloud_filter(max_cloud), "cql2-json"
        elif client.conforms_to("QUERY"):
            kw["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
    if sortby and client.conforms_to("SORT"):
        kw["sortby"] = [{"field": f if f in {"id", "collection"} else f"properties.{f}", "direction": "desc" if d else "asc"}
                        for f, d in sortby]  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not conform.*")
            items = list(client.search(**kw).items())
    except (requests.RequestException, APIError, OSError) as exc:
        raise _unavailable(api, exc) from exc
    if max_items is not None and len(items) >= max_items:
        warnings.warn(
            f"STAC search of {', '.join(collections)} stopped at max_items={max_items}: more items match (the "
            "client-side cloud / orbit filters and the ranking only saw these); raise --max-items or narrow the "
            "search (--datetime, --max-cloud, smaller area)",
            SearchTruncatedWarning, stacklevel=3,
        )  # fmt: skip
    return items, {k: v for k, v in kw.items() if k in {"collections", "filter", "query", "sortby"}}


#: What the last :func:`search_items` call sent per search (collections, filter / query, sortby): for tests and logs.
LAST_SEARCH: list[dict[str, Any]] = []


def search_items(
    url: str | Client,
    *,
    collections: Sequence[str],
    bbox: Sequence[float] | None = None,
    intersects: dict[str, Any] | None = None,
    datetime: str | None = None,
    max_cloud: float | None = None,
    orbit_direction: str | None = None,
    max_items: int | None = 500,
    limit: int = 100,
    cache_dir: Path | None = None,
    sortby: str | Sequence[str] | None = None,
    **client_kwargs: Any,
) -> list[pystac.Item]:
    """Search items (all pages, up to ``max_items`` per search); ``max_cloud`` (percent) keeps optical items with
    ``eo:cloud_cover <= max_cloud``; ``orbit_direction`` ('ascending' / 'descending') keeps SAR items with that
    ``sat:orbit_state`` (optical items are kept).

    Optical and SAR collections are searched separately, so the cloud limit goes to the server (CQL2 ``filter`` when
    the API conforms to Filter, else ``query`` when it conforms to Query) for every optical collection, and SAR
    items (no cloud cover) are not dropped; it is applied client-side as well. ``sortby`` (``-eo:cloud_cover,datetime``)
    is sent when the API conforms to Sort and always applied client-side. A search that stops at ``max_items`` warns
    (:class:`SearchTruncatedWarning`). Unknown collections and a bad ``datetime`` are :class:`InputError`.

    ``cache_dir``: results are cached there as ``<sha256 of api + query>.json`` (unsigned hrefs); a re-run with the
    same query reads the file and does not search (nor open the API) again.
    """
    api = url.self_href if isinstance(url, Client) else str(url)
    if not collections:
        raise InputError("no collections to search", hint="give --collections, e.g. sentinel-2-l2a,sentinel-1-grd")
    check_datetime(datetime)
    order = parse_sortby(sortby)
    query: dict[str, Any] = {"collections": sorted(collections), "bbox": list(bbox) if bbox is not None else None,
                             "intersects": intersects, "datetime": datetime, "max_cloud": max_cloud,
                             "orbit_direction": (orbit_direction or "").lower() or None, "max_items": max_items,
                             "sortby": order or None}  # fmt: skip
    cache_path = Path(cache_dir) / f"{search_cache_key(api or '', query)}.json" if cache_dir is not None else None
    if cache_path is not None and cache_path.exists():
        cached = _read_cache(cache_path)
        if cached is not None:
            return cached
    client = url if isinstance(url, Client) else open_client(url, **client_kwargs)
    api = client.self_href or str(url)
    check_collections(client, collections)
    kwargs: dict[str, Any] = {"max_items": max_items, "limit": limit}
    if bbox is not None:
        kwargs["bbox"] = list(bbox)
    if intersects is not None:
        kwargs["intersects"] = intersects
    if datetime:
        kwargs["datetime"] = datetime
    optical = [c for c in collections if is_optical(c)]
    other = [c for c in collections if not is_optical(c)]
    groups = [(optical, max_cloud), (other, None)] if max_cloud is not None else [(list(collections), None)]
    items: list[pystac.Item] = []
    LAST_SEARCH.clear()
    for colls, cloud in groups:
        if colls:
            got, sent = _search_group(client, api, colls, kwargs, max_cloud=cloud, sortby=order, max_items=max_items)
            items.extend(got)
            LAST_SEARCH.append(sent)
    if max_cloud is not None:
        items = [
            it for it in items if it.properties.get("eo:cloud_cover") is None or it.properties["eo:cloud_cover"] <= max_cloud
        ]
    if orbit_direction:
        want = orbit_direction.lower()
        items = [
            it for it in items
            if sensor_of(it.collection_id, it.properties.get("platform")) != "S1"
            or str(it.properties.get("sat:orbit_state", "")).lower() == want
        ]  # fmt: skip
    if order:
        items = sort_items(items, order)
    if cache_path is not None:
        _write_cache(cache_path, items)
    return items


def scene_bands(item: pystac.Item) -> list[dict[str, Any]]:
    """The bands of a scene as the reader will interpret them: name, asset key, kind, central wavelength / width
    (um), polarisation, native GSD (m; from ``raster:bands`` / asset ``gsd`` / ``proj:transform`` / the S2 table),
    CRS, and the effective scale / offset with the rule that decided it from the item's properties
    (:func:`~georeset.pipelines.imagery.providers.reflectance_offset`; the reader may still overrule a -0.1 offset
    from the pixels)."""
    from georeset.pipelines.imagery.bands import S2_BANDS, band_specs
    from georeset.pipelines.imagery.providers import reflectance_offset

    crs = item_crs(item)
    out = []
    for name, spec in band_specs(item).items():
        asset = item.assets[spec.asset_key]
        gsd = spec.gsd
        tf = asset.extra_fields.get("proj:transform")
        if gsd is None and isinstance(tf, list) and tf:
            gsd = float(abs(tf[0]))
        if gsd is None and name in S2_BANDS:
            gsd = S2_BANDS[name][2]
        scale, offset, rule = spec.scale, spec.offset, None
        if spec.kind == "reflectance":
            dtype = _first_dtype(asset) or "uint16"
            dec = reflectance_offset(spec, item, dtype)
            scale, offset, rule = dec.scale, dec.offset, dec.rule
        code = asset.extra_fields.get("proj:code") or (
            f"EPSG:{asset.extra_fields['proj:epsg']}" if asset.extra_fields.get("proj:epsg") else crs
        )
        out.append({
            "name": name, "asset": spec.asset_key, "kind": spec.kind, "wavelength_um": spec.wavelength_um,
            "bandwidth_um": spec.bandwidth_um, "polarization": spec.polarization or None, "gsd": gsd,
            "crs": code, "scale": scale, "offset": offset, "offset_rule": rule, "nodata": spec.nodata,
            "requester_pays": spec.requester_pays,
        })  # fmt: skip
    return out


def _first_dtype(asset: pystac.Asset) -> str | None:
    rb = asset.extra_fields.get("raster:bands") or asset.extra_fields.get("bands") or [{}]
    first = rb[0] if isinstance(rb, list) and rb and isinstance(rb[0], dict) else {}
    dt = first.get("data_type")
    return str(dt) if dt else None


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
        "datetime": naive_utc(dt),
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
        "retrieved_at": naive_utc(retrieved_at),
        "content_hash": hashlib.sha256(item_json.encode()).hexdigest(),
    }
