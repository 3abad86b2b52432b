"""Fit the geoparser's weights on the fitted halves of the shared corpora and write them to
pipelines/geoparse/weights.json (the file the package ships and loads).

    .venv/bin/python scripts/fit_geoparser.py                 # refit, write weights.json, print a JSON summary
    .venv/bin/python scripts/fit_geoparser.py --check         # refit and compare with the shipped file (rc 1 if not)

1. Ranking weights (:data:`georeset.pipelines.geoparse.ranking.WEIGHTS`): three rounds of fit-and-refeature
   (:func:`calibrate.fit_weights`, C=1) on the candidates of the gold toponyms of LGL's fitted half (documents at
   even positions) and WikToR's (documents 1001-1600), starting from the priors in ranking.py; ``near_point`` and
   ``container`` stay priors (see ranking.py).
2. The learned ranker (:mod:`georeset.pipelines.geoparse.ranker`): gradient-boosted trees over every
   candidate's linear and document-level features (:data:`ranking.RANKER_FEATURES`) of the same gold toponyms,
   written to ``ranker.npz`` beside the weights -- only with ``--trees``: under document-grouped 5-fold
   cross-validation on the fitted halves the trees did not beat the linear weights (docs/geoparsing.md), so the
   shipped ranker is the linear one and no ``ranker.npz`` is written (an old one is removed).
3. The commit model (:mod:`georeset.pipelines.geoparse.commit`): a logistic regression over each end-to-end
   prediction of LGL's fitted half (label: overlaps a gold toponym and lies within 161 km of it; predictions on
   gold spans without coordinates are left out), and the threshold maximising F1@161 on that half, with the
   precision/recall curve.

Nothing from the unfitted halves is read. Deterministic: the same packages and corpora give the same file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data" / "geoparsing"


def _fitted(path: Path) -> list[Any]:
    from georeset.pipelines.geoparse.corpora import read_corpus
    from georeset.pipelines.geoparse.splits import FITTED, select

    return list(select(read_corpus(path), path, FITTED))


def fit_ranking(geoparser: Any, docs: list[Any], rounds: int) -> dict[str, float]:
    """The linear weights (``rounds`` of fit-and-refeature), set as the active ones."""
    from georeset.pipelines.geoparse import ranking
    from georeset.pipelines.geoparse.calibrate import fit_weights, gold_examples, ranking_accuracy

    n = len(ranking.FEATURES)
    weights = dict(ranking.PRIOR_WEIGHTS)
    for r in range(rounds):
        ranking.set_weights(weights)
        x, y, group = gold_examples(geoparser, docs)
        fitted = fit_weights(x[:, :n], y, c=1.0)
        fitted.update({k: ranking.PRIOR_WEIGHTS[k] for k in ranking.PRIORS_KEPT})
        print(f"round {r + 1}: {ranking_accuracy(x[:, :n], y, group, fitted)}", file=sys.stderr)
        weights = fitted
    ranking.set_weights(weights)
    return weights


def fit_ranker(x: np.ndarray, y: np.ndarray, group: np.ndarray) -> Any:
    """The boosted-tree ranker on the examples, or None when they are too few to fit trees to."""
    from georeset.pipelines.geoparse import ranker, ranking
    from georeset.pipelines.geoparse.calibrate import ranking_accuracy_of

    if len(y) < 200 or len(set(y.tolist())) < 2:
        print("too few examples for the tree ranker: the linear weights rank", file=sys.stderr)
        return None
    model = ranker.fit(x, y, ranking.RANKER_FEATURES)
    print(f"tree ranker (in sample): {ranking_accuracy_of(model.logit(x), y, group)}", file=sys.stderr)
    return model


def commit_examples(geoparser: Any, docs: list[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(X, y, n_gold_with_coords)`` over the end-to-end predictions with a point."""
    from georeset.pipelines.geoparse.ranking import haversine_km

    xs, ys = [], []
    n_geo = 0
    preds = geoparser.parse_many((d.text, None, None) for d in docs)
    for doc, pred in zip(docs, preds, strict=True):
        gold = sorted(doc.toponyms, key=lambda g: g.start)
        n_geo += sum(g.lat is not None for g in gold)
        used: set[int] = set()
        for t in pred:
            if not t.commit_features or t.n_candidates == 0:
                continue
            j = next((k for k, g in enumerate(gold) if k not in used and t.start < g.end and g.start < t.end), None)
            if j is not None:
                used.add(j)
                g = gold[j]
                if g.lat is None or g.lon is None:
                    continue  # left out of the @161 figures
                ys.append(float(haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161))
            else:
                ys.append(0.0)
            xs.append(t.commit_features)
    return np.array(xs), np.array(ys), n_geo


def curve(p: np.ndarray, y: np.ndarray, n_geo: int) -> list[dict[str, float]]:
    out = []
    for t in np.round(np.arange(0.0, 0.96, 0.05), 2):
        kept = p >= t
        tp = float(y[kept].sum())
        prec = tp / kept.sum() if kept.any() else 0.0
        rec = tp / n_geo if n_geo else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out.append({"threshold": float(t), "precision_161": round(prec, 4), "recall_161": round(rec, 4),
                    "f1_161": round(f1, 4)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lgl", type=Path, default=SHARED / "lgl" / "lgl.xml")
    ap.add_argument("--wiktor", type=Path, default=SHARED / "wiktor" / "wiktor.jsonl")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="compare with the shipped weights.json, write nothing")
    ap.add_argument("--out", type=Path, default=None, help="write here instead of the shipped weights.json (the "
                    "ranker goes to ranker.npz in the same folder)")
    ap.add_argument("--trees", action="store_true", help="also fit the boosted-tree ranker (ranker.npz)")
    args = ap.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from georeset.pipelines.geoparse import commit, ranker
    from georeset.pipelines.geoparse.cli import build_geoparser

    lgl, wiktor = _fitted(args.lgl), _fitted(args.wiktor)
    geoparser = build_geoparser()
    ranker.set_active(None)
    ranking_w = fit_ranking(geoparser, lgl + wiktor, args.rounds)
    trees = None
    if args.trees:  # the examples (every column of ranking.RANKER_FEATURES) under the fitted linear weights
        from georeset.pipelines.geoparse.calibrate import gold_examples

        xr, yr, gr = gold_examples(geoparser, lgl + wiktor)
        trees = fit_ranker(xr, yr, gr)
    ranker.set_active(trees)

    commit.set_commit_weights({"logit": 1.0}, 0.0)
    x, y, n_geo = commit_examples(geoparser, lgl)
    if len(set(y.tolist())) < 2:
        raise SystemExit("the fitted half gives end-to-end predictions of one class only: nothing to fit")
    model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=5000)
    model.fit(x, y)
    commit_w = {k: round(float(w), 3) for k, w in zip(commit.COMMIT_FEATURES, model.coef_[0], strict=True)}
    commit.set_commit_weights(commit_w)
    p = np.array([commit.commit_probability(tuple(r)) for r in x])
    pr = curve(p, y, n_geo)
    best = max(pr, key=lambda r: (r["f1_161"], -r["threshold"]))
    out = {
        "ranking": ranking_w, "commit": commit_w, "commit_threshold": best["threshold"],
        "fitted_on": {"lgl": f"{len(lgl)} documents at even positions of {args.lgl.name}",
                      "wiktor": f"{len(wiktor)} documents 1001-1600 of {args.wiktor.name}",
                      "commit_examples": int(len(y)), "brier": round(float(np.mean((p - y) ** 2)), 4)},
        "curve_fitted_lgl": pr,
    }
    text = json.dumps(out, indent=1, sort_keys=True) + "\n"
    ranker_file = (args.out.parent / ranker.MODEL_FILE.name) if args.out else ranker.MODEL_FILE
    if args.check:
        shipped = commit.load_shipped()
        if trees is not None:
            shipped_trees = ranker.TreeRanker.load(ranker.MODEL_FILE) if ranker.MODEL_FILE.exists() else None
            same_trees = shipped_trees is not None and np.allclose(shipped_trees.logit(xr), trees.logit(xr),
                                                                   atol=1e-3)
        else:
            same_trees = not ranker.MODEL_FILE.exists()
        same = same_trees and all(math.isclose(shipped.get(part, {}).get(k, math.nan), v, abs_tol=2e-3)
                   for part, fitted in (("ranking", ranking_w), ("commit", commit_w)) for k, v in fitted.items())
        same = same and math.isclose(float(shipped.get("commit_threshold", -1)), best["threshold"], abs_tol=1e-9)
        print(json.dumps({"reproduced": same}))
        return 0 if same else 1
    target = args.out or commit.WEIGHTS_FILE
    target.write_text(text, encoding="utf-8")
    if trees is not None:
        ranker.save(trees, ranker_file)
    elif ranker_file.exists():
        ranker_file.unlink()
    print(json.dumps({"written": str(target), "ranker": str(ranker_file) if trees is not None else None,
                      "commit_threshold": best["threshold"],
                      "best_fitted": best}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
