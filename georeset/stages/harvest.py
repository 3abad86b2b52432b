"""Harvest stage: OpenStreetMap extracts (tiles), Wikipedia (resumable, per language and area), Overpass.

Contract: ``plan_*`` cuts the inputs into partitions (JSON dicts), ``run_*`` stages one partition's ``documents``
and returns the staging names it wrote, :func:`georeset.stages.writer.commit` commits exactly those names. The
``*_stage`` functions (CLI, demo) do the three in process; the DAGs map ``run_*`` over ``plan_*``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.stages import writer
from georeset.stages._base import (
    CLI_INTERVAL,
    BBox,
    batched,
    check_bbox,
    now,
    partition_name,
    stage_or_clear,
    tile_grid,
    tile_key,
)
from georeset.timeutil import naive_utc
from georeset.workspace import Workspace

__all__ = ["plan_osm", "run_osm", "harvest_osm_stage", "plan_wikipedia", "run_wikipedia", "harvest_wikipedia_stage",
           "harvest_overpass_stage"]


# ---------------------------------------------------------------------------------------------------------- OSM
def plan_osm(*, pbfs: Sequence[str | Path], areas: Sequence[Sequence[float]] | None, tile_deg: float | None,
             tiles_per_batch: int, interval: str) -> list[dict[str, Any]]:
    """Partitions of an OSM harvest: batches of tiles (``None`` areas: one partition reading whole extracts)."""
    if not pbfs:
        raise InputError("no .osm.pbf extract given", hint="pass --pbf FILE (or the pbfs Param)")
    if not areas:
        return [{"pbfs": [str(p) for p in pbfs], "tiles": [None], "interval": interval}]
    tiles = sorted({t for a in areas for t in (tile_grid(a, tile_deg=tile_deg) if tile_deg else [check_bbox(a)])})
    return [{"pbfs": [str(p) for p in pbfs], "tiles": [list(t) for t in b], "interval": interval}
            for b in batched(tiles, tiles_per_batch)]


def run_osm(partition: dict[str, Any], *, staging_dir: Path, retrieved_at: dt.datetime,
            limit_per_tile: int | None = None, allow_empty: bool = True, context_m: float | None = 160.0
            ) -> dict[str, Any]:
    """Harvest the named features of the partition's extracts inside each tile; one ``documents`` file per tile,
    ``osm-<tile>-<interval>`` (features straddling tiles appear in both files and are deduplicated at commit).
    ``allow_empty=False`` (a user's own area): an area without named features is an InputError."""
    from georeset.pipelines.harvest import harvest_osm

    staged, names = 0, []
    for tile in partition["tiles"]:
        box = check_bbox(tile) if tile is not None else None
        rows: dict[str, dict[str, Any]] = {}
        for pbf in partition["pbfs"]:
            for row in harvest_osm(Path(pbf), bbox=box, retrieved_at=naive_utc(retrieved_at),
                                   allow_empty=allow_empty, context_m=context_m):
                rows.setdefault(row["doc_id"], row)
        out = sorted(rows.values(), key=lambda r: r["doc_id"])
        out = out[:limit_per_tile] if limit_per_tile is not None else out
        name = partition_name("osm", tile_key(box), partition["interval"])
        stage_or_clear(out, table="documents", staging_dir=Path(staging_dir), name=name)
        staged += len(out)
        names.append(name)
    return {"tiles": len(partition["tiles"]), "rows": staged, "names": names}


def harvest_osm_stage(
    ws: Workspace, *, pbfs: Sequence[Path | str], bbox: BBox | None = None, max_docs: int | None = None,
    retrieved_at: dt.datetime | None = None, context_m: float | None = 160.0,
) -> dict[str, Any]:
    """Named OSM features of ``pbfs`` (inside ``bbox``) -> documents: plan, run every partition, commit.
    ``context_m``: captions describe the ground of the patch-grid cell of this size (the patch extent)."""
    when = retrieved_at or now()
    parts = plan_osm(pbfs=pbfs, areas=[bbox] if bbox else None, tile_deg=None, tiles_per_batch=1,
                     interval=CLI_INTERVAL)
    done = [run_osm(p, staging_dir=ws.staging_dir, retrieved_at=when, limit_per_tile=max_docs, allow_empty=False,
                    context_m=context_m) for p in parts]
    names = [n for d in done for n in d["names"]]
    merged = writer.commit(ws, ["documents"], names=names)
    return {"staged": sum(d["rows"] for d in done), **merged["documents"]}


# ---------------------------------------------------------------------------------------------------- Wikipedia
def _area(area: Any) -> Any:
    from georeset.pipelines.harvest.area import Area, area_from_bbox

    if isinstance(area, Area):
        return area
    if isinstance(area, list | tuple) and len(area) == 4:
        return area_from_bbox(check_bbox(area))
    raise InputError(f"area {area!r} is not an Area or a [minlon, minlat, maxlon, maxlat] box",
                     hint="build one with georeset.pipelines.harvest.resolve_area")


def plan_wikipedia(*, areas: Sequence[Any], langs: Sequence[str]) -> list[dict[str, Any]]:
    """One partition per (language, area): each is one resumable, incremental harvest."""
    from georeset.pipelines.harvest.wikipedia import check_lang

    if not langs:
        raise InputError("no Wikipedia language given", hint="pass --lang en (repeat it or use en,de for several)")
    for lg in langs:
        check_lang(lg)
    if not areas:
        raise InputError("no area to harvest", hint="pass --bbox, --area or --region (or the areas Param)")
    return [{"lang": lg, "area": a} for lg in langs for a in areas]


def run_wikipedia(
    partition: dict[str, Any], *, ws: Workspace, user_agent: str, retrieved_at: dt.datetime,
    api_url: str | None = None, radius_m: float = 10000.0, gslimit: int = 500, batch_pages: int = 500,
    progress: bool = False,
) -> dict[str, Any]:
    """Harvest one language over one area, resumably: progress is kept under ``<workdir>/state/wikipedia/``, so a
    killed and retried partition goes on where it stopped; batches are staged as ``wikipedia-<lang>-<key>-r*-b*``.
    Returns the harvest summary plus ``names`` (the staging pattern to commit)."""
    from georeset.pipelines.harvest.mediawiki import MediaWikiClient, check_user_agent
    from georeset.pipelines.harvest.wikipedia import api_url_for, run_wikipedia_harvest

    check_user_agent(user_agent)
    lang = partition["lang"]

    def sink(rows: list[dict[str, Any]], name: str) -> None:
        stage_or_clear(rows, table="documents", staging_dir=ws.staging_dir, name=name)

    with MediaWikiClient(api_url_for(lang, api_url), user_agent=user_agent, lang=lang, min_interval_s=0.1) as client:
        summary = run_wikipedia_harvest(
            client=client, area=_area(partition["area"]), lang=lang, retrieved_at=naive_utc(retrieved_at),
            sink=sink, state_dir=ws.root / "state" / "wikipedia", radius_m=radius_m, gslimit=gslimit,
            batch_pages=batch_pages, progress=progress,
        )
    return {**summary, "names": [f"wikipedia-{lang}-{summary['key']}-*"]}


def harvest_wikipedia_stage(
    ws: Workspace, *, api_url: str | None = None, bbox: BBox | None = None, area: Any = None, user_agent: str,
    lang: str | Sequence[str] = "en", radius_m: float = 10000.0, gslimit: int = 500, batch_pages: int = 500,
    progress: bool = False, retrieved_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Harvest geotagged Wikipedia articles of ``bbox`` or ``area`` for each language, resumably and incrementally,
    then commit. ``api_url`` may contain ``{lang}``; by default ``https://<lang>.wikipedia.org/w/api.php``."""
    from georeset.pipelines.harvest.mediawiki import check_user_agent

    langs = [lang] if isinstance(lang, str) else list(lang)
    check_user_agent(user_agent)
    if len(langs) > 1 and api_url and "{lang}" not in api_url:
        raise InputError(f"--api-url {api_url} serves one language but {len(langs)} were asked for",
                         hint="put {lang} in the URL, e.g. https://{lang}.wikipedia.org/w/api.php, or drop --api-url")
    the_area = area if area is not None else (list(bbox) if bbox is not None else None)
    parts = plan_wikipedia(areas=[the_area] if the_area is not None else [], langs=langs)
    when = retrieved_at or now()
    per_lang = {}
    names: list[str] = []
    for p in parts:
        r = run_wikipedia(p, ws=ws, user_agent=user_agent, retrieved_at=when, api_url=api_url, radius_m=radius_m,
                          gslimit=gslimit, batch_pages=batch_pages, progress=progress)
        names += r.pop("names")
        per_lang[p["lang"]] = r
    merged = writer.commit(ws, ["documents"], names=names)
    staged = sum(int(v["rows_staged_now"]) for v in per_lang.values())
    return {"staged": staged, **merged["documents"], "langs": per_lang}


# ----------------------------------------------------------------------------------------------------- Overpass
def harvest_overpass_stage(
    ws: Workspace, *, bbox: BBox | None = None, area: Any = None, user_agent: str, endpoint: str | None = None,
    out: str = "geom", place: str | None = None, max_area_deg2: float = 0.25, progress: bool = False,
) -> dict[str, Any]:
    """Named OSM features of a small area through the Overpass API; same rows and ids as the OSM harvest."""
    from georeset.pipelines.harvest.overpass import DEFAULT_ENDPOINT, harvest_overpass

    the_area = _area(area if area is not None else list(bbox) if bbox is not None else None)
    rows, summary = harvest_overpass(area=the_area, user_agent=user_agent, retrieved_at=now(),
                                     endpoint=endpoint or DEFAULT_ENDPOINT, out=out, place=place,
                                     max_area_deg2=max_area_deg2, progress=progress)
    name = "overpass-" + hashlib.sha1(f"{endpoint}|{the_area.key}|{out}".encode()).hexdigest()[:12]
    stage_or_clear(rows, table="documents", staging_dir=ws.staging_dir, name=name)
    merged = writer.commit(ws, ["documents"], names=[name])
    return {"staged": len(rows), **merged["documents"], "overpass": summary}
