"""bench/probe_real.py on the real T29UNU Sentinel-2 L2A tile (skipped without ../shared): real patches labelled
by their dominant SCL class, encoder embeddings vs band means, spatial cross-validation."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TILE = REPO / ".." / "shared" / "data" / "imagery" / "sentinel2_l2a_T29UNU_20221005_R60m" / "R60m"


@pytest.mark.shared
def test_probe_on_real_pixels(trained_run: dict[str, Any]) -> None:
    if not TILE.is_dir():
        pytest.skip(f"{TILE} absent")
    spec = importlib.util.spec_from_file_location("probe_real", REPO / "bench" / "probe_real.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.run(Path(trained_run["out"]) / "checkpoint.pt", TILE, per_class=30, min_per_class=20)
    classes = res["classes"]
    assert {"vegetation", "water", "cloud_medium", "cloud_shadow"} <= set(classes)
    assert res["n_patches"] == sum(classes.values()) and max(classes.values()) <= 30
    assert res["headline"].startswith("encoder (")  # the Gaussian mean, fixed; the backbone is reported alongside
    for feats in ("encoder", "encoder_backbone", "band_mean", "band_mean_std"):
        for m in ("knn_accuracy", "linear_accuracy", "knn_balanced_accuracy"):
            assert 0.0 <= res[feats][m] <= 1.0
    # diagnostics: per-class kNN recall over every class, consistent with the overall kNN accuracy
    diag = res["diagnostics"]
    assert set(diag["knn_recall_per_class"]) == set(classes)
    for feats in ("encoder", "band_mean"):
        recalls = {c: r[feats] for c, r in diag["knn_recall_per_class"].items()}
        overall = sum(recalls[c] * n for c, n in classes.items()) / res["n_patches"]
        assert abs(overall - res[feats]["knn_accuracy"]) < 0.01
        # the confusion matrix holds every patch of a class, its diagonal is that class's recall
        conf = diag["knn_confusion"][feats]
        assert set(conf) == set(classes) and all(sum(row.values()) == classes[c] for c, row in conf.items())
        assert all(abs(conf[c].get(c, 0) / classes[c] - recalls[c]) < 0.002 for c in classes)
    gap = diag["knn_correct_encoder_minus_band_mean"]
    assert gap == {c: diag["knn_confusion"]["encoder"][c].get(c, 0) - diag["knn_confusion"]["band_mean"][c].get(c, 0)
                   for c in classes}
    for key in ("encoder_knn_standardised_euclidean", "band_mean_knn_cosine"):
        assert 0.0 <= diag[key] <= 1.0
    assert 0.0 <= diag["encoder_plus_band_mean"]["knn_accuracy"] <= 1.0
    # real pixels: per-band statistics separate the scene classes far above the majority class
    assert res["band_mean"]["knn_accuracy"] > res["majority_baseline"] + 0.2
