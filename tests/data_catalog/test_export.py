"""export_shards: contract columns, image bytes + checksum, geographic split, stable snapshot id, skip, mismatch."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from georeset.data_catalog import merge, open_catalog, stage
from georeset.data_catalog.export import export_shards
from georeset.errors import CatalogError
from georeset.models.data import row_to_tokens

NOW = datetime(2024, 7, 1)
COLUMNS = ["sample_id", "doc_id", "patch_id", "text", "split", "lon", "lat", "sensor", "gsd", "datetime", "bands",
           "wavelengths_um", "bandwidths_um", "polarizations", "shape", "image", "checksum",
           "clear_fraction", "quality_mask"]  # fmt: skip


def _h(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _catalogue(tmp: Path) -> Any:
    con = open_catalog(str(tmp / "cat.duckdb"))
    staging, data = tmp / "staging", tmp / "data"
    (data / "patches").mkdir(parents=True)
    rng = np.random.default_rng(0)
    docs, patches, pairs = [], [], []
    for k in range(10):  # 10 cells spread over 0.2 deg of longitude, one S2 and one S1 patch each
        lon, lat = 24.80 + 0.02 * k, 60.17
        doc = f"osm:node/{k}"
        docs.append({"doc_id": doc, "source": "osm", "source_id": f"node/{k}", "text": f"place {k}", "lon": lon,
                     "lat": lat, "licence": "ODbL-1.0", "retrieved_at": NOW, "content_hash": _h(doc)})  # fmt: skip
        for sensor, bands in (("S2", ["B02", "B8A"]), ("S1", ["VV", "VH"])):
            pid = f"{sensor}-{k}"
            img = rng.random((len(bands), 4, 4), dtype=np.float32)
            if (k, sensor) == (0, "S1"):
                img[:, :2, :] = 0.0  # nodata as an older imagery stage wrote it
            if (k, sensor) == (1, "S2"):
                img[:, 3, :] = np.nan  # nodata as the imagery stage writes it
            np.save(data / "patches" / f"{pid}.npy", img)
            patches.append({"patch_id": pid, "scene_id": f"{sensor}/scene", "sensor": sensor, "lon": lon, "lat": lat,
                            "crs": "EPSG:32635", "gsd": 10.0, "size": 4, "bands": bands, "datetime": NOW,
                            "path": f"patches/{pid}.npy", "checksum": hashlib.sha256(img.tobytes()).hexdigest(),
                            "source": "test", "licence": "simulated (GEO-ReSeT sample world, CC0-1.0)",
                            "retrieved_at": NOW, "content_hash": _h("patch", pid)})  # fmt: skip
            pairs.append({"pair_id": f"{doc}|{pid}", "doc_id": doc, "patch_id": pid, "how": "point_in_patch",
                          "score": 1.0, "source": "test", "licence": "x", "retrieved_at": NOW,
                          "content_hash": _h("pair", doc, pid)})  # fmt: skip
    scenes = [{"scene_id": s, "collection": s.split("/")[0], "item_id": "scene", "simulated": True, "item_json": "{}",
               "source": "test", "licence": "x", "retrieved_at": NOW, "content_hash": _h(s)} for s in ("S2/scene", "S1/scene")]  # fmt: skip
    for table, rows in (("documents", docs), ("patches", patches), ("pairs", pairs), ("scenes", scenes)):
        stage(rows, table=table, staging_dir=staging)
        merge(con, table=table, staging_dir=staging)
    return con


def test_export_contract_split_and_snapshot(tmp_path: Path) -> None:
    con = _catalogue(tmp_path)
    out, data = tmp_path / "shards", tmp_path / "data"
    m = export_shards(con, out_dir=out, data_dir=data, rows_per_shard=8, test_fraction=0.2, seed=0)
    assert m["format"] == "georeset-shards/1" and m["simulated"] is True and len(m["snapshot_id"]) == 64
    assert [s["rows"] for s in m["shards"]] == [8, 8, 4] and m["splits"]["train"] + m["splits"]["test"] == 20
    assert m["splits"]["test"] >= 4 and m["splits"]["train"] >= 10 and m["catalog"].endswith("lake/metadata.sqlite")
    assert set(m["norm"]) == {"B02", "B8A", "VV", "VH"} and 0.2 < m["norm"]["B02"]["mean"] < 0.8
    assert all(np.isfinite(v["mean"]) and np.isfinite(v["std"]) for v in m["norm"].values())  # NaN skipped
    assert json.loads((out / "manifest.json").read_text()) == m
    tbl = pq.read_table([out / s["path"] for s in m["shards"]][0])
    assert tbl.column_names == COLUMNS
    rows = [r for s in m["shards"] for r in pq.read_table(out / s["path"]).to_pylist()]
    for r in rows:
        img = np.frombuffer(r["image"], dtype=np.float32).reshape(r["shape"])
        assert hashlib.sha256(r["image"]).hexdigest() == r["checksum"]
        src = np.load(data / "patches" / f"{r['patch_id']}.npy")
        if r["patch_id"] == "S1-0":  # legacy nodata 0.0 is exported as NaN, never as a value
            assert np.isnan(img[:, :2, :]).all() and np.isfinite(img[:, 2:, :]).all()
            src[:, :2, :] = np.nan
        assert np.array_equal(img, src, equal_nan=True)
        n_valid = int(np.isfinite(img).sum())
        assert row_to_tokens(r, m["norm"], max_tokens=None).shape[0] == n_valid  # masked values make no tokens
        if r["sensor"] == "S1":
            assert r["polarizations"] == ["VV", "VH"] and all(np.isnan(r["wavelengths_um"]))
        else:
            assert r["wavelengths_um"] == [0.4924, 0.8647] and r["polarizations"] == ["", ""]
    # geographic hold-out: a cell's S1 and S2 samples share the split; test cells are not train cells
    split_of: dict[float, set[str]] = {}
    for r in rows:
        split_of.setdefault(r["lon"], set()).add(r["split"])
    assert all(len(v) == 1 for v in split_of.values())
    assert con.execute("SELECT count(*) FROM snapshots WHERE snapshot_id = ?", [m["snapshot_id"]]).fetchone()[0] == 1
    # unchanged catalogue: same snapshot, nothing rewritten
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = export_shards(con, out_dir=out, data_dir=data, rows_per_shard=8, test_fraction=0.2, seed=0)
    assert again == m and {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    # a fresh export elsewhere gives the same snapshot id and the same shard bytes
    other = export_shards(con, out_dir=tmp_path / "other", data_dir=data, rows_per_shard=8, test_fraction=0.2, seed=0)
    assert other["snapshot_id"] == m["snapshot_id"] and [s["sha256"] for s in other["shards"]] == [s["sha256"] for s in m["shards"]]


def test_export_checksum_mismatch_fails_clearly(tmp_path: Path) -> None:
    con = _catalogue(tmp_path)
    np.save(tmp_path / "data" / "patches" / "S2-3.npy", np.zeros((2, 4, 4), dtype=np.float32))
    out = tmp_path / "shards"
    with pytest.raises(CatalogError, match="S2-3.*does not match"):
        export_shards(con, out_dir=out, data_dir=tmp_path / "data", rows_per_shard=8)
    assert not (out / "manifest.json").exists()


def test_export_min_clear_and_quality_mask(tmp_path: Path) -> None:
    """Patches under the minimum clear fraction stay out of the shards (default 0.5); the per-pixel quality mask
    travels with each sample (issue 14)."""
    con = _catalogue(tmp_path)
    out, data = tmp_path / "shards", tmp_path / "data"
    mask = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 2, 3, 3], [0, 0, 0, 0]], dtype=np.uint8)
    np.save(data / "patches" / "S2-0.mask.npy", mask)
    con.execute("UPDATE patches SET clear_fraction = 0.2 WHERE patch_id IN ('S2-1', 'S2-2')")
    con.execute("UPDATE patches SET clear_fraction = 0.5, mask_path = 'patches/S2-0.mask.npy' WHERE patch_id = 'S2-0'")
    m = export_shards(con, out_dir=out, data_dir=data, rows_per_shard=8)
    rows = {r["patch_id"]: r for s in m["shards"] for r in pq.read_table(out / s["path"]).to_pylist()}
    assert "S2-1" not in rows and "S2-2" not in rows and len(rows) == 18
    assert np.array_equal(np.frombuffer(rows["S2-0"]["quality_mask"], dtype=np.uint8).reshape(4, 4), mask)
    assert rows["S2-0"]["clear_fraction"] == 0.5 and rows["S1-1"]["quality_mask"] == b""
    assert "clear_fraction >= 0.5" in m["split_rule"]
    every = export_shards(con, out_dir=tmp_path / "all", data_dir=data, rows_per_shard=8, min_clear=None)
    assert sum(s["rows"] for s in every["shards"]) == 20


def test_the_lake_snapshot_of_a_shard_reproduces_its_rows_after_later_harvests(tmp_path: Path) -> None:
    """Lineage: the manifest names the DuckLake snapshot it was read at; after more rows are committed (and one
    exported row changed), the rows AT (VERSION => that snapshot) are exactly the shard's rows."""
    from georeset.data_catalog.export import export_query

    con = _catalogue(tmp_path)
    out, data = tmp_path / "shards", tmp_path / "data"
    m = export_shards(con, out_dir=out, data_dir=data, rows_per_shard=8, test_fraction=0.2, seed=0,
                      max_pairs_per_patch=None, min_clear=None)
    snap = m["lake_snapshot_id"]
    assert isinstance(snap, int)
    shard = pq.read_table([out / s["path"] for s in m["shards"]]).to_pylist()
    shard_rows = sorted((r["sample_id"], r["doc_id"], r["patch_id"], r["text"]) for r in shard)
    # a later harvest: a new document and pair, and a changed text of an exported document
    staging = tmp_path / "staging"
    stage([{"doc_id": "osm:node/99", "source": "osm", "source_id": "node/99", "text": "new place", "lon": 24.8,
            "lat": 60.17, "licence": "ODbL-1.0", "retrieved_at": NOW, "content_hash": _h("new")},
           {"doc_id": "osm:node/0", "source": "osm", "source_id": "node/0", "text": "renamed place", "lon": 24.8,
            "lat": 60.17, "licence": "ODbL-1.0", "retrieved_at": NOW, "content_hash": _h("renamed")}],
          table="documents", staging_dir=staging)
    merge(con, table="documents", staging_dir=staging)
    stage([{"pair_id": "osm:node/99|S2-0", "doc_id": "osm:node/99", "patch_id": "S2-0", "how": "point_in_patch",
            "score": 1.0, "source": "test", "licence": "x", "retrieved_at": NOW, "content_hash": _h("p99")}],
          table="pairs", staging_dir=staging)
    merge(con, table="pairs", staging_dir=staging)
    now_rows = con.execute("SELECT pair_id FROM pairs").fetchall()
    assert len(now_rows) == len(shard_rows) + 1
    at = sorted((r[0], r[1], r[2], r[4]) for r in con.execute(export_query(snap)).fetchall())
    assert at == shard_rows
    assert ("osm:node/0|S2-0", "osm:node/0", "S2-0", "place 0") in at  # the text as exported, not as renamed
