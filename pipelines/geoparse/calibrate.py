"""Fitting the ranking weights (:data:`georeset.pipelines.geoparse.ranking.WEIGHTS`).

Examples are the candidates of gold toponyms (spans given), with the features the ranker computes in its last
pass; the label is whether the candidate lies within 161 km of the gold point. A plain logistic regression
(L2-regularised, few features) gives weights whose sigmoid is the candidate's probability of being right, so the
toponym's score is calibrated by construction.

How the shipped weights were obtained: ``scripts/fit_geoparser.py`` (which calls :func:`fit_weights`) runs three
rounds of fit-and-refeature (the joint context features depend on the weights) on the candidates of the gold
toponyms of the fitted halves (:mod:`georeset.pipelines.geoparse.splits`: LGL documents at even positions, WikToR
documents 1001-1600), C=1, starting from the priors in ``ranking.py``, and writes ``weights.json``; ``--check``
refits and compares with the shipped file. The unfitted halves are never read by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from georeset.pipelines.geoparse.corpora import GoldDocument
from georeset.pipelines.geoparse.parser import Geoparser
from georeset.pipelines.geoparse.ranking import FEATURES, RANKER_FEATURES, haversine_km

__all__ = ["fit_weights", "gold_examples", "ranking_accuracy", "ranking_accuracy_of"]


def gold_examples(geoparser: Geoparser, docs: Iterable[GoldDocument]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, group)``: one row per candidate of each gold toponym with coordinates (the columns of
    :data:`ranking.RANKER_FEATURES`: the linear features first); ``group`` numbers toponyms."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    gs: list[np.ndarray] = []
    gid = 0
    for doc in docs:
        geo = sorted((g for g in doc.toponyms if g.lat is not None and g.lon is not None), key=lambda g: g.start)
        if not geo:
            continue
        collected: list[tuple[int, list[Any], np.ndarray]] = []
        geoparser.resolve_spans(doc.text, [(g.start, g.end) for g in geo], collect=collected)
        for given_index, cands, feats in collected:
            g = geo[given_index]
            xs.append(feats)
            ys.append(np.array([haversine_km(c.lon, c.lat, g.lon, g.lat) <= 161 for c in cands],  # type: ignore[arg-type]
                               dtype=float))
            gs.append(np.full(len(cands), gid))
            gid += 1
    if not xs:
        return np.zeros((0, len(RANKER_FEATURES))), np.zeros(0), np.zeros(0, dtype=int)
    return np.vstack(xs), np.concatenate(ys), np.concatenate(gs)


def fit_weights(x: np.ndarray, y: np.ndarray, *, c: float = 1.0) -> dict[str, float]:
    """Logistic-regression weights by feature name (the ``bias`` column carries the intercept)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
    model.fit(x, y)
    return {name: round(float(w), 3) for name, w in zip(FEATURES, model.coef_[0], strict=True)}


def ranking_accuracy(x: np.ndarray, y: np.ndarray, group: np.ndarray, weights: dict[str, float]) -> dict[str, Any]:
    """Share of toponyms whose top-scored candidate is right (within 161 km), and the mean top score."""
    w = np.array([weights[k] for k in FEATURES])
    return ranking_accuracy_of(x[:, :len(FEATURES)] @ w, y, group)


def ranking_accuracy_of(z: np.ndarray, y: np.ndarray, group: np.ndarray) -> dict[str, Any]:
    """:func:`ranking_accuracy` for given logits ``z`` (one per row)."""
    right = tops = 0
    probs = []
    for g in np.unique(group):
        m = group == g
        j = int(np.argmax(z[m]))
        right += int(y[m][j] > 0)
        probs.append(1 / (1 + np.exp(-z[m][j])))
        tops += 1
    return {"accuracy": round(right / tops, 4) if tops else 0.0, "mean_top_probability": round(float(np.mean(probs)), 4)
            if probs else 0.0, "toponyms": tops}
