"""Export training shards (Parquet with image bytes) + ``manifest.json`` from a catalogue snapshot.

Format: docs/dev/CONTRACTS.md "Training shards". One row per pair; the image is the patch's float32 C-order bytes,
checked against ``patches.checksum`` before it is written.

Nodata is NaN in the shard image, never a value (the token builder drops NaN values). Patch files written before
the imagery stage kept NaN stored nodata as 0.0; a pixel that is exactly 0.0 in *every* band of such a file is
nodata (no real reflectance or backscatter is exactly zero in all bands) and is exported as NaN. ``checksum`` is
the sha256 of the exported image bytes. The per-band normalisation statistics cover valid values only.

Split (geographic hold-out): patch centres are binned into ``block_deg`` x ``block_deg`` lon/lat blocks; blocks
are taken in the order of sha256("<seed>:<block>") into ``test`` until at least ``test_fraction`` of the pairs
are test (at least one block stays ``train``). All patches of a block (S1 and S2) share its split, so test places
are spatially separate from train places at block granularity.

Balance (no patch dominates training): at most ``max_pairs_per_patch`` pairs per patch are exported, the highest
``weight`` first (documents whose own point lies in the patch before toponym pairs), ties in the order of
sha256("<seed>:<pair_id>"); the catalogue keeps every pair. ``None`` exports all.

Crash safety: the old ``manifest.json`` is removed first, shards are written to temp files and renamed, and the
new manifest is written last (temp + rename). A reader that finds a manifest finds complete shards.
``snapshot_id`` = sha256 over the sorted content hashes of the exported pairs, patches and documents; re-exporting
an unchanged catalogue with the same settings finds the same manifest and writes nothing. ``lake_snapshot_id`` is the
DuckLake snapshot the rows were read at: ``SELECT ... FROM pairs AT (VERSION => id)`` (:func:`export_query`) gives
the exact rows again after later harvests.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from georeset.bands import band_metadata
from georeset.errors import CatalogError
from georeset.fileio import atomic_write_bytes, sha256_file

__all__ = ["MAX_PAIRS_PER_PATCH", "SHARD_FORMAT", "SHARD_SCHEMA", "cap_per_patch", "export_query", "export_shards",
           "lake_snapshot", "masked_nodata", "snapshot_id_of", "split_blocks"]

SHARD_FORMAT = "georeset-shards/1"
MAX_PAIRS_PER_PATCH = 16
SHARD_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("doc_id", pa.string()),
        ("patch_id", pa.string()),
        ("text", pa.string()),
        ("split", pa.string()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("sensor", pa.string()),
        ("gsd", pa.float64()),
        ("datetime", pa.string()),
        ("bands", pa.list_(pa.string())),
        ("wavelengths_um", pa.list_(pa.float64())),
        ("bandwidths_um", pa.list_(pa.float64())),
        ("polarizations", pa.list_(pa.string())),
        ("shape", pa.list_(pa.int32())),
        ("image", pa.binary()),
        ("checksum", pa.string()),
        # issue 14: patch quality (clear share, per-pixel mask uint8 C-order size x size: 0 clear, 1 cloud,
        # 2 shadow, 3 nodata, 4 unknown; empty when the patch predates masks)
        ("clear_fraction", pa.float64()),
        ("quality_mask", pa.binary()),
    ]
)
#: Default minimum clear fraction of an exported patch (the imagery fetch default too).
MIN_CLEAR = 0.5

_QUERY = """
SELECT pr.pair_id, pr.doc_id, pr.patch_id, coalesce(pr.weight, pr.score) AS weight, d.text, p.lon, p.lat, p.sensor, p.gsd, p.datetime, p.bands,
       p.size, p.path, p.checksum, coalesce(s.simulated, false) AS simulated, p.clear_fraction, p.mask_path,
       pr.content_hash AS pair_hash, p.content_hash AS patch_hash, d.content_hash AS doc_hash
FROM pairs pr{at}
JOIN documents d{at} ON d.doc_id = pr.doc_id
JOIN patches p{at} ON p.patch_id = pr.patch_id
LEFT JOIN scenes s{at} ON s.scene_id = p.scene_id
ORDER BY pr.pair_id
"""


def lake_snapshot(con: duckdb.DuckDBPyConnection) -> int | None:
    """The current snapshot of the lake USEd by ``con`` (None when the catalogue is not a DuckLake)."""
    try:
        row = con.execute("FROM current_snapshot()").fetchone()
    except duckdb.Error:
        return None
    return int(row[0]) if row else None


def export_query(snapshot: int | None) -> str:
    """The export's SELECT, reading the tables as of lake ``snapshot`` (None: as they are)."""
    return _QUERY.format(at="" if snapshot is None else f" AT (VERSION => {int(snapshot)})")


def _band_meta(name: str) -> tuple[float, float, str]:
    return band_metadata(name)


def snapshot_id_of(rows: list[dict[str, Any]]) -> str:
    hashes = sorted(
        {f"pair:{r['pair_hash']}" for r in rows}
        | {f"patch:{r['patch_hash']}" for r in rows}
        | {f"doc:{r['doc_hash']}" for r in rows}
    )
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def cap_per_patch(rows: list[dict[str, Any]], cap: int | None, *, seed: int = 0) -> list[dict[str, Any]]:
    """At most ``cap`` rows per ``patch_id``: highest ``weight`` first, ties by sha256("<seed>:<pair_id>")."""
    if cap is None:
        return rows
    by_patch: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_patch[r["patch_id"]].append(r)
    keep: set[str] = set()
    for group in by_patch.values():
        group.sort(key=lambda r: (-float(r.get("weight") or 0.0),
                                  hashlib.sha256(f"{seed}:{r['pair_id']}".encode()).hexdigest()))
        keep.update(r["pair_id"] for r in group[:cap])
    return [r for r in rows if r["pair_id"] in keep]


def _block(lon: float, lat: float, block_deg: float) -> str:
    return f"{math.floor(lon / block_deg)}:{math.floor(lat / block_deg)}"


def split_blocks(rows: list[dict[str, Any]], *, test_fraction: float, seed: int, block_deg: float) -> dict[str, str]:
    """block -> 'train' | 'test' (see the module docstring)."""
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[_block(r["lon"], r["lat"], block_deg)] += 1
    order = sorted(counts, key=lambda b: hashlib.sha256(f"{seed}:{b}".encode()).hexdigest())
    total = sum(counts.values())
    out = {b: "train" for b in order}
    n_test = 0
    for b in order[:-1]:  # the last block in hash order always stays train
        if test_fraction <= 0 or n_test >= test_fraction * total:
            break
        out[b] = "test"
        n_test += counts[b]
    return out


def _catalog_path(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return str(row[0]) if row and row[0] else ":memory:"


def _load_image(data_dir: Path, r: dict[str, Any]) -> np.ndarray:
    path = data_dir / r["path"]
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CatalogError(
            f"patch {r['patch_id']}: cannot read {path}: {exc}",
            hint="re-run the imagery stage (georeset imagery fetch) to rewrite the missing/corrupt patch file",
        ) from exc
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    digest = hashlib.sha256(arr.tobytes()).hexdigest()
    if digest != r["checksum"]:
        raise CatalogError(
            f"patch {r['patch_id']}: checksum of {path} ({digest[:12]}...) does not match the catalogue "
            f"({str(r['checksum'])[:12]}...)",
            hint="the pixel file changed after cataloguing: delete it and re-run the imagery stage",
        )
    n = len(r["bands"])
    if arr.shape != (n, r["size"], r["size"]):
        raise CatalogError(f"patch {r['patch_id']}: {path} has shape {arr.shape}, expected {(n, r['size'], r['size'])}")
    return arr


def masked_nodata(img: np.ndarray) -> np.ndarray:
    """``img`` with legacy nodata (pixels exactly 0.0 in every band) as NaN; a copy only when something changes."""
    legacy = np.all(img == 0.0, axis=0)
    if not legacy.any():
        return img
    out = img.copy()
    out[:, legacy] = np.nan
    return out


def _load_mask(data_dir: Path, r: dict[str, Any]) -> bytes:
    """The patch's quality mask (uint8 bytes), or b'' when it has none."""
    if not r.get("mask_path"):
        return b""
    try:
        m = np.load(data_dir / r["mask_path"])
    except (OSError, ValueError):
        return b""
    return np.ascontiguousarray(m, dtype=np.uint8).tobytes()


def _reusable(manifest_path: Path, snapshot_id: str, split_rule: str, rows_per_shard: int) -> dict[str, Any] | None:
    if not manifest_path.exists():
        return None
    try:
        m = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if m.get("snapshot_id") != snapshot_id or m.get("split_rule") != split_rule:
        return None
    shards = m.get("shards", [])
    if any(s["rows"] > rows_per_shard for s in shards) or (len(shards) > 1 and shards[0]["rows"] != rows_per_shard):
        return None
    for s in shards:
        p = manifest_path.parent / s["path"]
        if not p.exists() or sha256_file(p) != s["sha256"]:
            return None
    return dict(m)


def export_shards(
    con: duckdb.DuckDBPyConnection,
    *,
    out_dir: Path,
    data_dir: Path,
    rows_per_shard: int = 512,
    test_fraction: float = 0.2,
    seed: int = 0,
    block_deg: float = 0.02,
    max_pairs_per_patch: int | None = MAX_PAIRS_PER_PATCH,
    min_clear: float | None = MIN_CLEAR,
) -> dict[str, Any]:
    """Write ``shard-NNNNN.parquet`` files and ``manifest.json`` under ``out_dir``; returns the manifest.

    ``min_clear``: pairs whose patch has a known ``clear_fraction`` below it are left out (``None``: all)."""
    if rows_per_shard < 1 or not 0 <= test_fraction < 1 or (max_pairs_per_patch is not None and max_pairs_per_patch < 1):
        raise CatalogError(f"bad export settings rows_per_shard={rows_per_shard} test_fraction={test_fraction} "
                           f"max_pairs_per_patch={max_pairs_per_patch}")
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    lake_snap = lake_snapshot(con)  # the lineage: AT (VERSION => lake_snap) gives these rows after later commits
    cur = con.execute(export_query(lake_snap))
    cols = [c[0] for c in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    if min_clear is not None:
        rows = [r for r in rows if r["clear_fraction"] is None or r["clear_fraction"] + 1e-9 >= min_clear]
    if not rows:
        raise CatalogError("no pairs to export", hint="run the imagery and pairing stages (and merge) first")
    rows = cap_per_patch(rows, max_pairs_per_patch, seed=seed)
    snapshot_id = snapshot_id_of(rows)
    split_rule = (
        f"geographic block hold-out: patch centres binned into {block_deg:g} deg lon/lat blocks; blocks taken in "
        f"order of sha256('{seed}:<block>') into 'test' until >= {test_fraction:g} of pairs; the rest 'train'"
        + (f"; at most {max_pairs_per_patch} pairs per patch, highest weight first" if max_pairs_per_patch else "")
        + (f"; patches with clear_fraction >= {min_clear:g}" if min_clear is not None else "")
    )
    manifest_path = out_dir / "manifest.json"
    reused = _reusable(manifest_path, snapshot_id, split_rule, rows_per_shard)
    if reused is not None:
        return reused
    blocks = split_blocks(rows, test_fraction=test_fraction, seed=seed, block_deg=block_deg)
    for r in rows:
        r["split"] = blocks[_block(r["lon"], r["lat"], block_deg)]
    rows.sort(key=lambda r: hashlib.sha256(f"{seed}:{r['pair_id']}".encode()).hexdigest())
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    stats: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # band -> [n, sum, sum of squares]
    shards = []
    for i in range(0, len(rows), rows_per_shard):
        chunk = rows[i : i + rows_per_shard]
        records = []
        for r in chunk:
            img = masked_nodata(_load_image(data_dir, r))
            meta = [_band_meta(b) for b in r["bands"]]
            if r["split"] == "train":
                for b, band in enumerate(r["bands"]):
                    v = img[b][np.isfinite(img[b])].astype(np.float64)
                    s = stats[band]
                    s[0] += v.size
                    s[1] += float(v.sum())
                    s[2] += float((v * v).sum())
            dt = r["datetime"]
            records.append(
                {
                    "sample_id": r["pair_id"], "doc_id": r["doc_id"], "patch_id": r["patch_id"], "text": r["text"],
                    "split": r["split"], "lon": float(r["lon"]), "lat": float(r["lat"]), "sensor": r["sensor"],
                    "gsd": float(r["gsd"]), "datetime": dt.isoformat() + "Z" if dt is not None else "",
                    "bands": list(r["bands"]), "wavelengths_um": [m[0] for m in meta],
                    "bandwidths_um": [m[1] for m in meta], "polarizations": [m[2] for m in meta],
                    "shape": list(img.shape), "image": img.tobytes(),
                    "checksum": hashlib.sha256(img.tobytes()).hexdigest(),
                    "clear_fraction": r["clear_fraction"], "quality_mask": _load_mask(data_dir, r),
                }  # fmt: skip
            )
        name = f"shard-{i // rows_per_shard:05d}.parquet"
        final = out_dir / name
        tmp = out_dir / f".{name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(pa.Table.from_pylist(records, schema=SHARD_SCHEMA), tmp, compression="zstd")
        os.replace(tmp, final)
        shards.append({"path": name, "rows": len(records), "sha256": sha256_file(final)})
    for stale in out_dir.glob("shard-*.parquet"):
        if stale.name not in {s["path"] for s in shards}:
            stale.unlink()
    norm = {}
    for band, (n, s1, s2) in sorted(stats.items()):
        if n == 0:  # nodata everywhere in train: no statistics (readers fall back, with a warning)
            continue
        mean = s1 / n
        norm[band] = {"mean": mean, "std": math.sqrt(max(s2 / n - mean * mean, 0.0))}
    splits = {"train": sum(r["split"] == "train" for r in rows), "test": sum(r["split"] == "test" for r in rows)}
    manifest = {
        "format": SHARD_FORMAT,
        "snapshot_id": snapshot_id,
        "lake_snapshot_id": lake_snap,
        "catalog": _catalog_path(con),
        "created_at": datetime.now(UTC).isoformat(),
        "shards": shards,
        "splits": splits,
        "split_rule": split_rule,
        "norm": norm,
        "simulated": any(bool(r["simulated"]) for r in rows),
    }
    counts = {
        "pairs": len(rows),
        "patches": len({r["patch_id"] for r in rows}),
        "documents": len({r["doc_id"] for r in rows}),
        **splits,
    }
    con.execute(
        "INSERT INTO snapshots (snapshot_id, created_at, counts, manifest) SELECT ?, ?, ?, ? "
        "WHERE NOT EXISTS (SELECT 1 FROM snapshots WHERE snapshot_id = ?)",
        [snapshot_id, datetime.now(UTC).replace(tzinfo=None), json.dumps(counts), str(manifest_path), snapshot_id],
    )
    atomic_write_bytes(manifest_path, json.dumps(manifest, indent=2).encode())
    return manifest
