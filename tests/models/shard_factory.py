"""Generator of tiny synthetic training shards in the ``georeset-shards/1`` format (CONTRACTS.md).

Patches are S2-like (13, 10 or 3 bands, reflectance) and S1-like (VV/VH in dB) images of different sizes. Each
patch shows one of a few land-cover classes (a class-specific spectrum / backscatter plus noise) and pairs with
one to three texts about that class; one document is paired with two patches. Every 13-band and 3-band S2
patch also has a co-located S1 patch (``patch-<p>-s1``) paired with the *same* documents, as export writes the S1
and S2 views of one place (same ``doc_id``, different ``patch_id`` and ``sensor``). Patches east of a longitude are
the geographic test split. Fixed seed, so the same call writes the same bytes.

    python tests/models/shard_factory.py OUT_DIR [N_PATCHES [SIZE_FACTOR]]
    # writes OUT_DIR/shard-0000{0,1}.parquet + manifest.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

S2_ALL = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
S2_WL = [0.4427, 0.4924, 0.5598, 0.6646, 0.7041, 0.7405, 0.7828, 0.8328, 0.8647, 0.9451, 1.3735, 1.6137, 2.2024]
S2_BW = [0.021, 0.066, 0.036, 0.031, 0.015, 0.015, 0.020, 0.106, 0.021, 0.020, 0.031, 0.091, 0.175]
CLASSES = {
    # name: (reflectance level per S2 band, (VV dB, VH dB)), texts
    "park": (np.array([.03, .04, .07, .04, .10, .25, .30, .35, .36, .30, .01, .20, .10]), (-9.0, -15.0),
             ["a park", "a green park with trees", "city park"]),
    "harbour": (np.array([.05, .06, .05, .03, .02, .02, .02, .02, .02, .01, .00, .01, .01]), (-20.0, -27.0),
                ["a harbour", "boats in the harbour", "the port basin"]),
    "town": (np.array([.10, .12, .13, .14, .15, .16, .17, .18, .18, .15, .01, .22, .20]), (-4.0, -11.0),
             ["a town centre", "dense buildings", "an old town"]),
    "field": (np.array([.06, .07, .10, .12, .15, .20, .24, .27, .28, .25, .01, .30, .22]), (-12.0, -19.0),
              ["a wheat field", "farmland", "an open field"]),
}
LAYOUTS = [  # (sensor, band indices or SAR, size, gsd)
    ("S2", list(range(13)), 8, 10.0),
    ("S2", [1, 2, 3], 6, 10.0),
    ("S2", [1, 2, 3, 4, 5, 6, 7, 8, 11, 12], 4, 20.0),
    ("S1", None, 8, 10.0),
    ("S2", [3], 1, 60.0),
]


def _image(rng: np.random.Generator, cls: str, layout: tuple[Any, ...], size_factor: int = 1
           ) -> tuple[np.ndarray, dict[str, Any]]:
    sensor, idx, size, gsd = layout
    size *= size_factor
    spec, sar, _ = CLASSES[cls]
    if sensor == "S1":
        img = np.stack([np.full((size, size), v) for v in sar]) + rng.normal(0, 1.5, (2, size, size))
        meta = {"bands": ["VV", "VH"], "wavelengths_um": [float("nan")] * 2, "bandwidths_um": [float("nan")] * 2,
                "polarizations": ["VV", "VH"]}
    else:
        img = spec[idx][:, None, None] * (1 + rng.normal(0, 0.1, (len(idx), size, size)))
        meta = {"bands": [S2_ALL[i] for i in idx], "wavelengths_um": [S2_WL[i] for i in idx],
                "bandwidths_um": [S2_BW[i] for i in idx], "polarizations": [""] * len(idx)}
    img = img.astype(np.float32)
    if size > 2:
        img[0, 0, 0] = np.nan  # one nodata value
    return img, {"sensor": sensor, "gsd": gsd, **meta, "shape": list(img.shape)}


def write_synthetic_shards(out: Path, *, seed: int = 0, n_patches: int = 40, test_lon: float = 25.05,
                           colocated_s1: bool = True, size_factor: int = 1) -> Path:
    """Write two shards and ``manifest.json`` into ``out``; returns the manifest path.

    ``size_factor`` multiplies every patch side (benchmarks: 4 gives 32x32 instead of 8x8 patches)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rng_s1 = np.random.default_rng(seed + 1000)  # separate stream: the S2-only rows stay as they were
    classes = list(CLASSES)
    rows: list[dict[str, Any]] = []
    shared_doc = None
    for p in range(n_patches):
        cls = classes[p % len(classes)]
        lon = 24.9 + 0.2 * p / n_patches
        lat = 60.15 + 0.01 * float(rng.random())
        img, meta = _image(rng, cls, LAYOUTS[p % len(LAYOUTS)], size_factor)
        texts = CLASSES[cls][2]
        views = [(f"patch-{p}", "", img, meta)]
        if colocated_s1 and p % len(LAYOUTS) in (0, 1):
            s1_img, s1_meta = _image(rng_s1, cls, LAYOUTS[3], size_factor)
            views.append((f"patch-{p}-s1", "-s1", s1_img, s1_meta))
        for t in range(1 + p % 3):
            doc_id = f"doc-{cls}-{p}-{t}"
            if p == 1 and t == 0:
                shared_doc = (doc_id, texts[t])
            text = texts[(p + t) % len(texts)]
            if p == 5 and t == 0 and shared_doc is not None:  # one document paired with two patches
                doc_id, text = shared_doc
            for patch_id, suffix, vimg, vmeta in views:
                rows.append({
                    "sample_id": f"pair-{p}-{t}{suffix}", "doc_id": doc_id, "patch_id": patch_id, "text": text,
                    "split": "test" if lon > test_lon else "train", "lon": lon, "lat": lat,
                    "datetime": f"2024-0{1 + p % 9}-15T10:00:00Z", "image": vimg.tobytes(),
                    "checksum": hashlib.sha256(vimg.tobytes()).hexdigest(), **vmeta,
                })
    norm: dict[str, dict[str, float]] = {}
    for b in S2_ALL + ["VV", "VH"]:
        vals = []
        for r in rows:
            if b in r["bands"]:
                im = np.frombuffer(r["image"], dtype=np.float32).reshape(r["shape"])
                vals.append(im[r["bands"].index(b)].ravel())
        if vals:
            v = np.concatenate(vals)
            norm[b] = {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v))}
    schema = pa.schema([
        ("sample_id", pa.string()), ("doc_id", pa.string()), ("patch_id", pa.string()), ("text", pa.string()),
        ("split", pa.string()), ("lon", pa.float64()), ("lat", pa.float64()), ("sensor", pa.string()),
        ("gsd", pa.float64()), ("datetime", pa.string()), ("bands", pa.list_(pa.string())),
        ("wavelengths_um", pa.list_(pa.float64())), ("bandwidths_um", pa.list_(pa.float64())),
        ("polarizations", pa.list_(pa.string())), ("shape", pa.list_(pa.int64())), ("image", pa.binary()),
        ("checksum", pa.string()),
    ])
    shards = []
    half = len(rows) // 2
    for i, chunk in enumerate([rows[:half], rows[half:]]):
        path = out / f"shard-{i:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(chunk, schema=schema), path)
        shards.append({"path": path.name, "rows": len(chunk),
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    splits = {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "test")}
    manifest = {
        "format": "georeset-shards/1", "snapshot_id": f"synthetic-{seed}", "catalog": "none (synthetic)",
        "created_at": "2024-01-01T00:00:00Z", "shards": shards, "splits": splits,
        "split_rule": f"lon > {test_lon} is test", "norm": norm, "simulated": True,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    f = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    print(write_synthetic_shards(Path(sys.argv[1]), n_patches=n, size_factor=f))
