"""Harvesters: text with a location becomes ``documents`` rows (OSM extracts and Overpass, Wikipedia API and bulk
JSONL)."""

from georeset.pipelines.harvest._common import (
    MalformedRecordWarning,
    content_hash,
    document_row,
    validate_bbox,
)
from georeset.pipelines.harvest.area import (
    Area,
    area_from_bbox,
    area_from_geojson,
    area_from_region,
    resolve_area,
)
from georeset.pipelines.harvest.captions import caption
from georeset.pipelines.harvest.mediawiki import MediaWikiClient, MediaWikiTransport, check_user_agent
from georeset.pipelines.harvest.osm import OSM_LICENCE, harvest_osm
from georeset.pipelines.harvest.overpass import OverpassClient, harvest_overpass
from georeset.pipelines.harvest.progress import HarvestProgress
from georeset.pipelines.harvest.wikipedia import (
    WIKIPEDIA_LICENCE,
    harvest_wikipedia,
    run_wikipedia_harvest,
    tiles_for_bbox,
)
from georeset.pipelines.harvest.wikipedia_bulk import read_geotagged_jsonl

__all__ = [
    "Area",
    "HarvestProgress",
    "MalformedRecordWarning",
    "MediaWikiClient",
    "MediaWikiTransport",
    "OSM_LICENCE",
    "OverpassClient",
    "WIKIPEDIA_LICENCE",
    "area_from_bbox",
    "area_from_geojson",
    "area_from_region",
    "caption",
    "check_user_agent",
    "content_hash",
    "document_row",
    "harvest_osm",
    "harvest_overpass",
    "harvest_wikipedia",
    "read_geotagged_jsonl",
    "resolve_area",
    "run_wikipedia_harvest",
    "tiles_for_bbox",
    "validate_bbox",
]
