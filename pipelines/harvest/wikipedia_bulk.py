"""Bulk ingest of geotagged Wikipedia articles from a local JSONL file, streaming.

One JSON object a line with ``title``, ``lat``, ``lon``, ``text`` and optional ``url``, ``lang``, ``pageid``
(the shape of ``../shared/data/wikipedia/wiktor_geotagged_articles.jsonl``). Other keys are kept in ``tags``.
Malformed lines (bad JSON, non-UTF-8 bytes, missing fields, coordinates out of range) are reported with their
line number and skipped, or fatal with ``on_error="raise"``.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.harvest._common import OnError, document_row, report_bad_record
from georeset.pipelines.harvest.wikipedia import WIKIPEDIA_LICENCE

__all__ = ["read_geotagged_jsonl"]

_CORE = {"title", "lat", "lon", "text", "url", "lang", "pageid"}


def _number(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _row(obj: dict[str, Any], *, lang: str, retrieved_at: datetime | None) -> dict[str, Any] | str:
    title = obj.get("title")
    text = obj.get("text")
    lat, lon = _number(obj.get("lat")), _number(obj.get("lon"))
    if not isinstance(title, str) or not title.strip():
        return "missing or empty 'title'"
    if not isinstance(text, str) or not text.strip():
        return "missing or empty 'text'"
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return f"missing or out-of-range 'lat'/'lon' ({obj.get('lat')!r}, {obj.get('lon')!r})"
    lg = str(obj.get("lang") or lang)
    title = title.strip()
    pageid = obj.get("pageid")
    source_id = f"{lg}:{int(pageid)}" if isinstance(pageid, int) else f"{lg}:{title}"
    url = obj.get("url") or f"https://{lg}.wikipedia.org/wiki/{urllib.parse.quote(title.replace(' ', '_'))}"
    extra = {k: v for k, v in obj.items() if k not in _CORE}
    return document_row(source="wikipedia", source_id=source_id, title=title, text=text.strip(), lang=lg,
                        url=str(url), lon=lon, lat=lat, tags=extra or None, licence=WIKIPEDIA_LICENCE,
                        retrieved_at=retrieved_at)  # type: ignore[arg-type]


def read_geotagged_jsonl(
    path: Path,
    *,
    lang: str = "en",
    retrieved_at: datetime | None = None,
    on_error: OnError = "warn",
) -> Iterator[dict[str, Any]]:
    """Yield documents rows, one per good line. ``source_id`` is ``<lang>:<pageid>`` when the line has a
    ``pageid``, else ``<lang>:<title>``; ``retrieved_at`` defaults to the file's modification time."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"JSONL file {path} does not exist", hint="pass the path of a geotagged-articles .jsonl")
    when = retrieved_at or datetime.fromtimestamp(path.stat().st_mtime, UTC)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                report_bad_record(path, lineno, f"not UTF-8 ({exc.reason} at byte {exc.start})", on_error=on_error)
                continue
            except ValueError as exc:
                report_bad_record(path, lineno, f"invalid JSON ({exc})", on_error=on_error)
                continue
            if not isinstance(obj, dict):
                report_bad_record(path, lineno, "not a JSON object", on_error=on_error)
                continue
            row = _row(obj, lang=lang, retrieved_at=when)
            if isinstance(row, str):
                report_bad_record(path, lineno, row, on_error=on_error)
                continue
            yield row
