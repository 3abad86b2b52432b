"""Ranking candidate places for one toponym, with the features that are known to matter.

Each candidate gets a weighted sum in [0, 1] of: population (log scale), a feature-class prior (countries,
continents, capitals and first-order divisions first), name match (primary name or alternate), context (its
country or state is named elsewhere in the text) and, when the document has its own point, proximity to it.
The toponym's score is the winner's value shrunk by how close the runner-up came.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from georeset.pipelines.geoparse.candidates import Candidate

__all__ = ["DocContext", "Ranked", "haversine_km", "rank"]

_CLASS_PRIOR: dict[tuple[str | None, str | None], float] = {
    ("A", "PCLI"): 1.0,
    ("L", "CONT"): 0.9,
    ("P", "PPLC"): 0.9,
    ("A", "ADM1"): 0.8,
    ("P", None): 0.5,
    ("A", None): 0.6,
}
W_POP, W_CLASS, W_NAME, W_CTX, W_NEAR = 0.35, 0.15, 0.10, 0.15, 0.25
W_CONTAINER = 0.30  # "Paris, Texas": the candidate lies in the country/state written right after the name
NEAR_SCALE_KM = 100.0


@dataclass
class DocContext:
    """What the ranker knows about the document: its own point, and countries / (country, admin1) it names."""

    lon: float | None = None
    lat: float | None = None
    countries: set[str] = field(default_factory=set)
    admin1: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    reason: str
    n_candidates: int


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def _value(c: Candidate, ctx: DocContext, container: tuple[str, str | None] | None) -> tuple[float, float | None, bool]:
    pop = min(1.0, math.log10(max(0, c.population) + 1) / 7.0)
    cls = _CLASS_PRIOR.get((c.feature_class, c.feature_code), _CLASS_PRIOR.get((c.feature_class, None), 0.4))
    name = 1.0 if c.is_primary else 0.7
    in_ctx = False
    ctxv = 0.0
    if c.feature_class == "A":
        pass  # a country or state is not made likelier by being named itself
    elif c.country_code and (c.country_code, c.admin1_code or "") in ctx.admin1:
        ctxv, in_ctx = 1.0, True
    elif c.country_code in ctx.countries:
        ctxv, in_ctx = 0.6, True
    total = W_POP * pop + W_CLASS * cls + W_NAME * name + W_CTX * ctxv
    if container is not None and c.country_code == container[0] and container[1] in (None, c.admin1_code):
        total += W_CONTAINER
        in_ctx = True
    dist: float | None = None
    if ctx.lon is not None and ctx.lat is not None:
        if c.lon is not None and c.lat is not None:
            dist = haversine_km(ctx.lon, ctx.lat, c.lon, c.lat)
            total += W_NEAR * math.exp(-dist / NEAR_SCALE_KM)
        return total, dist, in_ctx
    return total / (1.0 - W_NEAR), dist, in_ctx


def rank(candidates: Sequence[Candidate], ctx: DocContext,
         container: tuple[str, str | None] | None = None) -> Ranked | None:
    """Best candidate with a score in [0, 1] and a short reason, or None when there is no candidate.

    ``container`` = (country code, admin1 code or None) of a country/state written right after the name."""
    usable = [c for c in candidates if c.lon is not None and c.lat is not None]
    if not usable:
        return None
    scored = sorted(((*_value(c, ctx, container), c) for c in usable), key=lambda t: (-t[0], -t[3].population, t[3].place_id))
    best, dist, in_ctx, cand = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0.0
    margin = (best - second) / best if best > 0 else 0.0
    score = max(0.0, min(1.0, best * (0.5 + 0.5 * margin)))
    if dist is not None and dist < 50:
        why = f"near the document's point ({dist:.0f} km)"
    elif in_ctx:
        why = f"in a country/state named in the text ({cand.country_code})"
    else:
        why = "most prominent (population, feature class)"
    return Ranked(cand, score, f"{why}; {len(usable)} candidate(s)", len(usable))
