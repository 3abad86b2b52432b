"""Geoparse stage: documents without toponyms -> ``toponyms`` (spaCy NER + the GeoNames gazetteer).

Contract: :func:`plan` (reads the catalogue) writes the documents to parse as Parquet batch files plus a gazetteer
snapshot (and, with feed points, :data:`FEED_POINTS_FILE`); :func:`run` parses one batch file into
``toponyms/geoparse-<batch>``; the commit takes those names. The CLI (:func:`geoparse_stage`) and the Airflow DAG
(``dags/geoparse.py``) both go through :func:`feed_points_input`, :func:`plan` and :func:`run`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.stages import writer
from georeset.stages._base import CLI_INTERVAL, batched, now, stage_or_clear
from georeset.stages.gazetteer import gazetteer_stage
from georeset.timeutil import naive_utc
from georeset.workspace import Workspace

__all__ = ["FEED_POINTS_FILE", "plan", "run", "geoparse_stage", "plan_dir", "default_workers", "feed_points_input",
           "read_feed_points", "write_feed_points"]

#: the feed points a plan resolved, next to its batch files (read by :func:`run`)
FEED_POINTS_FILE = "feed_points.json"
FeedPoints = dict[str, tuple[float, float]]

_PLACE_COLS = ("place_id", "name", "feature_class", "feature_code", "country_code", "admin1_code", "population",
               "lon", "lat", "extent_m")


def plan_dir(ws: Workspace, key: str) -> Path:
    return ws.root / "partitions" / "geoparse" / key


def feed_points_input(spec: str | Path | None) -> FeedPoints | str | None:
    """``--feed-points`` as :func:`plan` takes it: a file's points (a bad file raises :class:`InputError` here, so
    callers check it before any work), ``"self"`` (learned by :func:`plan` from the catalogue), or ``None``."""
    if spec is None or str(spec) == "self":
        return None if spec is None else "self"
    from georeset.pipelines.geoparse.feeds import load_feed_points

    return load_feed_points(spec)


def write_feed_points(out_dir: Path, points: FeedPoints) -> None:
    """Store ``points`` beside a plan's batch files, where :func:`run` finds them."""
    (Path(out_dir) / FEED_POINTS_FILE).write_text(json.dumps({k: list(v) for k, v in sorted(points.items())}),
                                                 encoding="utf-8")


def read_feed_points(out_dir: Path) -> FeedPoints | None:
    """The points :func:`write_feed_points` stored in ``out_dir``, or ``None``."""
    path = Path(out_dir) / FEED_POINTS_FILE
    if not path.is_file():
        return None
    return {k: (float(v[0]), float(v[1])) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def plan(con: Any, *, out_dir: Path, batch_docs: int = 500, feed_points: FeedPoints | str | None = None) -> list[str]:
    """Write the documents that have no toponyms yet, ``batch_docs`` per Parquet file, and a gazetteer snapshot.

    Replaces ``out_dir``; returns the batch files (``docs-<first doc_id hash>``) in doc_id order; the gazetteer
    goes to ``out_dir/gazetteer/{places,place_names}.parquet``. ``feed_points`` (:func:`feed_points_input`): points
    per feed, or ``"self"`` to learn them from the toponyms already in the catalogue
    (:func:`~georeset.pipelines.geoparse.feeds.feed_points_from_catalog`), stored as ``out_dir/``
    :data:`FEED_POINTS_FILE` for :func:`run`.
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
        path = out_dir / f"docs-{hashlib.sha1(batch[0].encode('utf-8')).hexdigest()[:16]}.parquet"
        con.execute(
            f"COPY (SELECT d.doc_id, d.text, d.lon, d.lat, d.licence, d.content_hash, d.source, d.url {todo} "
            "AND d.doc_id BETWEEN ? AND ? ORDER BY d.doc_id) "
            f"TO '{path.as_posix()}' (FORMAT parquet)", [batch[0], batch[-1]],
        )
        files.append(str(path))
    if feed_points == "self":
        from georeset.pipelines.geoparse.feeds import feed_points_from_catalog

        feed_points = feed_points_from_catalog(con)
    if isinstance(feed_points, dict):
        write_feed_points(out_dir, feed_points)
    return files


def load_parser(gazetteer_dir: Path, nlp: Any = None) -> Any:
    import pyarrow.parquet as pq

    from georeset.pipelines.geoparse import Geoparser

    gaz = Path(gazetteer_dir)
    return Geoparser.from_rows(pq.read_table(gaz / "places.parquet"), pq.read_table(gaz / "place_names.parquet"),
                               **({"nlp": nlp} if nlp is not None else {}))


def _doc_point(d: dict[str, Any], feed_points: FeedPoints | None) -> tuple[Any, Any]:
    """The document's own point, else its feed's (:mod:`georeset.pipelines.geoparse.feeds`), else none."""
    if (d.get("lon") is not None and d.get("lat") is not None) or not feed_points:
        return d.get("lon"), d.get("lat")
    from georeset.pipelines.geoparse.feeds import point_for

    return point_for(feed_points, d.get("source"), d.get("url"))


def run(batch_file: str | Path, *, gazetteer_dir: Path, staging_dir: Path, processed_at: dt.datetime,
        batch_size: int = 64, parser: Any = None) -> dict[str, Any]:
    """Geoparse one batch file of :func:`plan`; stage ``toponyms/geoparse-<batch>``. Documents without a point of
    their own get their feed's point when the plan stored feed points (:data:`FEED_POINTS_FILE`)."""
    import pyarrow.parquet as pq

    from georeset.pipelines.geoparse.store import toponym_rows

    parser = parser or load_parser(gazetteer_dir)
    docs = pq.read_table(batch_file).to_pylist()
    feed_points = read_feed_points(Path(batch_file).parent)
    when = naive_utc(processed_at)
    rows: list[dict[str, Any]] = []
    parsed = parser.parse_many(((d["text"], *_doc_point(d, feed_points)) for d in docs), batch_size=batch_size)
    for d, tops in zip(docs, parsed, strict=True):
        rows.extend(toponym_rows(d["doc_id"], d["content_hash"], d["licence"], tops, processed_at=when,
                                 method=parser.method))
    name = f"geoparse-{Path(batch_file).stem}"
    stage_or_clear(rows, table="toponyms", staging_dir=Path(staging_dir), name=name)
    return {"documents": len(docs), "toponyms": len(rows), "names": [name]}


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# Below this many documents per worker a pool costs more (each worker loads spaCy and the gazetteer, ~4 s) than
# it saves, and the documents are parsed in this process.
MIN_DOCS_PER_WORKER = 200

# One parser per worker process, loaded once by the pool's initializer (spaCy + the gazetteer snapshot).
_WORKER_PARSER: Any = None


def _init_worker(gazetteer_dir: str) -> None:
    global _WORKER_PARSER
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one core per worker: no BLAS/OpenMP threads fighting over the cores
    _WORKER_PARSER = load_parser(Path(gazetteer_dir))


def _run_in_worker(batch_file: str, gazetteer_dir: str, staging_dir: str, processed_at: dt.datetime,
                   batch_size: int) -> dict[str, Any]:
    return run(batch_file, gazetteer_dir=Path(gazetteer_dir), staging_dir=Path(staging_dir),
               processed_at=processed_at, batch_size=batch_size, parser=_WORKER_PARSER)


def run_batches(files: list[str], *, gazetteer_dir: Path, staging_dir: Path, processed_at: dt.datetime,
                batch_size: int = 64, workers: int = 1, progress: bool = False) -> list[dict[str, Any]]:
    """:func:`run` over every batch file: in this process (``workers`` 1) or in a pool of ``workers`` processes,
    each loading the parser once and taking batch files as it frees up. Returns the results in file order."""
    from tqdm import tqdm

    if workers < 1:
        raise InputError(f"workers={workers} must be >= 1", hint="pass --workers 1 or more (default: all cores)")
    workers = min(workers, len(files))
    if workers <= 1:
        parser = load_parser(gazetteer_dir) if files else None
        return [run(f, gazetteer_dir=gazetteer_dir, staging_dir=staging_dir, processed_at=processed_at,
                    batch_size=batch_size, parser=parser)
                for f in tqdm(files, disable=not progress, unit="batch", desc="geoparse")]
    # spawn: a fresh interpreter per worker (no forked DuckDB/spaCy threads); each loads the parser once
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(str(gazetteer_dir),)) as pool:
        futures = [pool.submit(_run_in_worker, f, str(gazetteer_dir), str(staging_dir), processed_at, batch_size)
                   for f in files]
        return [f.result() for f in tqdm(futures, disable=not progress, unit="batch", desc="geoparse")]


def geoparse_stage(ws: Workspace, *, batch_size: int = 64, progress: bool = True, docs_per_batch: int = 500,
                   min_population: int = 500, processed_at: dt.datetime | None = None,
                   workers: int | None = None, feed_points: str | Path | None = None) -> dict[str, Any]:
    """Load the gazetteer if needed, plan, parse every batch, commit.

    ``workers`` processes (default: all cores; fewer when there are under :data:`MIN_DOCS_PER_WORKER` documents
    per worker) take batches of at most ``docs_per_batch`` documents, each loading the parser once.
    ``feed_points``: a CSV/JSON file of points per feed, or ``"self"`` to learn them from the toponyms already in
    the catalogue (:mod:`georeset.pipelines.geoparse.feeds`); a document without a point of its own gets its
    feed's point as the geoparser's document point."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise InputError(f"workers={workers} must be >= 1", hint="pass --workers 1 or more (default: all cores)")
    points = feed_points_input(feed_points)  # a bad file fails before any work
    gazetteer_stage(ws, min_population=min_population)
    when = processed_at or now()
    out_dir = plan_dir(ws, CLI_INTERVAL)
    con = writer.open_writer(ws)
    try:
        if workers > 1:  # no fewer batches than workers, so that every worker has documents to parse
            n_todo = int(con.execute("SELECT count(*) FROM documents d WHERE NOT EXISTS "
                                     "(SELECT 1 FROM toponyms t WHERE t.doc_id = d.doc_id)").fetchone()[0])
            workers = max(1, min(workers, n_todo // MIN_DOCS_PER_WORKER))
            docs_per_batch = max(1, min(docs_per_batch, -(-n_todo // workers)))
        files = plan(con, out_dir=out_dir, batch_docs=docs_per_batch, feed_points=points)
    finally:
        con.close()
    stored = read_feed_points(out_dir)
    done = run_batches(files, gazetteer_dir=out_dir / "gazetteer", staging_dir=ws.staging_dir, processed_at=when,
                       batch_size=batch_size, workers=workers, progress=progress)
    # this run's batches, and any left by an in-process run killed after its commit (a re-plan no longer lists
    # their documents, so only the pattern finds them; their rows are upserted again, changing nothing)
    merged = writer.commit(ws, ["toponyms"], names=[n for d in done for n in d["names"]] + ["geoparse-docs-*"])
    shutil.rmtree(out_dir, ignore_errors=True)
    out = {"documents_parsed": sum(d["documents"] for d in done), **merged["toponyms"]}
    if points is not None:
        out["feed_points"] = len(stored or {})
    return out
