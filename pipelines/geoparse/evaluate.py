"""Minimal evaluation of the geoparser on gold corpora (the full contract is issue 3's ``geoparse evaluate``).

- recognition: precision / recall / F1 by span overlap;
- ``acc161_gold``: resolution of the gold spans, share within 161 km (unresolved counts as wrong);
- end to end: a prediction counts when it overlaps a not yet matched gold span with coordinates and lies within
  161 km of it; predictions overlapping gold spans without coordinates are left out of the @161 figures.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from typing import Any

from georeset.pipelines.geoparse.corpora import GoldDocument
from georeset.pipelines.geoparse.parser import Geoparser
from georeset.pipelines.geoparse.ranking import haversine_km

__all__ = ["evaluate"]


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(geoparser: Geoparser, docs: Iterable[GoldDocument], *, batch_size: int = 64,
             limit: int | None = None) -> dict[str, Any]:
    gold_docs = [d for i, d in enumerate(docs) if limit is None or i < limit]
    t0 = time.perf_counter()
    preds = list(geoparser.parse_many(((d.text, None, None) for d in gold_docs), batch_size=batch_size))
    elapsed = time.perf_counter() - t0
    n_gold = n_gold_geo = n_pred = ner_tp = tp161 = excluded = 0
    gold_hits = 0
    errors: list[float] = []
    within = 0
    for doc, pred in zip(gold_docs, preds, strict=True):
        gold = doc.toponyms
        n_gold += len(gold)
        n_gold_geo += sum(g.lat is not None for g in gold)
        n_pred += len(pred)
        matched: set[int] = set()
        for t in pred:
            j = next((k for k, g in enumerate(gold) if k not in matched and t.start < g.end and g.start < t.end), None)
            if j is None:
                continue
            matched.add(j)
            ner_tp += 1
            g = gold[j]
            if g.lat is None or g.lon is None:
                excluded += 1
            elif t.lat is not None and t.lon is not None and haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161:
                tp161 += 1
        gold_hits += len(matched)
        geo = [g for g in gold if g.lat is not None and g.lon is not None]
        for g, res in zip(geo, geoparser.resolve_spans(doc.text, [(g.start, g.end) for g in geo]), strict=True):
            if res.lat is None or res.lon is None:
                errors.append(20038.0)  # half the Earth's circumference: unresolved
                continue
            err = haversine_km(res.lon, res.lat, g.lon, g.lat)  # type: ignore[arg-type]
            errors.append(err)
            within += err <= 161
    p = ner_tp / n_pred if n_pred else 0.0
    r = gold_hits / n_gold if n_gold else 0.0
    p161 = tp161 / (n_pred - excluded) if n_pred - excluded > 0 else 0.0
    r161 = tp161 / n_gold_geo if n_gold_geo else 0.0
    return {
        "ner_precision": round(p, 4), "ner_recall": round(r, 4), "ner_f1": round(_f1(p, r), 4),
        "acc161_gold": round(within / len(errors), 4) if errors else 0.0,
        "precision_161": round(p161, 4), "recall_161": round(r161, 4), "f1_161": round(_f1(p161, r161), 4),
        "median_error_km": round(statistics.median(errors), 1) if errors else None,
        "mean_error_km": round(statistics.fmean(errors), 1) if errors else None,
        "docs_per_second": round(len(gold_docs) / elapsed, 2) if elapsed > 0 else None,
        "n_docs": len(gold_docs), "n_gold": n_gold, "n_pred": n_pred,
    }
