"""The probability that a recognised, resolved toponym is right, and the threshold from which it is asserted.

The ranker's score (:mod:`ranking`) is calibrated for choosing among the candidates of a name that *is* a place.
End to end, a span may not be a place at all ("Island" read as Iceland's Icelandic name, "SUV" as Suva's code),
so the geoparser puts a second logistic regression on top, over what it knows of the whole prediction
(:data:`COMMIT_FEATURES`): the ranker's score, how the span was found (NER place label, gazetteer match with or
without a context cue, a repeat of a name found elsewhere in the text), whether the name is the place's own name or
only an alternate one, a short all-capital span, a single word, the place's class, population and number of
namesakes, a point estimated from the text's focus, an inhabitant form. Its output, ``Toponym.probability``, is
the probability that the toponym is a place within 161 km of the one meant; the geoparser asserts toponyms from
:data:`COMMIT_THRESHOLD` on.

The weights and the threshold are fitted on the fitted half of LGL (documents at even positions; WikToR annotates
only each article's subject, so its spans cannot say what is *not* a place) by ``scripts/fit_geoparser.py``, which
writes ``weights.json`` next to this module; the threshold maximises F1@161 on that half.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COMMIT_FEATURES", "COMMIT_THRESHOLD", "COMMIT_WEIGHTS", "commit_features", "commit_probability",
           "load_shipped", "WEIGHTS_FILE"]

WEIGHTS_FILE = Path(__file__).with_name("weights.json")
COMMIT_FEATURES = ("bias", "logit", "ner", "cued", "repeat", "primary", "caps_short", "single", "class_a",
                   "class_l", "pop", "n_cands", "focus", "demonym")


def load_shipped() -> dict[str, Any]:
    """The weights shipped with the package (``weights.json``), or an empty dict if it is missing."""
    try:
        return dict(json.loads(WEIGHTS_FILE.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


_SHIPPED = load_shipped()
# Without a fitted file: the ranker's score alone decides (probability = score), every toponym asserted.
COMMIT_WEIGHTS: dict[str, float] = dict(_SHIPPED.get("commit", {"logit": 1.0}))
COMMIT_THRESHOLD: float = float(_SHIPPED.get("commit_threshold", 0.0))
_W = np.array([COMMIT_WEIGHTS.get(k, 0.0) for k in COMMIT_FEATURES])


def set_commit_weights(weights: dict[str, float], threshold: float | None = None) -> None:
    global _W, COMMIT_THRESHOLD
    COMMIT_WEIGHTS.clear()
    COMMIT_WEIGHTS.update(weights)
    _W = np.array([COMMIT_WEIGHTS.get(k, 0.0) for k in COMMIT_FEATURES])
    if threshold is not None:
        COMMIT_THRESHOLD = threshold


def commit_features(*, score: float, ner: bool, cue: str, surface: str, primary: bool, feature_class: str | None,
                    population: int, n_candidates: int, focus: bool, demonym: bool) -> tuple[float, ...]:
    p = min(max(score, 1e-4), 1 - 1e-4)
    letters = [c for c in surface if c.isalpha()]
    f = {
        "bias": 1.0, "logit": math.log(p / (1 - p)) / 4, "ner": float(ner),
        "cued": float(cue not in ("", "repeat")), "repeat": float(cue == "repeat"), "primary": float(primary),
        "caps_short": float(len(letters) <= 4 and all(c.isupper() for c in letters)),
        "single": float(" " not in surface.strip() and "-" not in surface),
        "class_a": float(feature_class == "A"), "class_l": float(feature_class == "L"),
        "pop": math.log10(max(0, population) + 1) / 7, "n_cands": math.log10(max(1, n_candidates)) / 2,
        "focus": float(focus), "demonym": float(demonym),
    }
    return tuple(f[k] for k in COMMIT_FEATURES)


def commit_probability(feats: tuple[float, ...]) -> float:
    z = float(np.dot(_W, np.asarray(feats)))
    return round(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), 4)
