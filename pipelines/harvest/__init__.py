"""Harvesters: text with a location becomes ``documents`` rows (OSM extracts, Wikipedia API and bulk JSONL)."""

from georeset.pipelines.harvest._common import (
    MalformedRecordWarning,
    content_hash,
    document_row,
    validate_bbox,
)
from georeset.pipelines.harvest.captions import caption
from georeset.pipelines.harvest.mediawiki import MediaWikiClient, check_user_agent
from georeset.pipelines.harvest.osm import OSM_LICENCE, harvest_osm
from georeset.pipelines.harvest.wikipedia import WIKIPEDIA_LICENCE, harvest_wikipedia, tiles_for_bbox
from georeset.pipelines.harvest.wikipedia_bulk import read_geotagged_jsonl

__all__ = [
    "MalformedRecordWarning",
    "MediaWikiClient",
    "OSM_LICENCE",
    "WIKIPEDIA_LICENCE",
    "caption",
    "check_user_agent",
    "content_hash",
    "document_row",
    "harvest_osm",
    "harvest_wikipedia",
    "read_geotagged_jsonl",
    "tiles_for_bbox",
    "validate_bbox",
]
