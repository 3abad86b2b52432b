"""Frozen-feature probe on REAL Sentinel-2 pixels: does the encoder's embedding separate what the scene shows?

    .venv/bin/python bench/probe_real.py --checkpoint work/demo/runs/<run>/checkpoint.pt      # ~1 min, 2 cores

Data: the real Sentinel-2A L2A tile T29UNU of 2022-10-05 at 60 m (``../shared/data/imagery/
sentinel2_l2a_T29UNU_20221005_R60m/R60m``: 11 bands B01..B12 without B08/B10, and the scene classification
SCL), central/west Ireland, 59.8 % cloud. The tile is cut into ``--patch-px`` square patches (8 px = 480 m);
a patch's label is its dominant SCL class among valid pixels (patches with more than half nodata are skipped);
classes with fewer than ``--min-per-class`` patches are dropped and at most ``--per-class`` patches per class are
drawn (seeded), so the classes are roughly balanced. Pixels become reflectance ``(DN - 1000) / 10000``
(processing baseline 04.00), DN 0 is nodata.

Features, on the same patches: ``encoder`` = the checkpoint's image embedding (mean of the Gaussian; all pixel
tokens, no budget; the headline, fixed before any figure: it is the embedding retrieval and search use),
``encoder_backbone`` = the pooled, layer-normalised Perceiver latents before the Gaussian head (the usual
frozen-feature probe of a SimCLR/CLIP-style backbone; reported alongside, never chosen per checkpoint),
``band_mean`` = the per-band mean reflectance ("imagestats"), ``band_mean_std`` = means and standard deviations. Classifiers: kNN (k=5; cosine for the encoder, Euclidean on standardised statistics) and a
linear probe (logistic regression on standardised features), both scored by 5-fold cross-validation with
*spatial* folds (blocks of ``--block-px`` patches), since neighbouring patches look alike. Prints one JSON object
with accuracy and balanced accuracy per feature set, the majority baseline and the label counts, and (``diagnostics``)
kNN recall per class for the encoder and band means, the kNN confusion matrix of each (true class -> predicted
class -> patches) and the difference in correct patches per class, each of the two under the other's kNN (cosine vs
standardised Euclidean), and the kNN / linear probe of the embedding concatenated with the band means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TILE = REPO / ".." / "shared" / "data" / "imagery" / "sentinel2_l2a_T29UNU_20221005_R60m" / "R60m"
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12")
SCL_NAMES = {0: "no_data", 1: "saturated", 2: "dark_area", 3: "cloud_shadow", 4: "vegetation", 5: "not_vegetated",
             6: "water", 7: "unclassified", 8: "cloud_medium", 9: "cloud_high", 10: "thin_cirrus", 11: "snow"}


def load_patches(tile_dir: Path, *, patch_px: int, per_class: int, min_per_class: int, seed: int
                 ) -> dict[str, Any]:
    import rasterio

    files = {b: next(iter(sorted(tile_dir.glob(f"*_{b}_60m.jp2"))), None) for b in (*BANDS, "SCL")}
    missing = [b for b, f in files.items() if f is None]
    if missing:
        raise SystemExit(f"{tile_dir}: no 60 m JP2 for {missing}")
    with rasterio.open(files["SCL"]) as src:  # type: ignore[arg-type]
        scl = src.read(1)
        transform, crs = src.transform, src.crs
    h, w = (scl.shape[0] // patch_px), (scl.shape[1] // patch_px)
    blocks = scl[: h * patch_px, : w * patch_px].reshape(h, patch_px, w, patch_px).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(h * w, -1)
    valid = (blocks != 0).mean(axis=1) >= 0.5
    labels = np.array([np.bincount(b[b != 0], minlength=12).argmax() if v else 0 for b, v in zip(blocks, valid,
                                                                                                 strict=True)])
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    counts = {int(c): int(n) for c, n in zip(*np.unique(labels[valid], return_counts=True), strict=True)}
    for c, n in sorted(counts.items()):
        if n < min_per_class:
            continue
        idx = np.flatnonzero(valid & (labels == c))
        chosen.extend(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
    chosen.sort()
    cube = np.empty((len(BANDS), h * patch_px, w * patch_px), dtype=np.float32)
    for k, b in enumerate(BANDS):
        with rasterio.open(files[b]) as src:  # type: ignore[arg-type]
            dn = src.read(1)[: h * patch_px, : w * patch_px].astype(np.float32)
        cube[k] = np.where(dn == 0, np.nan, (dn - 1000.0) / 10000.0)
    imgs = []
    for i in chosen:
        r, c = divmod(i, w)
        imgs.append(cube[:, r * patch_px : (r + 1) * patch_px, c * patch_px : (c + 1) * patch_px])
    from pyproj import Transformer

    tf = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    rc = np.array([divmod(i, w) for i in chosen])
    xs = transform.c + (rc[:, 1] + 0.5) * patch_px * transform.a
    ys = transform.f + (rc[:, 0] + 0.5) * patch_px * transform.e
    lon, lat = tf.transform(xs, ys)
    return {"images": imgs, "labels": labels[chosen], "rowcol": rc, "lon": np.asarray(lon), "lat": np.asarray(lat),
            "available": {SCL_NAMES[c]: n for c, n in counts.items()}}


def encoder_features(checkpoint: Path, data: dict[str, Any], *, batch_size: int = 32
                     ) -> dict[str, np.ndarray]:
    import torch

    from georeset.models.checkpoint import load_checkpoint
    from georeset.models.data import row_to_tokens
    from georeset.models.tokens import pad_tokens
    from georeset.pipelines.imagery.bands import band_metadata

    ck = load_checkpoint(Path(checkpoint))
    meta = [band_metadata(b) for b in BANDS]
    out: dict[str, list[np.ndarray]] = {"encoder": [], "encoder_backbone": []}
    with torch.no_grad():
        for i in range(0, len(data["images"]), batch_size):
            toks = []
            for j in range(i, min(i + batch_size, len(data["images"]))):
                img = data["images"][j]
                row = {"image": img.tobytes(), "shape": list(img.shape), "bands": list(BANDS),
                       "wavelengths_um": [m[0] for m in meta], "bandwidths_um": [m[1] for m in meta],
                       "polarizations": [m[2] for m in meta], "gsd": 60.0, "sensor": "S2",
                       "datetime": "2022-10-05T11:54:11Z", "lon": float(data["lon"][j]), "lat": float(data["lat"][j])}
                toks.append(row_to_tokens(row, ck.norm, max_tokens=None, rng=np.random.default_rng([0, j])))
            desc, mask = pad_tokens(toks)
            out["encoder"].append(ck.model.encode_image(desc, mask)[0].float().numpy())
            out["encoder_backbone"].append(ck.model.image.backbone_features(desc, mask).float().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def band_stats(data: dict[str, Any], *, with_std: bool) -> np.ndarray:
    feats = []
    for img in data["images"]:
        flat = img.reshape(img.shape[0], -1)
        f = [np.nanmean(flat, axis=1)]
        if with_std:
            f.append(np.nanstd(flat, axis=1))
        feats.append(np.concatenate(f))
    return np.nan_to_num(np.array(feats, dtype=np.float64))


def knn_predictions(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, cosine: bool) -> np.ndarray:
    """Out-of-fold kNN predictions (k=5; cosine, or Euclidean on standardised features), spatial folds."""
    from sklearn.model_selection import GroupKFold
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    pred = np.empty_like(y)
    for tr, te in GroupKFold(n_splits=5).split(x, y, groups):
        knn = make_pipeline(Normalizer() if cosine else StandardScaler(), KNeighborsClassifier(n_neighbors=5))
        pred[te] = knn.fit(x[tr], y[tr]).predict(x[te])
    return pred


def confusion(y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, int]]:
    """``{true class: {predicted class: patches}}`` (SCL names; only non-zero cells)."""
    out: dict[str, dict[str, int]] = {}
    for c in np.unique(y):
        got, n = np.unique(pred[y == c], return_counts=True)
        out[SCL_NAMES[int(c)]] = {SCL_NAMES[int(g)]: int(k) for g, k in zip(got, n, strict=True)}
    return out


def diagnostics(enc: np.ndarray, band_mean: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int
                ) -> dict[str, Any]:
    """Where the encoder and band means differ: kNN recall per SCL class, each feature set under the other's kNN
    metric, and the embedding (L2-normalised) concatenated with the band means."""
    p_enc, p_bm = knn_predictions(enc, y, groups, cosine=True), knn_predictions(band_mean, y, groups, cosine=False)
    per_class = {SCL_NAMES[int(c)]: {"encoder": round(float((p_enc[y == c] == c).mean()), 3),
                                     "band_mean": round(float((p_bm[y == c] == c).mean()), 3)} for c in np.unique(y)}
    conf = {"encoder": confusion(y, p_enc), "band_mean": confusion(y, p_bm)}
    # where the two differ, in patches: the diagonals of the two confusion matrices (encoder minus band means)
    gap = {c: conf["encoder"][c].get(c, 0) - conf["band_mean"][c].get(c, 0) for c in conf["encoder"]}
    unit = enc / np.maximum(np.linalg.norm(enc, axis=1, keepdims=True), 1e-12)
    both = probe(np.concatenate([unit, band_mean], axis=1), y, groups, cosine=False, seed=seed)
    return {
        "knn_recall_per_class": per_class,
        "knn_correct_encoder_minus_band_mean": gap,
        "knn_confusion": conf,
        "encoder_knn_standardised_euclidean": round(float((knn_predictions(enc, y, groups, cosine=False) == y).mean()), 4),
        "band_mean_knn_cosine": round(float((knn_predictions(band_mean, y, groups, cosine=True) == y).mean()), 4),
        "encoder_plus_band_mean": {k: both[k] for k in ("knn_accuracy", "linear_accuracy")},
    }


def probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, cosine: bool, seed: int) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    preds = {"knn": knn_predictions(x, y, groups, cosine=cosine), "linear": np.empty_like(y)}
    for tr, te in GroupKFold(n_splits=5).split(x, y, groups):
        lin = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=seed))
        preds["linear"][te] = lin.fit(x[tr], y[tr]).predict(x[te])
    out: dict[str, float] = {}
    for name, p in preds.items():
        out[f"{name}_accuracy"] = round(float((p == y).mean()), 4)
        out[f"{name}_balanced_accuracy"] = round(float(balanced_accuracy_score(y, p)), 4)
    return out


def run(checkpoint: Path, tile_dir: Path = DEFAULT_TILE, *, patch_px: int = 8, per_class: int = 150,
        min_per_class: int = 40, block_px: int = 10, seed: int = 0) -> dict[str, Any]:
    data = load_patches(tile_dir, patch_px=patch_px, per_class=per_class, min_per_class=min_per_class, seed=seed)
    y = data["labels"]
    groups = (data["rowcol"][:, 0] // block_px) * 10_000 + data["rowcol"][:, 1] // block_px
    classes, counts = np.unique(y, return_counts=True)
    enc = encoder_features(checkpoint, data)
    feats = {"encoder": (enc["encoder"], True), "encoder_backbone": (enc["encoder_backbone"], True),
             "band_mean": (band_stats(data, with_std=False), False),
             "band_mean_std": (band_stats(data, with_std=True), False)}
    res = {name: probe(x, y, groups, cosine=cos, seed=seed) for name, (x, cos) in feats.items()}
    diag = diagnostics(feats["encoder"][0], feats["band_mean"][0], y, groups, seed)
    return {
        "tile": str(tile_dir), "checkpoint": str(checkpoint), "patch_px": patch_px, "gsd_m": 60.0,
        "n_patches": int(len(y)), "classes": {SCL_NAMES[int(c)]: int(n) for c, n in zip(classes, counts, strict=True)},
        "available_patches": data["available"], "majority_baseline": round(float(counts.max() / counts.sum()), 4),
        "chance_balanced": round(1.0 / len(classes), 4), "cv": f"5-fold, spatial blocks of {block_px} patches",
        **{name: r for name, r in res.items()},
        "headline": "encoder (the Gaussian mean: the embedding retrieval and search use)",
        "encoder_knn_minus_band_mean_knn": round(res["encoder"]["knn_accuracy"] - res["band_mean"]["knn_accuracy"], 4),
        "encoder_backbone_knn_minus_band_mean_knn": round(
            res["encoder_backbone"]["knn_accuracy"] - res["band_mean"]["knn_accuracy"], 4),
        "diagnostics": diag,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--tile-dir", type=Path, default=DEFAULT_TILE)
    p.add_argument("--patch-px", type=int, default=8)
    p.add_argument("--per-class", type=int, default=150)
    p.add_argument("--min-per-class", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if not a.tile_dir.is_dir():
        raise SystemExit(f"{a.tile_dir} not found: the probe needs ../shared/data/imagery")
    from georeset.errors import GeoResetError

    try:
        res = run(a.checkpoint, a.tile_dir, patch_px=a.patch_px, per_class=a.per_class,
                  min_per_class=a.min_per_class, seed=a.seed)
    except GeoResetError as exc:  # e.g. a checkpoint this version cannot read: the message says what and how to fix
        print(f"error: --checkpoint {a.checkpoint}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
