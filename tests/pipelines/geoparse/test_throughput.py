"""Throughput that stays linear: a long text with many weak mentions costs work proportional to its length.

Work is counted (distance evaluations between places, the only pairwise step), not timed."""

from __future__ import annotations

import importlib
import random
from typing import Any

import numpy as np
import pytest

from georeset.pipelines.geoparse import Geoparser, fallback, ranking

geolocate = importlib.import_module("georeset.pipelines.geoparse.geolocate")  # the package exports a function so named


def _ambiguous_names(gazetteer: tuple[Any, Any], n: int) -> list[str]:
    """Primary names shared by several towns (each mention of them is a weak, ambiguous one)."""
    places = gazetteer[0].select(["name", "feature_class"]).to_pylist()
    counts: dict[str, int] = {}
    for p in places:
        if p["feature_class"] == "P" and p["name"].isalpha() and p["name"].isascii():
            counts[p["name"]] = counts.get(p["name"], 0) + 1
    names = sorted(k for k, v in counts.items() if v >= 2)
    assert len(names) >= n
    return names[:n]


def _text(names: list[str], n_chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = []
    size = 0
    while size < n_chars:
        a, b, c = rng.sample(names, 3)
        line = f"Traders from {a} met officials of {b} and farmers near {c} on the old road."
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)[:n_chars]


@pytest.fixture()
def pair_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts distance evaluations made by ranking, fallback and geolocation."""
    count = [0]
    matrix, single = ranking.haversine_matrix, ranking.haversine_km

    def counted_matrix(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
        count[0] += len(lon1) * len(lon2)
        return matrix(lon1, lat1, lon2, lat2)

    def counted_single(*a: float) -> float:
        count[0] += 1
        return single(*a)

    for mod in (ranking, fallback, geolocate):
        if hasattr(mod, "haversine_matrix"):
            monkeypatch.setattr(mod, "haversine_matrix", counted_matrix)
        if hasattr(mod, "haversine_km"):
            monkeypatch.setattr(mod, "haversine_km", counted_single)
    return count


def test_long_text_with_many_weak_mentions_is_linear(gazetteer: tuple[Any, Any], geoparser: Geoparser,
                                                      pair_counter: list[int]) -> None:
    names = _ambiguous_names(gazetteer, 300)
    work = {}
    mentions = {}
    for n_chars in (25_000, 100_000):
        text = _text(names, n_chars)
        pair_counter[0] = 0
        tops = geoparser.parse(text)
        geolocate.geolocate(tops)
        work[n_chars], mentions[n_chars] = pair_counter[0], len(tops)
        weak = [t for t in tops if t.score < 0.2 or "placed at" in t.reason]
        assert len(tops) > n_chars / 100 and len(weak) > len(tops) / 10  # many mentions, many of them weak
        assert max(t.end for t in tops) > 0.95 * n_chars  # the whole text was read
    # Four times the text: about four times the work (a quadratic step would make it ~16 times).
    assert work[100_000] <= 5.0 * work[25_000] * mentions[100_000] / (4 * mentions[25_000])
    assert work[100_000] / mentions[100_000] < 200_000  # bounded work per mention
