"""The learned ranker: gradient-boosted trees over every candidate's features, shipped as a small array file.

The joint resolution (:func:`georeset.pipelines.geoparse.ranking.resolve_document`) computes, for every candidate
of every name in a text, the linear features of :data:`ranking.FEATURES` (after the mean-field rounds that read
the other names' beliefs) and the document-level ones of :data:`ranking.DOC_FEATURES` ("home region" votes, the
belief-weighted centre of the other places, the rank among namesakes, ...). The ranker scores each candidate with
a boosted-tree model of the probability that it lies within 161 km of the place meant; the name's best candidate
is the one it scores highest, and that probability is the toponym's ``score``.

The model is fitted by ``scripts/fit_geoparser.py`` (:func:`fit`: scikit-learn's
``HistGradientBoostingClassifier``, deterministic, on the gold toponyms of the fitted halves only) and exported
to ``ranker.npz`` as flat node arrays, which :class:`TreeRanker` evaluates with numpy alone (no pickle, no
scikit-learn at run time). Without the file the linear weights of ``weights.json`` rank, as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MODEL_FILE", "PARAMS", "TreeRanker", "active", "fit", "set_active"]

MODEL_FILE = Path(__file__).with_name("ranker.npz")
# Hyper-parameters (chosen by document-grouped cross-validation on the fitted halves, scripts/fit_geoparser.py).
PARAMS: dict[str, Any] = {"max_iter": 150, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40,
                          "l2_regularization": 1.0}


class TreeRanker:
    """A sum of regression trees in flat arrays (as exported by :func:`fit`): ``logit(X)`` per row."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.features = tuple(str(x) for x in arrays["features"])
        self.baseline = float(arrays["baseline"])
        self.feature = arrays["feature"].astype(np.int64)
        self.threshold = arrays["threshold"].astype(float)
        self.left = arrays["left"].astype(np.int64)
        self.right = arrays["right"].astype(np.int64)
        self.leaf = arrays["leaf"].astype(bool)
        self.value = arrays["value"].astype(float)
        self.missing_left = arrays["missing_left"].astype(bool)
        self.roots = arrays["roots"].astype(np.int64)
        self.depth = int(arrays["depth"])

    @classmethod
    def load(cls, path: Path | str) -> TreeRanker:
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})

    def logit(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        if x.shape[1] != len(self.features):
            raise ValueError(f"the ranker expects {len(self.features)} features, got {x.shape[1]}")
        node = np.broadcast_to(self.roots, (x.shape[0], len(self.roots))).copy()
        rows = np.arange(x.shape[0])[:, None]
        for _ in range(self.depth + 1):
            leaf = self.leaf[node]
            if leaf.all():
                break
            v = x[rows, self.feature[node]]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
        return self.baseline + self.value[node].sum(axis=1)

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))


def export(model: Any, features: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Flat node arrays of a fitted ``HistGradientBoostingClassifier`` (binary)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "leaf", "value",
                                                          "missing_left")}
    roots, offset, depth = [], 0, 0
    for (pred,) in model._predictors:  # one tree per iteration (binary)
        n = pred.nodes
        roots.append(offset)
        parts["feature"].append(n["feature_idx"])
        parts["threshold"].append(n["num_threshold"])
        parts["left"].append(n["left"].astype(np.int64) + offset)
        parts["right"].append(n["right"].astype(np.int64) + offset)
        parts["leaf"].append(n["is_leaf"])
        parts["value"].append(np.where(n["is_leaf"], n["value"], 0.0))
        parts["missing_left"].append(n["missing_go_to_left"])
        depth = max(depth, int(n["depth"].max()))
        offset += len(n)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["roots"] = np.array(roots, dtype=np.int64)
    out["baseline"] = np.array(float(np.ravel(model._baseline_prediction)[0]))
    out["depth"] = np.array(depth)
    out["features"] = np.array(features)
    return out


def fit(x: np.ndarray, y: np.ndarray, features: tuple[str, ...], **params: Any) -> TreeRanker:
    """Fit the boosted trees (deterministic: no early stopping, no subsampling) and return them exported."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(**{**PARAMS, **params}, early_stopping=False, random_state=0)
    model.fit(x, y)
    ranker = TreeRanker(export(model, features))
    check = model.decision_function(x[:2000])
    if not np.allclose(ranker.logit(x[:2000]), check, atol=1e-6):
        raise RuntimeError("the exported trees do not reproduce scikit-learn's scores")
    return ranker


def save(ranker: TreeRanker, path: Path | str) -> None:
    arrays: dict[str, Any] = {"features": np.array(ranker.features), "baseline": np.array(ranker.baseline),
              "feature": ranker.feature.astype(np.int16), "threshold": ranker.threshold.astype(np.float64),
              "left": ranker.left.astype(np.int32), "right": ranker.right.astype(np.int32),
              "leaf": ranker.leaf, "value": ranker.value, "missing_left": ranker.missing_left,
              "roots": ranker.roots.astype(np.int32), "depth": np.array(ranker.depth)}
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


_ACTIVE: TreeRanker | None = None
_LOADED = False


def active() -> TreeRanker | None:
    """The shipped ranker (loaded once), or None: no ``ranker.npz``, ``GEORESET_LINEAR_RANKER=1``, or disabled
    with :func:`set_active`."""
    global _ACTIVE, _LOADED
    if not _LOADED:
        _LOADED = True
        if MODEL_FILE.exists() and os.environ.get("GEORESET_LINEAR_RANKER", "") != "1":
            _ACTIVE = TreeRanker.load(MODEL_FILE)
    return _ACTIVE


def set_active(ranker: TreeRanker | None) -> None:
    """Use this ranker (None: the linear weights) from now on in this process."""
    global _ACTIVE, _LOADED
    _ACTIVE, _LOADED = ranker, True
