"""Evaluation of the geoparser on gold corpora, with the fixed contract of ``georeset geoparse evaluate``.

Counting rules:

- recognition (``ner_*``): every predicted span against every gold span (with or without coordinates); a
  prediction is correct when it overlaps a gold span not yet matched (each gold span matches at most one
  prediction); precision = correct predictions / predictions, recall = matched gold spans / gold spans;
- ``acc161_gold``: the gold spans *with* coordinates are resolved as given (no recognition); the share whose
  resolved point lies within 161 km of the gold point. A gold span the geoparser cannot resolve counts as wrong,
  with an error of 20,038 km (half the Earth's circumference) in the error figures;
- ``median_error_km``, ``mean_error_km``, ``auc``: over the same gold-span resolutions; ``auc`` is the area under
  the curve of sorted ``ln(1 + error)`` scaled by ``ln(20039)`` (Gritta et al. 2018; 0 is perfect, lower is
  better);
- end to end (``precision_161``, ``recall_161``, ``f1_161``): a prediction is a true positive when it overlaps a
  not yet matched gold span that has coordinates and its point lies within 161 km of the gold point. A prediction
  overlapping a gold span *without* coordinates is left out entirely (neither a true nor a false positive);
  recall is over the gold spans with coordinates. The predictions are the toponyms the geoparser asserts
  (:meth:`Geoparser.asserted`: a gazetteer place with a point and a score >= its ``commit_score``, a threshold
  chosen on WikToR training documents, see :data:`georeset.pipelines.geoparse.parser.COMMIT_SCORE`); the rest are
  recognised but not asserted (no candidate: unresolved, or only a point estimated from the text's focus). ``f1_161_all`` (with its precision) counts every recognised span as a prediction instead, a span
  without a point as a false positive; ``f1_161_resolved`` every span with a point, whatever its score;
- ``docs_per_second``: documents / wall-clock seconds of the whole geoparser (recognition + resolution) over the
  corpus, batched as in production; the gold-span resolution is not timed.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from typing import Any

from georeset.pipelines.geoparse.corpora import GoldDocument
from georeset.pipelines.geoparse.parser import Geoparser
from georeset.pipelines.geoparse.ranking import haversine_km

__all__ = ["UNRESOLVED_ERROR_KM", "auc_of_errors", "evaluate"]

UNRESOLVED_ERROR_KM = 20038.0
_LOG_MAX = math.log(20039.0)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def auc_of_errors(errors: list[float]) -> float | None:
    """Area under the curve of sorted ``ln(1 + error km)``, scaled to [0, 1] (lower is better)."""
    if not errors:
        return None
    ys = sorted(math.log1p(max(0.0, e)) for e in errors)
    if len(ys) == 1:
        return ys[0] / _LOG_MAX
    area = sum((a + b) / 2 for a, b in zip(ys, ys[1:], strict=False))
    return area / (_LOG_MAX * (len(ys) - 1))


def evaluate(geoparser: Geoparser, docs: Iterable[GoldDocument], *, batch_size: int = 64,
             limit: int | None = None) -> dict[str, Any]:
    """Metrics of the contract (see the module docstring) over ``docs`` (the first ``limit`` of them)."""
    gold_docs: list[GoldDocument] = []
    for d in docs:
        if limit is not None and len(gold_docs) >= limit:
            break
        gold_docs.append(d)
    t0 = time.perf_counter()
    preds = list(geoparser.parse_many(((d.text, None, None) for d in gold_docs), batch_size=batch_size))
    elapsed = time.perf_counter() - t0
    commit = float(getattr(geoparser, "commit_score", 0.0))
    n_gold = n_gold_geo = n_pred = ner_tp = tp161 = excluded = unresolved = 0
    n_commit = tp_commit = excluded_commit = 0
    gold_hits = 0
    errors: list[float] = []
    within = 0
    for doc, pred in zip(gold_docs, preds, strict=True):
        gold = sorted(doc.toponyms, key=lambda g: (g.start, g.end))
        n_gold += len(gold)
        n_gold_geo += sum(g.lat is not None and g.lon is not None for g in gold)
        n_pred += len(pred)
        matched: set[int] = set()
        for t in pred:
            resolved = t.lat is not None and t.lon is not None
            j = next((k for k, g in enumerate(gold) if k not in matched and t.start < g.end and g.start < t.end), None)
            if not resolved and (j is None or gold[j].lat is not None):
                unresolved += 1  # a prediction without a point, not left out by the no-coordinates rule
            if j is None:
                continue
            matched.add(j)
            ner_tp += 1
            g = gold[j]
            if g.lat is None or g.lon is None:
                excluded += 1
            elif t.lat is not None and t.lon is not None and haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161:
                tp161 += 1
        taken: set[int] = set()  # the same matching over the committed predictions only
        for t in pred:
            if not geoparser.asserted(t):
                continue
            n_commit += 1
            j = next((k for k, g in enumerate(gold) if k not in taken and t.start < g.end and g.start < t.end), None)
            if j is None:
                continue
            taken.add(j)
            g = gold[j]
            if g.lat is None or g.lon is None:
                excluded_commit += 1
            elif haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161:  # type: ignore[arg-type]
                tp_commit += 1
        gold_hits += len(matched)
        geo = [g for g in gold if g.lat is not None and g.lon is not None]
        for g, res in zip(geo, geoparser.resolve_spans(doc.text, [(g.start, g.end) for g in geo]), strict=True):
            if res.lat is None or res.lon is None:
                errors.append(UNRESOLVED_ERROR_KM)
                continue
            err = haversine_km(res.lon, res.lat, g.lon, g.lat)  # type: ignore[arg-type]
            errors.append(err)
            within += err <= 161
    p = ner_tp / n_pred if n_pred else 0.0
    r = gold_hits / n_gold if n_gold else 0.0
    p161_all = tp161 / (n_pred - excluded) if n_pred - excluded > 0 else 0.0
    r161_all = tp161 / n_gold_geo if n_gold_geo else 0.0
    p161 = tp_commit / (n_commit - excluded_commit) if n_commit - excluded_commit > 0 else 0.0
    r161 = tp_commit / n_gold_geo if n_gold_geo else 0.0
    n_res = n_pred - excluded - unresolved
    p161r = tp161 / n_res if n_res > 0 else 0.0
    auc = auc_of_errors(errors)
    return {
        "ner_precision": round(p, 4), "ner_recall": round(r, 4), "ner_f1": round(_f1(p, r), 4),
        "acc161_gold": round(within / len(errors), 4) if errors else 0.0,
        "precision_161": round(p161, 4), "recall_161": round(r161, 4), "f1_161": round(_f1(p161, r161), 4),
        "precision_161_all": round(p161_all, 4), "f1_161_all": round(_f1(p161_all, r161_all), 4),
        "precision_161_resolved": round(p161r, 4), "f1_161_resolved": round(_f1(p161r, r161_all), 4),
        "commit_score": commit, "n_pred_committed": n_commit,
        "median_error_km": round(statistics.median(errors), 1) if errors else None,
        "mean_error_km": round(statistics.fmean(errors), 1) if errors else None,
        "auc": round(auc, 4) if auc is not None else None,
        "docs_per_second": round(len(gold_docs) / elapsed, 2) if elapsed > 0 else None,
        "n_docs": len(gold_docs), "n_gold": n_gold, "n_gold_with_coords": n_gold_geo, "n_pred": n_pred,
        "n_pred_left_out": excluded, "n_pred_unresolved": unresolved,
    }
