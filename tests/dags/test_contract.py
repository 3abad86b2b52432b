"""Contract: the CLI and the production DAGs run the same stage code, so the same inputs give the same catalogue.

One tiny sample world and one STAC server feed two work directories: one is filled by `georeset` CLI commands
(partitions run in process), the other by ``dag.test()`` of the production DAGs (harvest_osm -> geoparse ->
pair_imagery -> build_shards -> train_encoder -> evaluate, partitions mapped by real Airflow, with other batch
sizes). The catalogues are then compared table by table: the same rows (timestamps aside, the work directory
written as <W>), the same run and snapshot ids, the same search indexes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("run_dag_tests.py")
CHAIN = ["harvest_osm", "geoparse", "pair_imagery", "build_shards", "train_encoder", "evaluate"]
MAX_DOCS, MAX_CELLS, SIZE, STEPS = 120, 24, 16, 2
TABLES = ("documents", "places", "place_names", "toponyms", "scenes", "patches", "pairs", "runs", "snapshots")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _cli(*args: str) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "georeset.cli", *args], capture_output=True, text=True, env=_env(),
                       cwd=REPO, timeout=900)
    assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-4000:])
    return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _snapshot(db: Path, workdir: Path, world: Path) -> dict[str, Any]:
    """Rows of every table (timestamps dropped, the world and the workdir replaced by <WORLD> and <W>), plus
    run/snapshot ids and indexes."""
    import duckdb

    from georeset.data_catalog.sandbox import analyst_connection

    ac = analyst_connection(db, timeout_s=0)  # the lake read-only + the derived search index, as readers see them
    con = ac.con
    try:
        out: dict[str, Any] = {}
        for t in (*TABLES, "embeddings"):
            cols = [(c, typ) for c, typ in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                "AND table_schema = 'main' AND table_catalog = 'lake' ORDER BY ordinal_position", [t]).fetchall()]
            keep = [c for c, typ in cols if "TIMESTAMP" not in typ and c not in ("metrics", "code_version", "vec")
                    and not typ.startswith(("GEOMETRY", "FLOAT[", "DOUBLE["))]
            rows = con.execute(f"SELECT {', '.join(keep)} FROM {t}").fetchall()
            out[t] = sorted(repr(r).replace(str(world), "<WORLD>").replace(str(workdir), "<W>") for r in rows)
        out["run_metrics_keys"] = sorted(
            (r[0], sorted(json.loads(r[1]) if r[1] else []), sorted(json.loads(r[1]).get("evaluation", {})))
            for r in con.execute("SELECT run_id, metrics FROM runs").fetchall())
        out["fts"] = con.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = "
                                 "'fts_main_documents'").fetchone()[0]
        out["indexes"] = sorted(r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall())
        # the first word of the first document that BM25 indexes (stopwords such as "from", "above" are not
        # indexed), the same in both catalogues when their documents and indexes are: its ranked BM25 hits
        text = con.execute("SELECT text FROM documents ORDER BY doc_id LIMIT 1").fetchone()[0]
        out["bm25_word"], out["bm25_hits"] = None, []
        for word in re.findall(r"[A-Za-z]{4,}", text):
            hits = [r[0] for r in con.execute(
                "SELECT doc_id FROM (SELECT doc_id, fts_main_documents.match_bm25(doc_id, ?) AS s FROM documents) "
                "WHERE s IS NOT NULL ORDER BY s DESC, doc_id", [word]).fetchall()]
            if hits:
                out["bm25_word"], out["bm25_hits"] = word, hits
                break
    except duckdb.Error as exc:  # pragma: no cover - shows which catalogue lacks what
        raise AssertionError(f"{db}: {exc}") from exc
    finally:
        ac.close()
    return out


@pytest.fixture(scope="module")
def catalogues(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from georeset.pipelines.sample_world import build_sample_world, serve_stac

    base = tmp_path_factory.mktemp("contract")
    cli_dir, dag_dir = base / "cli", base / "dag"
    world = build_sample_world(base / "world", scale="tiny")
    for d in (cli_dir, dag_dir):  # one world (zero-shot labels, STAC items) seen from both work directories
        d.mkdir()
        (d / "world").symlink_to(base / "world", target_is_directory=True)
    pbf, bbox = str(world.osm_pbfs[0]), list(next(iter(world.regions.values())))
    dates = sorted(world.dates)
    start, end = dates[0][:10], dates[-1][:10]
    with serve_stac(world.stac_dir) as url:
        # the production DAGs, other partition sizes; started first, so both paths run side by side (separate
        # work directories, one STAC server): the CLI's wall time hides under the DAGs'
        per_dag = {
            "harvest_osm": {"pbfs": [pbf], "areas": [bbox], "tile_deg": 1, "tiles_per_batch": 1,
                            "max_docs_per_tile": MAX_DOCS},
            "geoparse": {"docs_per_batch": 37},
            "pair_imagery": {"stac_url": url, "start_date": start, "end_date": end, "size": SIZE,
                             "max_cells": MAX_CELLS, "cells_per_batch": 7},
            "train_encoder": {"nproc": 1, "steps": STEPS},
        }
        cmd = [sys.executable, str(RUNNER), "--no-retries", "--home", str(base / "airflow_home"),
               "--conf", json.dumps({"workdir": str(dag_dir)}),
               *[a for k, v in per_dag.items() for a in ("--conf-for", f"{k}={json.dumps(v)}")], *CHAIN]
        dags = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=base)
        try:
            # the CLI path
            w = ["--workdir", str(cli_dir)]
            _cli("harvest", "osm", "--pbf", pbf, "--bbox", ",".join(map(str, bbox)), "--max-docs", str(MAX_DOCS),
                 *w)
            _cli("geoparse", "run", *w)
            _cli("imagery", "fetch", "--stac-url", url, "--datetime", f"{start}T00:00:00Z/{end}T23:59:59Z",
                 "--size", str(SIZE), "--max-cells", str(MAX_CELLS), *w)
            _cli("pair", *w)
            _cli("export", *w)
            cli_train = _cli("train", "--nproc", "1", "--steps", str(STEPS), *w)
            _cli("evaluate", *w)
            _cli("index", *w)
            out, err = dags.communicate(timeout=1500)
        finally:
            if dags.poll() is None:
                dags.kill()
                dags.communicate()
        r = subprocess.CompletedProcess(cmd, dags.returncode, out, err)
    assert r.returncode == 0, (r.stdout[-6000:] + r.stderr[-3000:])
    runs = {d["dag_id"]: d for d in (json.loads(x[len("RESULT "):]) for x in r.stdout.splitlines()
                                     if x.startswith("RESULT {")) if "dag_id" in d}
    return {"cli": _snapshot(cli_dir / "georeset.duckdb", cli_dir, base / "world"),
            "dag": _snapshot(dag_dir / "georeset.duckdb", dag_dir, base / "world"), "runs": runs,
            "cli_train": cli_train}


@pytest.mark.slow
def test_dag_partitions_were_mapped(catalogues: dict[str, Any]) -> None:
    for dag_id in CHAIN:
        assert catalogues["runs"][dag_id]["state"].endswith("success"), catalogues["runs"][dag_id]
    tasks = catalogues["runs"]["geoparse"]["tasks"]
    assert sum(k.startswith("parse_batch[") for k in tasks) >= 3  # 120 documents in batches of 37
    assert sum(k.startswith("fetch_cells[") for k in catalogues["runs"]["pair_imagery"]["tasks"]) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("table", [*TABLES, "embeddings"])
def test_cli_and_dags_build_the_same_table(catalogues: dict[str, Any], table: str) -> None:
    cli, dag = catalogues["cli"][table], catalogues["dag"][table]
    assert cli, f"{table} is empty on the CLI path"
    assert cli == dag, f"{table}: {len(cli)} rows (CLI) vs {len(dag)} (DAGs); first differences: " \
                       f"{sorted(set(cli) ^ set(dag))[:3]}"


@pytest.mark.slow
def test_same_run_ids_evaluations_and_indexes(catalogues: dict[str, Any]) -> None:
    cli, dag = catalogues["cli"], catalogues["dag"]
    assert cli["run_metrics_keys"] == dag["run_metrics_keys"]
    (run_id, keys, evaluation), = cli["run_metrics_keys"]
    assert run_id == catalogues["cli_train"]["run_id"]
    assert "evaluation" in keys and "zero_shot" in evaluation  # both paths evaluate zero-shot land cover
    assert cli["fts"] == dag["fts"] == 1 and cli["bm25_word"] == dag["bm25_word"]
    assert cli["bm25_hits"] == dag["bm25_hits"] and cli["bm25_hits"]  # BM25 built by both paths, same ranking
    assert cli["indexes"] == dag["indexes"] and cli["indexes"]
