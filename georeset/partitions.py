"""Partition-level, stage-only versions of the stages, for parallel (Airflow-mapped) tasks. No Airflow here.

A *partition* is one piece of work with a key (a tile, a batch of documents, a batch of grid cells) inside one
data interval. Partition functions

- write Parquet staging files whose names are built from the partition key and the interval (``partition_name``),
  so a retried or re-run partition overwrites its own files instead of adding copies;
- never open the DuckDB catalogue (not even read-only), so any number can run at once next to the writer.

``plan_*`` functions read the catalogue and write the inputs of the partitions; ``merge_staged``,
``pair_and_merge``, ``record_run`` and ``record_evaluation`` write it. Run those where the single catalogue writer
runs (the one-slot ``georeset_catalog_writer`` pool in Airflow). Timestamps (``retrieved_at``, ``processed_at``)
are arguments: callers pass the data interval or the logical date, never the wall clock.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from georeset.errors import InputError
from georeset.fileio import atomic_write_bytes

__all__ = [
    "BBox",
    "interval_key",
    "partition_name",
    "tile_key",
    "tile_grid",
    "wikipedia_tiles",
    "batched",
    "harvest_osm_partition",
    "harvest_wikipedia_partition",
    "plan_geoparse",
    "geoparse_partition",
    "plan_imagery",
    "imagery_partition",
    "merge_staged",
    "pair_and_merge",
    "export_snapshot",
    "training_run_id",
    "train_partition",
    "record_run",
    "evaluate_run",
    "record_evaluation",
    "sample_world_inputs",
]

BBox = tuple[float, float, float, float]
T = TypeVar("T")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


# ---------------------------------------------------------------------------------------------- partition keys
def _naive_utc(when: datetime) -> datetime:
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)


def interval_key(start: datetime, end: datetime | None = None) -> str:
    """``20240101T000000Z`` or ``20240101T000000Z-20240102T000000Z`` (UTC) for a data interval."""
    fmt = "%Y%m%dT%H%M%SZ"
    s = _naive_utc(start).strftime(fmt)
    return s if end is None else f"{s}-{_naive_utc(end).strftime(fmt)}"


def partition_name(prefix: str, key: str, interval: str) -> str:
    """Deterministic, file-name-safe staging name for one partition; long keys are shortened with a hash."""
    safe_key = _SAFE.sub("_", key).strip("_")
    if len(safe_key) > 80:
        safe_key = safe_key[:40] + "-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    return f"{_SAFE.sub('_', prefix)}-{safe_key}-{_SAFE.sub('_', interval)}"


def tile_key(tile: Sequence[float]) -> str:
    """``minlon_minlat_maxlon_maxlat`` rounded to 1e-5 degrees (about a metre)."""
    return "_".join(f"{float(v):.5f}" for v in tile)


def _check_bbox(bbox: Sequence[float]) -> BBox:
    from georeset.pipelines.harvest import validate_bbox

    return validate_bbox(tuple(bbox))


def tile_grid(bbox: Sequence[float], *, tile_deg: float) -> list[BBox]:
    """Square-ish tiles of at most ``tile_deg`` degrees covering ``bbox`` (row by row, south-west first)."""
    if not tile_deg > 0:
        raise InputError(f"tile_deg={tile_deg} must be > 0", hint="use e.g. tile_deg=0.05")
    minlon, minlat, maxlon, maxlat = _check_bbox(bbox)
    nx = max(1, math.ceil(round((maxlon - minlon) / tile_deg, 9)))
    ny = max(1, math.ceil(round((maxlat - minlat) / tile_deg, 9)))
    dx, dy = (maxlon - minlon) / nx, (maxlat - minlat) / ny
    return [
        (minlon + i * dx, minlat + j * dy, minlon + (i + 1) * dx if i < nx - 1 else maxlon,
         maxlat if j == ny - 1 else minlat + (j + 1) * dy)
        for j in range(ny) for i in range(nx)
    ]


def wikipedia_tiles(bbox: Sequence[float], *, radius_m: float = 10000.0) -> list[BBox]:
    """The tiles the Wikipedia harvester itself searches (circles of radius <= ``radius_m``)."""
    from georeset.pipelines.harvest import tiles_for_bbox

    return [(t.minlon, t.minlat, t.maxlon, t.maxlat) for t in tiles_for_bbox(_check_bbox(bbox), radius_m)]


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (the unit that one mapped task handles)."""
    if size < 1:
        raise InputError(f"batch size {size} must be >= 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _stage_or_clear(rows: list[dict[str, Any]], *, table: str, staging_dir: Path, name: str) -> Path | None:
    """Stage ``rows`` as ``<table>/<name>.parquet``; with no rows, remove an older file of that name."""
    from georeset.data_catalog import stage

    path = stage(rows, table=table, staging_dir=staging_dir, name=name)
    if path is None:
        (Path(staging_dir) / table / f"{name}.parquet").unlink(missing_ok=True)
    return path


# ------------------------------------------------------------------------------------------------------ harvest
def harvest_osm_partition(
    *,
    staging_dir: Path,
    pbfs: Sequence[Path | str],
    tiles: Sequence[Sequence[float]],
    retrieved_at: datetime,
    interval: str,
    limit_per_tile: int | None = None,
) -> dict[str, Any]:
    """Harvest named OSM features of ``pbfs`` inside each tile; stage one ``documents`` file per tile.

    File: ``documents/osm-<tile>-<interval>.parquet``. Features that straddle tiles appear in both files and are
    deduplicated by ``doc_id`` at merge time.
    """
    from georeset.pipelines.harvest import harvest_osm

    staged, files = 0, []
    for tile in tiles:
        box = _check_bbox(tile)
        rows: dict[str, dict[str, Any]] = {}
        for pbf in pbfs:
            for row in harvest_osm(Path(pbf), bbox=box, retrieved_at=retrieved_at, allow_empty=True):
                rows.setdefault(row["doc_id"], row)
        out = sorted(rows.values(), key=lambda r: r["doc_id"])
        out = out[:limit_per_tile] if limit_per_tile is not None else out
        path = _stage_or_clear(out, table="documents", staging_dir=Path(staging_dir),
                               name=partition_name("osm", tile_key(box), interval))
        staged += len(out)
        if path is not None:
            files.append(str(path))
    return {"tiles": len(tiles), "rows": staged, "files": files}


def harvest_wikipedia_partition(
    *,
    staging_dir: Path,
    tiles: Sequence[Sequence[float]],
    lang: str,
    user_agent: str,
    retrieved_at: datetime,
    interval: str,
    api_url: str | None = None,
    radius_m: float = 10000.0,
    limit_per_tile: int | None = None,
) -> dict[str, Any]:
    """Harvest geotagged ``lang`` Wikipedia articles per tile; stage ``documents/wikipedia-<lang>-<tile>-<interval>``."""
    from georeset.pipelines.harvest import harvest_wikipedia

    staged, files = 0, []
    for tile in tiles:
        box = _check_bbox(tile)
        rows = harvest_wikipedia(api_url=api_url or None, bbox=box, user_agent=user_agent, lang=lang,
                                 retrieved_at=retrieved_at, radius_m=radius_m, limit=limit_per_tile)
        path = _stage_or_clear(rows, table="documents", staging_dir=Path(staging_dir),
                               name=partition_name(f"wikipedia-{lang}", tile_key(box), interval))
        staged += len(rows)
        if path is not None:
            files.append(str(path))
    return {"tiles": len(tiles), "lang": lang, "rows": staged, "files": files}


# ----------------------------------------------------------------------------------------------------- geoparse
_PLACE_COLS = ("place_id", "name", "feature_class", "feature_code", "country_code", "admin1_code", "population",
               "lon", "lat")


def plan_geoparse(con: Any, *, out_dir: Path, batch_docs: int = 500) -> list[str]:
    """Write the documents that have no toponyms yet, ``batch_docs`` per Parquet file, and a gazetteer snapshot.

    Reads the catalogue ``con``; replaces ``out_dir``. Returns the batch files (``docs-<first doc_id hash>``), in
    doc_id order; the gazetteer goes to ``out_dir/gazetteer/{places,place_names}.parquet``.
    """
    if batch_docs < 1:
        raise InputError(f"batch_docs={batch_docs} must be >= 1")
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "gazetteer").mkdir(parents=True)
    n_names = int(con.execute("SELECT count(*) FROM place_names").fetchone()[0])
    if not n_names:
        raise InputError("the catalogue's gazetteer (places, place_names) is empty",
                         hint="load it first (georeset.stages.gazetteer_stage)")
    con.execute(f"COPY (SELECT {', '.join(_PLACE_COLS)} FROM places ORDER BY place_id) "
                f"TO '{(out_dir / 'gazetteer' / 'places.parquet').as_posix()}' (FORMAT parquet)")
    con.execute("COPY (SELECT name_key, place_id, is_primary FROM place_names ORDER BY name_key, place_id) "
                f"TO '{(out_dir / 'gazetteer' / 'place_names.parquet').as_posix()}' (FORMAT parquet)")
    todo = "FROM documents d WHERE NOT EXISTS (SELECT 1 FROM toponyms t WHERE t.doc_id = d.doc_id)"
    ids = [r[0] for r in con.execute(f"SELECT d.doc_id {todo} ORDER BY d.doc_id").fetchall()]
    files = []
    for batch in batched(ids, batch_docs):
        name = "docs-" + hashlib.sha1(batch[0].encode("utf-8")).hexdigest()[:16]
        path = out_dir / f"{name}.parquet"
        con.execute(
            f"COPY (SELECT d.doc_id, d.text, d.lon, d.lat, d.licence, d.content_hash {todo} "
            "AND d.doc_id BETWEEN ? AND ? ORDER BY d.doc_id) "
            f"TO '{path.as_posix()}' (FORMAT parquet)", [batch[0], batch[-1]],
        )
        files.append(str(path))
    return files


def geoparse_partition(
    *, batch_file: Path, gazetteer_dir: Path, staging_dir: Path, processed_at: datetime, batch_size: int = 64,
    nlp: Any = None,
) -> dict[str, Any]:
    """Geoparse one batch file of :func:`plan_geoparse`; stage ``toponyms/geoparse-<batch>.parquet``."""
    import pyarrow.parquet as pq

    from georeset.pipelines.geoparse import Geoparser
    from georeset.pipelines.geoparse.store import toponym_rows

    gaz = Path(gazetteer_dir)
    parser = Geoparser.from_rows(pq.read_table(gaz / "places.parquet"), pq.read_table(gaz / "place_names.parquet"),
                                 **({"nlp": nlp} if nlp is not None else {}))
    docs = pq.read_table(batch_file).to_pylist()
    when = _naive_utc(processed_at)
    rows: list[dict[str, Any]] = []
    parsed = parser.parse_many(((d["text"], d["lon"], d["lat"]) for d in docs), batch_size=batch_size)
    for d, tops in zip(docs, parsed, strict=True):
        rows.extend(toponym_rows(d["doc_id"], d["content_hash"], d["licence"], tops, processed_at=when))
    _stage_or_clear(rows, table="toponyms", staging_dir=Path(staging_dir), name=f"geoparse-{Path(batch_file).stem}")
    return {"documents": len(docs), "toponyms": len(rows)}


# ------------------------------------------------------------------------------------------------------ imagery
def plan_imagery(con: Any, *, gsd: float, size: int, max_cells: int = 0, cells_per_batch: int = 50
                 ) -> list[list[dict[str, Any]]]:
    """Grid cells (one patch each) holding the located documents, in batches of plain dicts."""
    from georeset.pipelines.imagery import grid_cells

    pts = con.execute("SELECT lon, lat FROM documents WHERE lon IS NOT NULL AND lat IS NOT NULL ORDER BY doc_id"
                      ).fetchall()
    if not pts:
        raise InputError("no documents with a location in the catalogue", hint="harvest documents first")
    cells = grid_cells([(float(a), float(b)) for a, b in pts], cell_m=gsd * size)
    cells = cells[:max_cells] if max_cells else cells
    return batched([asdict(c) for c in cells], cells_per_batch)


def imagery_partition(
    *,
    stac_url: str,
    cells: Sequence[Mapping[str, Any]],
    collections: Sequence[str],
    datetime_range: str,
    staging_dir: Path,
    data_dir: Path,
    retrieved_at: datetime,
    interval: str,
    gsd: float = 10.0,
    size: int = 32,
    max_cloud: float | None = None,
) -> dict[str, Any]:
    """Fetch one patch per cell and sensor; stage ``scenes``/``patches`` as ``imagery-<cells>-<interval>``.

    Patch pixels go to ``data_dir/patches/<patch_id>.npy`` (content-addressed, written atomically).
    """
    import duckdb

    from georeset.pipelines.imagery import GridCell, fetch_patches

    locs = [GridCell(**dict(c)) for c in cells]
    name = partition_name("imagery", ",".join(c.key for c in locs), interval)
    tmp = Path(staging_dir) / ".partitions" / f"{name}.{uuid.uuid4().hex}"
    con = duckdb.connect()  # stage-only: an empty patches table, so every patch of the partition is (re)staged
    con.execute("CREATE TABLE patches (patch_id VARCHAR)")
    try:
        res = fetch_patches(con, stac_url=stac_url, locations=locs, collections=list(collections),
                            datetime=datetime_range, staging_dir=tmp, data_dir=Path(data_dir), gsd=gsd, size=size,
                            max_cloud=max_cloud, retrieved_at=retrieved_at, progress=False)
        counts = {}
        for table in ("scenes", "patches"):
            produced = sorted((tmp / table).glob("*.parquet"))
            final = Path(staging_dir) / table / f"{name}.parquet"
            final.parent.mkdir(parents=True, exist_ok=True)
            if produced:
                os.replace(produced[0], final)
            else:
                final.unlink(missing_ok=True)
            counts[table] = len(produced)
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"cells": len(locs), "patches_read": res.patches_read, "failures": len(res.failures),
            "no_item": res.no_item, "name": name}


# ------------------------------------------------------------------------------------- the single writer's steps
def _publish(db_path: Path, con: Any) -> None:
    """Refresh the read-only snapshot analysts query after a merge (see data_catalog/publish.py)."""
    from georeset.data_catalog.publish import publish

    publish(db_path, con)


def merge_staged(*, db_path: Path, staging_dir: Path, tables: Sequence[str]) -> dict[str, dict[str, int]]:
    """Merge the staged files of ``tables`` into the catalogue (the single-writer step)."""
    from georeset.data_catalog import merge, open_catalog

    con = open_catalog(str(db_path))
    try:
        out = {}
        for t in tables:
            r = merge(con, table=t, staging_dir=Path(staging_dir))
            out[t] = {"files": r.files, "staged": r.staged_rows, "inserted": r.inserted, "updated": r.updated,
                      "total": r.total_rows}
        _publish(db_path, con)
        return out
    finally:
        con.close()


def pair_and_merge(*, db_path: Path, staging_dir: Path, retrieved_at: datetime) -> dict[str, dict[str, int]]:
    """Merge staged scenes and patches, then pair documents with patches and merge the pairs."""
    from georeset.data_catalog import merge, open_catalog
    from georeset.pipelines.pairing import pair_documents

    con = open_catalog(str(db_path))
    try:
        out = {}
        for t in ("scenes", "patches"):
            r = merge(con, table=t, staging_dir=Path(staging_dir))
            out[t] = {"staged": r.staged_rows, "inserted": r.inserted, "total": r.total_rows}
        pair_documents(con, staging_dir=Path(staging_dir), retrieved_at=_naive_utc(retrieved_at))
        r = merge(con, table="pairs", staging_dir=Path(staging_dir))
        out["pairs"] = {"staged": r.staged_rows, "inserted": r.inserted, "total": r.total_rows}
        _publish(db_path, con)
        return out
    finally:
        con.close()


def _read_snapshot(manifest: Path) -> str | None:
    try:
        return str(json.loads(Path(manifest).read_text())["snapshot_id"])
    except (OSError, ValueError, KeyError):
        return None


def export_snapshot(
    *, db_path: Path, shards_dir: Path, data_dir: Path, test_fraction: float = 0.2, seed: int = 0,
    block_deg: float = 0.005,
) -> dict[str, Any]:
    """Export the shards (reusing an identical snapshot) and record the snapshot (writer step); says whether the
    snapshot is new."""
    from georeset.data_catalog import open_catalog
    from georeset.data_catalog.export import export_shards

    manifest_path = Path(shards_dir) / "manifest.json"
    previous = _read_snapshot(manifest_path)
    con = open_catalog(str(db_path))  # export_shards records the snapshot in the `snapshots` table
    try:
        manifest = export_shards(con, out_dir=Path(shards_dir), data_dir=Path(data_dir), test_fraction=test_fraction,
                                 seed=seed, block_deg=block_deg)
    finally:
        con.close()
    return {"snapshot_id": manifest["snapshot_id"], "previous_snapshot_id": previous,
            "new": manifest["snapshot_id"] != previous, "manifest": str(manifest_path),
            "splits": dict(manifest["splits"])}


# ----------------------------------------------------------------------------------------------------- training
def training_run_id(*, snapshot_id: str, config: str, nproc: int, steps: int, seed: int = 0, batch_size: int = 16,
                    nnodes: int = 1) -> str:
    """The run id; for one node it is the one ``georeset.stages.train_stage`` gives, so runs are shared."""
    nodes = f"|{nnodes}" if nnodes != 1 else ""
    return hashlib.sha1(f"{snapshot_id}|{config}|{nproc}|{steps}|{seed}|{batch_size}{nodes}".encode()).hexdigest()[:16]


Launcher = Callable[..., None]


def train_partition(
    *,
    shards_dir: Path,
    runs_dir: Path,
    config: str = "tiny",
    snapshot_id: str | None = None,
    nproc: int = 2,
    nnodes: int = 1,
    steps: int = 60,
    seed: int = 0,
    batch_size: int = 16,
    launcher: Launcher | None = None,
) -> dict[str, Any]:
    """Train on the shard snapshot in ``shards_dir`` (which must be ``snapshot_id`` when given).

    A finished run with the same id is reused. ``launcher`` (e.g. a Kubernetes Job submitter) is called with
    ``manifest, out, config, nproc, nnodes, steps, extra_args`` and must leave ``out/train_summary.json`` and
    ``out/checkpoint.pt``; without one, training runs here under ``torchrun`` (one node).
    """
    manifest = Path(shards_dir) / "manifest.json"
    current = _read_snapshot(manifest)
    if current is None:
        raise InputError(f"{manifest} is missing or unreadable", hint="run the build_shards DAG (or `georeset export`)")
    if snapshot_id and snapshot_id != current:
        raise InputError(f"shard snapshot {snapshot_id} is not the one in {manifest} ({current})",
                         hint="leave the snapshot Param empty to train on the current one, or re-export it")
    run_id = training_run_id(snapshot_id=current, config=config, nproc=nproc, steps=steps, seed=seed,
                             batch_size=batch_size, nnodes=nnodes)
    out = Path(runs_dir) / run_id
    summary_path, ckpt = out / "train_summary.json", out / "checkpoint.pt"
    base = {"run_id": run_id, "snapshot_id": current, "checkpoint": str(ckpt), "manifest": str(manifest),
            "config": {"config": config, "nproc": nproc, "nnodes": nnodes, "steps": steps, "seed": seed,
                       "batch_size": batch_size}}
    from georeset.models.launch import finished_run

    done = finished_run(out, steps=steps)  # an interrupted attempt's checkpoint is resumed, never reused
    if done is not None:
        return {**base, "reused": True, "summary": done}
    extra = ("--seed", str(seed))
    if launcher is None:
        if nnodes != 1:
            raise InputError(f"nnodes={nnodes} needs the kubernetes launcher", hint="set launcher=kubernetes")
        from georeset.models.launch import run_training

        summary = run_training(manifest=manifest, out=out, config=config, nproc=nproc, steps=steps,
                               batch_size=batch_size, extra_args=extra)
    else:
        launcher(manifest=manifest, out=out, config=config, nproc=nproc, nnodes=nnodes, steps=steps,
                 batch_size=batch_size, extra_args=extra)
        if not summary_path.is_file():
            raise InputError(f"the launcher finished but {summary_path} is missing",
                             hint="the training pods must mount the same data volume as the Airflow workers")
        summary = json.loads(summary_path.read_text())
    return {**base, "reused": False, "summary": summary}


def record_run(*, db_path: Path, run: Mapping[str, Any], started_at: datetime) -> None:
    """Upsert the ``runs`` row of a :func:`train_partition` result (writer step). ``finished_at`` is the time the
    summary file was written."""
    from georeset.data_catalog import open_catalog
    from georeset.stages import _code_version

    summary_file = Path(run["checkpoint"]).parent / "train_summary.json"
    finished = datetime.fromtimestamp(summary_file.stat().st_mtime, UTC).replace(tzinfo=None, microsecond=0)
    con = open_catalog(str(db_path))
    try:
        con.execute(
            "INSERT INTO runs (run_id, kind, snapshot_id, config, code_version, started_at, finished_at, status, "
            "metrics, checkpoint) VALUES (?, 'train', ?, ?, ?, ?, ?, 'finished', ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, "
            "metrics = CASE WHEN runs.metrics IS NULL THEN excluded.metrics ELSE runs.metrics END",
            [run["run_id"], run["snapshot_id"], json.dumps(run["config"]), _code_version(), _naive_utc(started_at),
             finished, json.dumps(run["summary"], default=str), str(run["checkpoint"])],
        )
    finally:
        con.close()


def evaluate_run(*, checkpoint: Path, manifest: Path, out_json: Path | None = None) -> dict[str, Any]:
    """Recall@k of ``checkpoint`` on the test split; written to ``out_json`` (default: next to the checkpoint)."""
    from georeset.models.evaluate import evaluate

    metrics = dict(evaluate(checkpoint=Path(checkpoint), manifest=Path(manifest)))
    out = Path(out_json) if out_json is not None else Path(checkpoint).parent / "evaluation.json"
    atomic_write_bytes(out, json.dumps(metrics, indent=1, default=str).encode())
    return metrics


def record_evaluation(*, db_path: Path, run_id: str, metrics: Mapping[str, Any]) -> None:
    """Store ``metrics`` under ``evaluation`` in the run's ``metrics`` (writer step)."""
    from georeset.data_catalog import open_catalog

    con = open_catalog(str(db_path))
    try:
        row = con.execute("SELECT metrics FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise InputError(f"no run {run_id!r} in the catalogue", hint="record the training run first")
        merged = json.loads(row[0]) if row[0] else {}
        merged["evaluation"] = dict(metrics)
        con.execute("UPDATE runs SET metrics = ? WHERE run_id = ?", [json.dumps(merged, default=str), run_id])
    finally:
        con.close()


# ------------------------------------------------------------------------------------------------ sample world
def sample_world_inputs(world_dir: Path) -> dict[str, Any]:
    """What the sample world built under ``world_dir`` offers as defaults: extracts, areas, dates, STAC dir."""
    stamp = Path(world_dir) / "world.json"
    if not stamp.is_file():
        raise InputError(f"no sample world at {world_dir} (no world.json)",
                         hint="pass the pbfs/areas Params, or build it first (the georeset_sample_world DAG, or "
                              "`georeset demo --workdir DIR`)")
    doc = json.loads(stamp.read_text())
    w = doc.get("world", doc)
    regions = [list(map(float, b)) for b in (w.get("regions") or {}).values()] or [list(map(float, w["bbox"]))]
    return {"pbfs": [str(p) for p in w["osm_pbfs"]], "areas": regions, "dates": sorted(w.get("dates") or []),
            "stac_dir": str(w["stac_dir"]), "collections": sorted((w.get("collections") or {}).values())}
