"""Evaluation of the geoparser on gold corpora, with the fixed contract of ``georeset geoparse evaluate``.

Counting rules:

- recognition (``ner_*``): every predicted span against every gold span (with or without coordinates); a
  prediction is correct when it overlaps a gold span not yet matched (each gold span matches at most one
  prediction); precision = correct predictions / predictions, recall = matched gold spans / gold spans;
- ``acc161_gold``: the gold spans *with* coordinates are resolved as given (no recognition); the share whose
  resolved point lies within 161 km of the gold point. A gold span the geoparser cannot resolve counts as wrong,
  with an error of 20,038 km (half the Earth's circumference) in the error figures;
- ``name_in_gazetteer_161``: the share of those gold spans whose name has a gazetteer place within 161 km of
  the gold point (:func:`georeset.pipelines.geoparse.goldcheck.reachable`): the best ``acc161_gold`` a choice
  among the name's gazetteer places can reach (a focus estimate can land near the others);
  ``acc161_gold_in_gazetteer``: ``acc161_gold`` among those spans only
  (what the ranking achieves where it could be right);
- ``n_gold_sign_flipped``: gold points that lost a sign (no place of the name near them, one near them with the
  longitude, latitude or both negated: :func:`~georeset.pipelines.geoparse.goldcheck.sign_flip`);
  ``acc161_gold_sign_repaired``: ``acc161_gold`` of the same resolutions with those points negated back. The
  headline ``acc161_gold`` is always against the corpus as published;
- ``median_error_km``, ``mean_error_km``, ``auc``: over the same gold-span resolutions; ``auc`` is the area under
  the curve of sorted ``ln(1 + error)`` scaled by ``ln(20039)`` (Gritta et al. 2018; 0 is perfect, lower is
  better);
- end to end (``precision_161``, ``recall_161``, ``f1_161``): a prediction is a true positive when it overlaps a
  not yet matched gold span that has coordinates and its point lies within 161 km of the gold point. A prediction
  overlapping a gold span *without* coordinates is left out entirely (neither a true nor a false positive);
  recall is over the gold spans with coordinates. The predictions are the toponyms the geoparser asserts
  (:meth:`Geoparser.asserted`: a gazetteer place with a point and a probability >= its threshold, fitted on the
  fitted half of LGL, see :mod:`georeset.pipelines.geoparse.commit`); the rest are
  recognised but not asserted (no candidate: unresolved, or only a point estimated from the text's focus). ``f1_161_all`` (with its precision) counts every recognised span as a prediction instead, a span
  without a point as a false positive; ``f1_161_resolved`` every span with a point, whatever its score;
- ``docs_per_second``: documents / wall-clock seconds of the whole geoparser (recognition + resolution) over the
  corpus, batched as in production; the gold-span resolution is not timed.
"""

from __future__ import annotations

import bisect
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from georeset.pipelines.geoparse.corpora import GoldDocument, GoldToponym
from georeset.pipelines.geoparse.goldcheck import reachable, sign_flip
from georeset.pipelines.geoparse.names import name_key
from georeset.pipelines.geoparse.parser import Geoparser
from georeset.pipelines.geoparse.ranking import haversine_km

__all__ = ["UNRESOLVED_ERROR_KM", "auc_of_errors", "evaluate", "overlapping_gold"]

UNRESOLVED_ERROR_KM = 20038.0
# Thresholds of the calibrated probability at which the end-to-end precision/recall@161 curve is reported.
CURVE_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
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


@dataclass
class _Tally:
    """Counts of one document (or a sum of documents)."""

    n_docs: int = 0
    n_gold: int = 0
    n_gold_geo: int = 0
    n_pred: int = 0
    ner_tp: int = 0
    tp161: int = 0
    excluded: int = 0
    unresolved: int = 0
    n_commit: int = 0
    tp_commit: int = 0
    excluded_commit: int = 0
    within: int = 0
    reachable: int = 0  # gold points with a place of their name within 161 km (goldcheck.reachable)
    within_reachable: int = 0
    sign_flipped: int = 0  # gold points that lost a sign (goldcheck.sign_flip)
    within_repaired: int = 0  # right within 161 km of the gold point, lost signs repaired
    errors: list[float] = field(default_factory=list)
    # per threshold of CURVE_THRESHOLDS: [asserted, right within 161 km, overlapping a gold span without coordinates]
    curve: list[list[int]] = field(default_factory=lambda: [[0, 0, 0] for _ in CURVE_THRESHOLDS])

    def add(self, o: _Tally) -> None:
        for f in fields(self):
            if f.name == "errors":
                self.errors.extend(o.errors)
            elif f.name == "curve":
                self.curve = [[a + b for a, b in zip(x, y, strict=True)] for x, y in zip(self.curve, o.curve,
                                                                                        strict=True)]
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(o, f.name))

    def metrics(self, elapsed: float, commit: float) -> dict[str, Any]:
        p = self.ner_tp / self.n_pred if self.n_pred else 0.0
        r = self.ner_tp / self.n_gold if self.n_gold else 0.0
        p161_all = self.tp161 / (self.n_pred - self.excluded) if self.n_pred - self.excluded > 0 else 0.0
        r161_all = self.tp161 / self.n_gold_geo if self.n_gold_geo else 0.0
        kept = self.n_commit - self.excluded_commit
        p161 = self.tp_commit / kept if kept > 0 else 0.0
        r161 = self.tp_commit / self.n_gold_geo if self.n_gold_geo else 0.0
        n_res = self.n_pred - self.excluded - self.unresolved
        p161r = self.tp161 / n_res if n_res > 0 else 0.0
        errors = self.errors
        auc = auc_of_errors(errors)
        return {
            "ner_precision": round(p, 4), "ner_recall": round(r, 4), "ner_f1": round(_f1(p, r), 4),
            "acc161_gold": round(self.within / len(errors), 4) if errors else 0.0,
            "name_in_gazetteer_161": round(self.reachable / len(errors), 4) if errors else 0.0,
            "acc161_gold_in_gazetteer": round(self.within_reachable / self.reachable, 4) if self.reachable else 0.0,
            "n_gold_sign_flipped": self.sign_flipped,
            "acc161_gold_sign_repaired": round(self.within_repaired / len(errors), 4) if errors else 0.0,
            "precision_161": round(p161, 4), "recall_161": round(r161, 4), "f1_161": round(_f1(p161, r161), 4),
            "precision_161_all": round(p161_all, 4), "f1_161_all": round(_f1(p161_all, r161_all), 4),
            "precision_161_resolved": round(p161r, 4), "f1_161_resolved": round(_f1(p161r, r161_all), 4),
            "commit_score": commit, "n_pred_committed": self.n_commit,
            "median_error_km": round(statistics.median(errors), 1) if errors else None,
            "mean_error_km": round(statistics.fmean(errors), 1) if errors else None,
            "auc": round(auc, 4) if auc is not None else None,
            "docs_per_second": round(self.n_docs / elapsed, 2) if elapsed > 0 else None,
            "n_docs": self.n_docs, "n_gold": self.n_gold, "n_gold_with_coords": self.n_gold_geo,
            "n_pred": self.n_pred, "n_pred_left_out": self.excluded, "n_pred_unresolved": self.unresolved,
            "curve": [self._point(t, *c) for t, c in zip(CURVE_THRESHOLDS, self.curve, strict=True)],
        }

    def _point(self, threshold: float, n: int, tp: int, excluded: int) -> dict[str, float]:
        p = tp / (n - excluded) if n - excluded > 0 else 0.0
        r = tp / self.n_gold_geo if self.n_gold_geo else 0.0
        return {"threshold": threshold, "precision_161": round(p, 4), "recall_161": round(r, 4),
                "f1_161": round(_f1(p, r), 4)}


def overlapping_gold(t: Any, gold: list[GoldToponym], used: set[int]) -> int | None:
    """The first gold span (sorted by start) not yet used that overlaps ``t``."""
    k = bisect.bisect_left([g.start for g in gold], t.end)  # spans starting before t ends
    for j in range(max(0, k - 8), k):  # gold spans do not nest deeply: a few before are enough
        if j not in used and t.start < gold[j].end and gold[j].start < t.end:
            return j
    return None


def _score_document(geoparser: Geoparser, doc: GoldDocument, pred: list[Any], commit: float,
                    rows: list[dict[str, Any]] | None,
                    point: tuple[float | None, float | None] = (None, None)) -> _Tally:
    gold = sorted(doc.toponyms, key=lambda g: (g.start, g.end))
    t_ = _Tally(n_docs=1, n_gold=len(gold), n_gold_geo=sum(g.lat is not None and g.lon is not None for g in gold),
                n_pred=len(pred))
    matched: set[int] = set()
    for t in pred:
        resolved = t.lat is not None and t.lon is not None
        j = overlapping_gold(t, gold, matched)
        if not resolved and (j is None or gold[j].lat is not None):
            t_.unresolved += 1  # a prediction without a point, not left out by the no-coordinates rule
        if j is None:
            continue
        matched.add(j)
        t_.ner_tp += 1
        g = gold[j]
        if g.lat is None or g.lon is None:
            t_.excluded += 1
        elif resolved and haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161:
            t_.tp161 += 1
    taken: dict[int, Any] = {}  # the same matching over the committed predictions only
    for t in pred:
        if not geoparser.asserted(t):
            continue
        t_.n_commit += 1
        j = overlapping_gold(t, gold, set(taken))
        if j is None:
            if rows is not None:
                rows.append(_row(doc, t, None, "spurious"))
            continue
        taken[j] = t
        g = gold[j]
        if g.lat is None or g.lon is None:
            t_.excluded_commit += 1
        elif haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161:
            t_.tp_commit += 1
    for k, threshold in enumerate(CURVE_THRESHOLDS):  # the same matching at each threshold of the probability
        used: set[int] = set()
        for t in pred:
            if t.lat is None or t.lon is None or t.n_candidates <= 0 or t.probability < threshold:
                continue
            t_.curve[k][0] += 1
            j = overlapping_gold(t, gold, used)
            if j is None:
                continue
            used.add(j)
            g = gold[j]
            if g.lat is None or g.lon is None:
                t_.curve[k][2] += 1
            elif haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161:
                t_.curve[k][1] += 1
    geo = [g for g in gold if g.lat is not None and g.lon is not None]
    resolved_gold = geoparser.resolve_spans(doc.text, [(g.start, g.end) for g in geo], lon=point[0], lat=point[1])
    by_span = {(g.start, g.end): k for k, g in enumerate(gold)}
    names = geoparser.index.lookup({name_key(doc.text[g.start:g.end]) for g in geo})
    for g, res in zip(geo, resolved_gold, strict=True):
        cands = names.get(name_key(doc.text[g.start:g.end]), [])
        near = reachable(cands, g.lat, g.lon)  # type: ignore[arg-type]
        flip = None if near else sign_flip(cands, g.lat, g.lon)  # type: ignore[arg-type]
        t_.reachable += near
        t_.sign_flipped += flip is not None
        if res.lat is None or res.lon is None:
            t_.errors.append(UNRESOLVED_ERROR_KM)
            err = UNRESOLVED_ERROR_KM
        else:
            err = haversine_km(res.lon, res.lat, g.lon, g.lat)  # type: ignore[arg-type]
            t_.errors.append(err)
            t_.within += err <= 161
            t_.within_reachable += near and err <= 161
            t_.within_repaired += (haversine_km(res.lon, res.lat, flip[2], flip[1]) if flip else err) <= 161
        if rows is None:
            continue
        j = by_span[(g.start, g.end)]
        t = taken.get(j)
        if t is not None and haversine_km(t.lon, t.lat, g.lon, g.lat) <= 161:  # type: ignore[arg-type]
            continue  # found and resolved right end to end
        if j not in matched:
            cls = "missed span"
        elif t is None:
            cls = "not asserted"
        else:
            cls = "wrong candidate" if near else "not in gazetteer"
        extra: dict[str, Any] = {"gold_span_error_km": round(err, 1)}
        if flip is not None:  # the gold point lost a sign: where it belongs, by the gazetteer's places of its name
            extra.update(gold_sign_flipped=flip[0], gold_repaired_lat=flip[1], gold_repaired_lon=flip[2])
        if err > 161:  # resolution given the gold span went wrong too: what it chose, and whether it could have
            extra.update(gold_span_class="wrong candidate" if near else "not in gazetteer",
                         gold_span_predicted=res.name, gold_span_country_code=res.country_code,
                         gold_span_feature_code=res.feature_code, gold_span_reason=res.reason)
        rows.append(_row(doc, t, g, cls, **extra))
    return t_


def _row(doc: GoldDocument, t: Any, g: GoldToponym | None, cls: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"doc_id": doc.doc_id, "class": cls}
    if g is not None:
        row.update(start=g.start, end=g.end, surface=doc.text[g.start:g.end], gold_lat=g.lat, gold_lon=g.lon)
    else:
        row.update(start=t.start, end=t.end, surface=t.surface)
    if t is not None:
        row.update(predicted=t.name, country_code=t.country_code, feature_code=t.feature_code, lat=t.lat, lon=t.lon,
                   probability=t.score)
        if g is not None and t.lat is not None:
            row["error_km"] = round(haversine_km(t.lon, t.lat, g.lon, g.lat), 1)  # type: ignore[arg-type]
    row.update(extra)
    return row


def evaluate(geoparser: Geoparser, docs: Iterable[GoldDocument], *, batch_size: int = 64,
             limit: int | None = None, groups: Callable[[int, GoldDocument], str] | None = None,
             per_toponym: list[dict[str, Any]] | None = None,
             points: Callable[[GoldDocument], tuple[float | None, float | None]] | None = None) -> dict[str, Any]:
    """Metrics of the contract (see the module docstring) over ``docs`` (the first ``limit`` of them).

    ``groups(index, doc)`` names a subset for each document (e.g. ``"fitted"`` / ``"unfitted"``, see
    :func:`georeset.pipelines.geoparse.splits.half`): the metrics of each subset are added under its name.
    ``per_toponym`` receives one row per error: a gold toponym not found (``"missed span"``), found but not
    asserted, resolved to the wrong place (``"wrong candidate"`` when a candidate of its name lies within 161 km of
    the gold point, else ``"not in gazetteer"``), or an asserted toponym matching no gold span (``"spurious"``)."""
    gold_docs: list[GoldDocument] = []
    for d in docs:
        if limit is not None and len(gold_docs) >= limit:
            break
        gold_docs.append(d)
    t0 = time.perf_counter()
    where = [points(d) if points is not None else (None, None) for d in gold_docs]
    preds = list(geoparser.parse_many(((d.text, *w) for d, w in zip(gold_docs, where, strict=True)),
                                      batch_size=batch_size))
    elapsed = time.perf_counter() - t0
    commit = float(geoparser.threshold)
    total = _Tally()
    by_group: dict[str, _Tally] = {}
    for i, (doc, pred) in enumerate(zip(gold_docs, preds, strict=True)):
        one = _score_document(geoparser, doc, pred, commit, per_toponym, where[i])
        total.add(one)
        if groups is not None:
            by_group.setdefault(groups(i, doc), _Tally()).add(one)
    out = total.metrics(elapsed, commit)
    for name, tally in sorted(by_group.items()):
        out[name] = tally.metrics(elapsed * tally.n_docs / max(1, total.n_docs), commit)
    return out
