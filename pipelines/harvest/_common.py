"""Helpers shared by the harvesters: bbox checks, content hashes, record warnings, document rows."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from datetime import UTC, datetime
from typing import Any, Literal

from georeset.errors import GeoResetWarning, InputError
from georeset.timeutil import naive_utc

__all__ = [
    "BBox",
    "MalformedRecordWarning",
    "OnError",
    "content_hash",
    "document_row",
    "report_bad_record",
    "utc",
    "validate_bbox",
]

BBox = tuple[float, float, float, float]
OnError = Literal["warn", "raise"]


class MalformedRecordWarning(GeoResetWarning):
    """A record (line, XML element) of an input file was malformed and skipped."""


def report_bad_record(path: object, line: int, reason: str, *, on_error: OnError) -> None:
    """Warn about (or, with ``on_error="raise"``, fail on) a malformed record, naming file and line."""
    msg = f"{path}:{line}: {reason}"
    if on_error == "raise":
        raise InputError(f"malformed record at {msg}", hint="fix or remove that record, or pass on_error='warn' to skip it")
    warnings.warn(f"skipped malformed record at {msg}", MalformedRecordWarning, stacklevel=3)


def validate_bbox(bbox: object, *, what: str = "bbox") -> BBox:
    """Check ``(minlon, minlat, maxlon, maxlat)`` in EPSG:4326 and return it as floats."""
    hint = f"pass {what} as minlon,minlat,maxlon,maxlat in degrees, e.g. 24.90,60.15,24.98,60.19"
    try:
        vals = tuple(float(v) for v in bbox)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise InputError(f"invalid {what} {bbox!r}: not four numbers", hint=hint) from exc
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InputError(f"invalid {what} {bbox!r}: need four finite numbers", hint=hint)
    minlon, minlat, maxlon, maxlat = vals
    if not (-180 <= minlon <= 180 and -180 <= maxlon <= 180 and -90 <= minlat <= 90 and -90 <= maxlat <= 90):
        raise InputError(f"invalid {what} {bbox!r}: coordinates out of range (lon/lat order?)", hint=hint)
    if minlon >= maxlon or minlat >= maxlat:
        raise InputError(f"invalid {what} {bbox!r}: min must be below max", hint=hint)
    return minlon, minlat, maxlon, maxlat


def utc(dt: datetime | None) -> datetime:
    """Naive UTC datetime for a TIMESTAMP column (naive input is taken as UTC already); ``None`` means now."""
    if dt is None:
        dt = datetime.now(UTC)
    return naive_utc(dt)


def content_hash(*parts: Any) -> str:
    """sha256 hex over a canonical JSON encoding of ``parts`` (never fails: lone surrogates are hashed as-is)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def clean_text(value: str | None) -> str | None:
    """Documented clean-up of user/harvested text before it is stored.

    NUL bytes are dropped (they break C-string consumers), and lone surrogates (from bytes decoded with
    ``surrogateescape``, i.e. non-UTF-8 input) become ``\\udcXX`` escapes, so the row is valid UTF-8 for Parquet and
    DuckDB while no information is lost.
    """
    if value is None:
        return None
    value = value.replace("\x00", "")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def document_row(
    *,
    source: str,
    source_id: str,
    title: str | None,
    text: str,
    lon: float | None,
    lat: float | None,
    licence: str,
    retrieved_at: datetime,
    lang: str | None = None,
    url: str | None = None,
    geom_wkt: str | None = None,
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``documents`` row (column names from migrations/0001_initial.sql); text is cleaned (:func:`clean_text`)."""
    title = clean_text(title)
    text = clean_text(text) or ""
    tags_json = json.dumps(tags, sort_keys=True, ensure_ascii=False) if tags is not None else None
    geom = geom_wkt if geom_wkt is not None else (None if lon is None or lat is None else f"POINT ({lon} {lat})")
    return {
        "doc_id": f"{source}:{source_id}",
        "source": source,
        "source_id": source_id,
        "title": title,
        "text": text,
        "lang": lang,
        "url": url,
        "lon": lon,
        "lat": lat,
        "geom_wkt": geom,
        "tags": tags_json,
        "licence": licence,
        "retrieved_at": utc(retrieved_at),
        "content_hash": content_hash(title, text, geom, tags_json, url),
    }
