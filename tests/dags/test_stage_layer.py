"""The stage layer's partitions (what the mapped tasks and the CLI both run): deterministic names; an interrupted
and retried harvest partition leaves no duplicates once committed; one run-id formula."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from georeset import stages as P
from georeset.stages import harvest, writer
from georeset.workspace import Workspace

WHEN = datetime(2024, 3, 2)
INTERVAL = P.interval_key(datetime(2024, 3, 1), datetime(2024, 3, 2))


@pytest.fixture(scope="module")
def pbf() -> Path:
    import pyrosm

    return Path(pyrosm.get_data("test_pbf"))


@pytest.fixture(scope="module")
def tiles(pbf: Path) -> list[P.BBox]:
    from georeset.pipelines.harvest import harvest_osm

    rows = harvest_osm(pbf, retrieved_at=WHEN)
    lons, lats = [r["lon"] for r in rows], [r["lat"] for r in rows]
    box = (min(lons) - 1e-4, min(lats) - 1e-4, max(lons) + 1e-4, max(lats) + 1e-4)
    w = (box[2] - box[0]) / 3  # three strips: few PBF reads, and features that straddle strips
    return [(box[0] + i * w, box[1], box[0] + (i + 1) * w if i < 2 else box[2], box[3]) for i in range(3)]


def test_keys_are_deterministic_and_file_safe() -> None:
    assert INTERVAL == "20240301T000000Z-20240302T000000Z"
    a = P.partition_name("osm", P.tile_key((24.9, 60.1, 25.0, 60.2)), INTERVAL)
    assert a == P.partition_name("osm", P.tile_key((24.9, 60.1, 25.0, 60.2)), INTERVAL)
    assert a == "osm-24.90000_60.10000_25.00000_60.20000-20240301T000000Z-20240302T000000Z"
    long = P.partition_name("imagery", ",".join(["EPSG:32635:320:1:2"] * 50), INTERVAL)
    assert len(long) < 140 and "/" not in long and ":" not in long


def test_tile_grid_covers_the_box_exactly() -> None:
    box = (24.9, 60.1, 25.03, 60.2)
    t = P.tile_grid(box, tile_deg=0.05)
    assert len(t) == 3 * 2
    assert min(x[0] for x in t) == box[0] and max(x[2] for x in t) == box[2]
    assert min(x[1] for x in t) == box[1] and max(x[3] for x in t) == box[3]
    area = sum((x[2] - x[0]) * (x[3] - x[1]) for x in t)
    assert area == pytest.approx((box[2] - box[0]) * (box[3] - box[1]))
    assert P.batched(t, 4) == [t[:4], t[4:]]


def _part(pbf: Path, tiles: list[P.BBox]) -> dict:  # type: ignore[type-arg]
    return {"pbfs": [str(pbf)], "tiles": [list(t) for t in tiles], "interval": INTERVAL}


def _merge_count(ws: Workspace, names: list[str]) -> tuple[int, int]:
    from georeset.data_catalog import open_catalog

    writer.commit(ws, ["documents"], names=names)
    con = open_catalog(str(ws.db_path))
    try:
        n, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM documents").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    return int(n), int(distinct)


def test_interrupted_and_retried_harvest_partition_leaves_no_duplicates(
    tmp_path: Path, pbf: Path, tiles: list[P.BBox], monkeypatch: pytest.MonkeyPatch
) -> None:
    import georeset.data_catalog as dc

    # Reference: one clean run of the partition, merged.
    clean = Workspace.at(tmp_path / "clean")
    ref = harvest.run_osm(_part(pbf, tiles), staging_dir=clean.staging_dir, retrieved_at=WHEN)
    assert ref["rows"] > 0
    ref_count = _merge_count(clean, ref["names"])
    assert ref_count[0] == ref_count[1] > 0

    # Attempt 1 is killed after staging the first tile's file.
    ws = Workspace.at(tmp_path / "work")
    work = ws.root
    real_stage, calls = dc.staging.stage, []

    def dying_stage(*a, **kw):  # type: ignore[no-untyped-def]
        if calls:
            raise KeyboardInterrupt("worker killed mid-partition")
        calls.append(kw["name"])
        return real_stage(*a, **kw)

    monkeypatch.setattr(dc.staging, "stage", dying_stage)
    with pytest.raises(KeyboardInterrupt):
        harvest.run_osm(_part(pbf, tiles), staging_dir=ws.staging_dir, retrieved_at=WHEN)
    monkeypatch.setattr(dc.staging, "stage", real_stage)
    partial = sorted((work / "staging" / "documents").glob("*.parquet"))
    assert [p.stem for p in partial] == calls  # one complete file, no temp files left visible to the merge

    # Attempt 2 (the retry) and a third run of the same partition: same file names, overwritten in place.
    first = harvest.run_osm(_part(pbf, tiles), staging_dir=ws.staging_dir, retrieved_at=WHEN)
    names = sorted(p.name for p in (work / "staging" / "documents").glob("*.parquet"))
    again = harvest.run_osm(_part(pbf, tiles), staging_dir=ws.staging_dir, retrieved_at=WHEN)
    assert sorted(p.name for p in (work / "staging" / "documents").glob("*.parquet")) == names
    assert first["rows"] == again["rows"] == ref["rows"]
    assert all(n.endswith(f"-{INTERVAL}.parquet") and n.startswith("osm-") for n in names)

    assert first["names"] == ref["names"] and sorted(f"{n}.parquet" for n in first["names"]) == names
    assert _merge_count(ws, first["names"]) == ref_count
    # Re-running the partition after the commit and committing again changes nothing.
    harvest.run_osm(_part(pbf, tiles), staging_dir=ws.staging_dir, retrieved_at=WHEN)
    assert _merge_count(ws, first["names"]) == ref_count


def test_training_run_id_covers_config_contents_and_token_version(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import georeset.models.token_embed as te
    from georeset.models.config import load_config

    base = P.training_run_id(snapshot_id="snap", config="tiny", nproc=2, steps=60)
    assert base == P.training_run_id(snapshot_id="snap", config="tiny", nproc=2, steps=60)
    assert P.training_run_id(snapshot_id="snap", config="tiny", nproc=2, steps=60, nnodes=2) != base
    assert P.training_run_id(snapshot_id="snap2", config="tiny", nproc=2, steps=60) != base
    # the same config file, edited: a new run id
    cfg = tmp_path / "mine.json"
    d = load_config("tiny").to_dict()
    cfg.write_text(json.dumps(d))
    first = P.training_run_id(snapshot_id="snap", config=str(cfg), nproc=2, steps=60)
    cfg.write_text(json.dumps({**d, "embed_dim": int(d["embed_dim"]) * 2}))
    assert P.training_run_id(snapshot_id="snap", config=str(cfg), nproc=2, steps=60) != first
    # a new token-embedding version: a new run id
    monkeypatch.setattr(te, "TOKEN_EMBEDDING_VERSION", f"{te.TOKEN_EMBEDDING_VERSION}-next")
    assert P.training_run_id(snapshot_id="snap", config="tiny", nproc=2, steps=60) != base


def test_train_refuses_a_foreign_snapshot(tmp_path: Path) -> None:
    from georeset.errors import InputError
    from georeset.stages import train

    ws = Workspace.at(tmp_path)
    ws.shards_dir.mkdir()
    (ws.shards_dir / "manifest.json").write_text('{"snapshot_id": "aaa"}')
    with pytest.raises(InputError, match="not the one"):
        train.train(ws, snapshot_id="bbb")
    with pytest.raises(InputError, match="kubernetes"):
        train.train(ws, nnodes=2)
