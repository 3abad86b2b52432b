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

from georeset.errors import InputError, ServiceUnavailableError
from georeset.fileio import atomic_write_bytes
from georeset.pipelines.imagery.bands import sensor_of

__all__ = [
    "USER_AGENT",
    "LICENCE_SIMULATED",
    "LICENCE_COPERNICUS",
    "open_client",
    "resolve_signer",
    "search_cache_key",
    "scene_bands",
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
    **client_kwargs: Any,
) -> list[pystac.Item]:
    """Search items (all pages, up to ``max_items``); ``max_cloud`` (percent) keeps optical items with
    ``eo:cloud_cover <= max_cloud``; ``orbit_direction`` ('ascending' / 'descending') keeps SAR items with that
    ``sat:orbit_state`` (optical items are kept).

    The cloud filter is sent as a ``query`` only when the server conforms to it and every collection is optical
    (SAR items have no cloud cover and would be dropped server-side); it is always applied client-side as well.

    ``cache_dir``: results are cached there as ``<sha256 of api + query>.json`` (unsigned hrefs); a re-run with the
    same query reads the file and does not search (nor open the API) again.
    """
    api = url.self_href if isinstance(url, Client) else str(url)
    query: dict[str, Any] = {"collections": sorted(collections), "bbox": list(bbox) if bbox is not None else None,
                             "intersects": intersects, "datetime": datetime, "max_cloud": max_cloud,
                             "orbit_direction": (orbit_direction or "").lower() or None, "max_items": max_items}  # fmt: skip
    cache_path = Path(cache_dir) / f"{search_cache_key(api or '', query)}.json" if cache_dir is not None else None
    if cache_path is not None and cache_path.exists():
        cached = _read_cache(cache_path)
        if cached is not None:
            return cached
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
    if orbit_direction:
        want = orbit_direction.lower()
        items = [
            it for it in items
            if sensor_of(it.collection_id, it.properties.get("platform")) != "S1"
            or str(it.properties.get("sat:orbit_state", "")).lower() == want
        ]  # fmt: skip
    if cache_path is not None:
        _write_cache(cache_path, items)
    return items


def scene_bands(item: pystac.Item) -> list[dict[str, Any]]:
    """The bands of a scene as the reader will interpret them: name, asset key, kind, central wavelength / width
    (um), polarisation, native GSD (m; from ``raster:bands`` / asset ``gsd`` / ``proj:transform`` / the S2 table),
    CRS, and the effective scale / offset (from ``raster:bands``; for S2 without them, from the processing
    baseline: 04.00 and later 1/10000 and -0.1, before 1/10000 and 0)."""
    from georeset.pipelines.imagery.bands import S2_BANDS, band_specs, processing_baseline

    crs = item_crs(item)
    baseline = processing_baseline(item)
    out = []
    for name, spec in band_specs(item).items():
        asset = item.assets[spec.asset_key]
        gsd = spec.gsd
        tf = asset.extra_fields.get("proj:transform")
        if gsd is None and isinstance(tf, list) and tf:
            gsd = float(abs(tf[0]))
        if gsd is None and name in S2_BANDS:
            gsd = S2_BANDS[name][2]
        scale, offset = spec.scale, spec.offset
        if spec.kind == "reflectance" and scale is None and offset is None:
            scale, offset = 1e-4, (-0.1 if baseline is not None and baseline >= 4.0 else 0.0)
        code = asset.extra_fields.get("proj:code") or (
            f"EPSG:{asset.extra_fields['proj:epsg']}" if asset.extra_fields.get("proj:epsg") else crs
        )
        out.append({
            "name": name, "asset": spec.asset_key, "kind": spec.kind, "wavelength_um": spec.wavelength_um,
            "bandwidth_um": spec.bandwidth_um, "polarization": spec.polarization or None, "gsd": gsd,
            "crs": code, "scale": scale, "offset": offset, "nodata": spec.nodata,
        })  # fmt: skip
    return out


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
