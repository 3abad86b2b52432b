"""``georeset imagery``: the single-patch contract and a STAC search summary (a typer app the main CLI mounts).

    georeset imagery patch --item PATH_OR_URL --lon LON --lat LAT --size PX --gsd METRES [--bands B04,B8A] --out X.npz
    georeset imagery search --stac-url URL --collections sentinel-2-l2a --bbox W,S,E,N --datetime A/B --max-cloud 20

``patch`` writes ``image`` (float32, bands x size x size: S2 surface reflectance, S1 dB), ``bands``,
``clear_fraction``, ``crs``, ``transform`` (a, b, c, d, e, f), ``datetime`` (plus ``sensor``, ``units``,
``calibration``, ``fractions``, ``item``) and prints one JSON line describing the patch.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pystac
import typer

from georeset.errors import GeoResetError, InputError

__all__ = ["app", "load_item"]

app = typer.Typer(
    help="Sentinel-1/2 imagery: read one patch from a STAC item, search a STAC API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _fail(exc: GeoResetError) -> None:
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.secho(f"  fix: {exc.hint}", err=True)
    raise typer.Exit(2)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
    return out or None


def _item_text(path_or_url: str) -> str:
    if "://" in path_or_url and not path_or_url.startswith("file://"):
        import requests

        try:
            r = requests.get(path_or_url, timeout=30, headers={"Accept": "application/geo+json, application/json"})
            r.raise_for_status()
        except requests.RequestException as exc:
            raise InputError(
                f"--item {path_or_url} cannot be fetched: {type(exc).__name__}: {exc}",
                hint="check the URL (is the server running and reachable?) or pass a local STAC item JSON file",
            ) from exc
        return r.text
    path = Path(path_or_url.removeprefix("file://"))
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--item {path_or_url} cannot be read: {exc}", hint="pass --item a STAC item JSON file or URL") from exc


def load_item(path_or_url: str) -> pystac.Item:
    """A STAC item from a local JSON file or an http(s) URL (a one-item FeatureCollection is accepted). Anything else
    (unreadable, not JSON, JSON that is not a STAC item) is an :class:`InputError` naming ``--item``."""
    hint = "pass --item a STAC item (GeoJSON Feature with 'stac_version', 'id', 'assets'), as a file or URL"
    try:
        d: Any = json.loads(_item_text(path_or_url))
    except ValueError as exc:
        raise InputError(f"--item {path_or_url} is not JSON: {exc}", hint=hint) from exc
    if isinstance(d, dict) and d.get("type") == "FeatureCollection":
        feats = d.get("features") or []
        if len(feats) != 1:
            raise InputError(f"--item {path_or_url} holds {len(feats)} items", hint="pass a single STAC item")
        d = feats[0]
    missing = (
        ["a JSON object"] if not isinstance(d, dict)
        else [k for k in ("type", "stac_version", "id", "assets") if k not in d]
        + ([] if d.get("type") == "Feature" else ["type 'Feature'"])
        + ([] if isinstance(d.get("assets"), dict) else ["an 'assets' object"])
    )  # fmt: skip
    if missing:
        raise InputError(f"--item {path_or_url} is not a STAC item (missing {', '.join(dict.fromkeys(missing))})", hint=hint)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            item = pystac.Item.from_dict(d)
    except (KeyError, ValueError, TypeError, AttributeError, pystac.STACError) as exc:
        raise InputError(f"--item {path_or_url} is not a STAC item: {exc}", hint=hint) from exc
    remote = "://" in path_or_url and not path_or_url.startswith("file://")
    base = path_or_url if remote else str(Path(path_or_url.removeprefix("file://")).resolve().parent) + "/"
    for asset in item.assets.values():  # relative hrefs: relative to the item file / URL
        href = asset.href
        if href and "://" not in href and not Path(href).is_absolute():
            from urllib.parse import urljoin

            asset.href = urljoin(base, href) if remote else str((Path(base) / href).resolve())
    return item


def check_lonlat(lon: float, lat: float, flags: tuple[str, str] = ("--lon", "--lat")) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InputError(f"{flags[1]} {lat} is not a latitude", hint=f"give {flags[1]} in degrees between -90 and 90")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InputError(f"{flags[0]} {lon} is not a longitude", hint=f"give {flags[0]} in degrees between -180 and 180")


def check_writable(out: Path, flag: str = "--out") -> None:
    """Fail before any work if ``out`` cannot be written (a directory, under a file, an unwritable folder)."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{flag} {out} is a directory", hint=f"give {flag} a file name, e.g. {out / 'patch.npz'}")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {out} cannot be written ({parent} is not a writable folder)",
                         hint=f"choose {flag} in a folder you can write to")  # fmt: skip


@app.command()
def patch(
    item: Annotated[str, typer.Option("--item", help="STAC item JSON: a file path or an http(s) URL.")],
    lon: Annotated[float, typer.Option(help="Longitude of the patch centre (WGS84).")],
    lat: Annotated[float, typer.Option(help="Latitude of the patch centre (WGS84).")],
    out: Annotated[Path, typer.Option("--out", help="Output .npz file.")],
    size: Annotated[int, typer.Option(help="Patch size in pixels (size x size).")] = 32,
    gsd: Annotated[float, typer.Option(help="Ground sampling distance of the patch grid, metres.")] = 10.0,
    bands: Annotated[
        list[str] | None,
        typer.Option("--bands", help="Band names (eo:bands names: B02, B8A, VV ...); repeat or comma-separate. "
                     "Default: the 12 L2A bands or VV, VH."),  # fmt: skip
    ] = None,
    crs: Annotated[str | None, typer.Option(help="Patch CRS (default: the point's UTM zone).")] = None,
    sign: Annotated[
        str | None, typer.Option(help="Sign hrefs at read time: 'planetary-computer' (needs that package).")
    ] = None,
) -> None:
    """Read one patch centred on LON/LAT from a STAC item, on the point's UTM grid at --gsd, and save it."""
    from georeset.pipelines.imagery.read import read_patch, save_patch_npz
    from georeset.pipelines.imagery.stac import check_point_in_item, resolve_signer

    try:
        check_lonlat(lon, lat)
        check_writable(out)
        it = load_item(item)
        check_point_in_item(it, lon, lat, flag="--item")
        p = read_patch(it, lon, lat, size=size, gsd=gsd, bands=_split(bands), dst_crs=crs, sign=resolve_signer(sign))
        if p.fractions.nodata >= 1.0:
            raise InputError(f"the patch at {lon},{lat} has no valid pixel in --item {item} (all nodata)",
                             hint="pick a point inside the item's data area (the footprint may include nodata)")
        path = save_patch_npz(p, out)
    except GeoResetError as exc:
        _fail(exc)
        return
    valid = ~np.isnan(p.image)
    means = {b: (float(np.nanmean(p.image[k])) if valid[k].any() else None) for k, b in enumerate(p.bands)}
    print(json.dumps({
        "out": str(path), "item": f"{p.collection}/{p.item_id}", "sensor": p.sensor, "bands": p.bands,
        "shape": list(p.image.shape), "crs": p.crs, "transform": [float(v) for v in tuple(p.transform)[:6]],
        "datetime": p.datetime.isoformat() if p.datetime else None, "clear_fraction": p.fractions.clear,
        "fractions": p.fractions.as_dict(), "calibration": p.calibration, "mean": means,
    }, sort_keys=True))  # fmt: skip


def _float_list(text: str | None, n: int, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != n:
        raise InputError(f"bad {what} {text!r}", hint=f"give {n} comma-separated numbers")
    return vals


@app.command()
def search(
    stac_url: Annotated[str, typer.Option("--stac-url", help="STAC API root, e.g. https://earth-search.aws.element84.com/v1")],
    collections: Annotated[list[str], typer.Option("--collections", help="Collection ids; repeat or comma-separate.")],
    bbox: Annotated[str | None, typer.Option(help="W,S,E,N in degrees.")] = None,
    point: Annotated[str | None, typer.Option(help="LON,LAT: items covering this point.")] = None,
    datetime: Annotated[str | None, typer.Option(help="RFC 3339 date or range, e.g. 2024-06-01/2024-06-30.")] = None,
    max_cloud: Annotated[float | None, typer.Option(help="Keep optical items with eo:cloud_cover <= this (%).")] = None,
    orbit: Annotated[str | None, typer.Option(help="Keep SAR items of this orbit: ascending or descending.")] = None,
    max_items: Annotated[int, typer.Option(help="Stop after this many items (all pages).")] = 500,
    sortby: Annotated[str | None, typer.Option(help="Order, e.g. '-eo:cloud_cover,datetime' (sent when the API "
                                                    "conforms to Sort, applied client-side always).")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache results here (per query hash); a re-run does not search again.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="HTTP timeout per request, seconds.")] = 10.0,
    retries: Annotated[int, typer.Option(help="HTTP retries (with back-off) on 429 / 5xx.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Search a STAC API and print a summary: items per collection, dates, cloud cover, CRS, bands."""
    from georeset.pipelines.imagery.bands import band_specs, sensor_of
    from georeset.pipelines.imagery.stac import item_crs, item_datetime, search_items

    try:
        box = _float_list(bbox, 4, "--bbox")
        pt = _float_list(point, 2, "--point")
        if pt:
            check_lonlat(pt[0], pt[1], ("--point (lon)", "--point (lat)"))
        if box:
            check_lonlat(box[0], box[1], ("--bbox (west)", "--bbox (south)"))
            check_lonlat(box[2], box[3], ("--bbox (east)", "--bbox (north)"))
        if orbit is not None and orbit.lower() not in {"ascending", "descending"}:
            raise InputError(f"bad --orbit {orbit!r}", hint="use ascending or descending")
        items = search_items(
            stac_url, collections=_split(collections) or [], bbox=box,
            intersects={"type": "Point", "coordinates": pt} if pt else None, datetime=datetime,
            max_cloud=max_cloud, orbit_direction=orbit, max_items=max_items, cache_dir=cache_dir,
            timeout=timeout, max_retries=retries, sortby=sortby,
        )  # fmt: skip
    except GeoResetError as exc:
        _fail(exc)
        return
    rows: list[dict[str, Any]] = []
    for it in items:
        dt = item_datetime(it)
        rows.append({
            "id": it.id, "collection": it.collection_id,
            "sensor": sensor_of(it.collection_id, it.properties.get("platform"), it.properties.get("constellation")),
            "datetime": dt.isoformat() if dt else None, "cloud_cover": it.properties.get("eo:cloud_cover"),
            "orbit": it.properties.get("sat:orbit_state"), "crs": item_crs(it), "bands": sorted(band_specs(it)),
        })  # fmt: skip
    dates = sorted(r["datetime"] for r in rows if r["datetime"])
    per_collection = dict(Counter(str(r["collection"]) for r in rows))
    summary: dict[str, Any] = {
        "stac_url": stac_url, "items": len(rows), "per_collection": per_collection,
        "first": dates[0] if dates else None, "last": dates[-1] if dates else None, "results": rows,
    }  # fmt: skip
    if as_json:
        print(json.dumps(summary, sort_keys=True, default=str))
        return
    typer.echo(f"{len(rows)} items from {stac_url}  ({summary['first']} .. {summary['last']})")
    for coll, n in sorted(per_collection.items()):
        typer.echo(f"  {coll}: {n}")
    for r in rows:
        cc = "" if r["cloud_cover"] is None else f"cloud {float(r['cloud_cover']):5.1f}%"
        typer.echo(f"  {r['datetime'] or '?':<32} {r['collection']:<20} {r['id']:<48} {r['crs'] or '?':<11} {cc}"
                   f" {r['orbit'] or ''} bands={','.join(r['bands'])}")  # fmt: skip
