"""Ranking candidate places, one document at a time, with the features that are known to matter.

Every candidate of every toponym gets a feature vector (:data:`FEATURES`):

- prominence: population (log scale, absolute and relative to the most populous candidate of the same name);
- feature class: country, first/second-order division, continent, capital;
- name match: the place's primary name or an alternate one;
- the document's own point, when it has one (proximity);
- the other toponyms of the same text: a country or division written right after the name (``"Paris, Texas"``,
  ``"Lima, Ohio, United States"``), countries and divisions resolved elsewhere in the text, how many of the other
  names have a candidate in the same country, and the distance to where the other toponyms were resolved
  (minimising the spread).

The score of a candidate is a logistic function of a weighted sum of its features: the probability that it lies
within 161 km of the place meant. The weights (:data:`WEIGHTS`) were fitted with
:func:`georeset.pipelines.geoparse.calibrate.fit_weights` on one corpus and checked on another (see that module).

Resolution runs in passes: every toponym alone first; then countries and divisions found become context, and the
candidates are scored again with the whole document's context; the last pass refreshes the spread feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from georeset.pipelines.geoparse.candidates import Candidate

__all__ = ["FEATURES", "WEIGHTS", "DocContext", "Ranked", "candidate_features", "haversine_km", "rank",
           "resolve_document"]

FEATURES = ("bias", "pop", "pop_rel", "pcli", "adm1", "adm2", "cont", "pplc", "primary", "container",
            "in_admin1", "in_country", "cc_support", "near_others", "near_point", "n_cands")
# Fitted by calibrate.fit_weights (logistic regression, C=1, candidates labelled within 161 km or not) on WikToR
# documents 2001-2800, checked on WikToR 1-400 (top-candidate accuracy 0.748) and LGL (0.813). Not fitted, set as
# priors: ``container`` (a comma pattern fits the training corpus badly and is reliable in news), ``cc_support``
# (collinear with ``near_others``), ``near_point`` (no document points in the training data), ``cont`` (no
# continents in the training data).
WEIGHTS: dict[str, float] = {
    "bias": -3.77, "pop": -0.579, "pop_rel": 1.631, "pcli": 4.434, "adm1": 2.31, "adm2": 0.924, "cont": 1.5,
    "pplc": 3.079, "primary": 0.701, "container": 2.0, "in_admin1": 1.692, "in_country": 2.149, "cc_support": 0.0,
    "near_others": 9.615, "near_point": 6.0, "n_cands": -6.966,
}
NEAR_SCALE_KM = 100.0
SPREAD_SCALE_KM = 300.0
NEAR_OTHERS_MISSING = 0.3
_AREA = ("PCLI", "ADM1", "ADM2", "CONT")
_LEVEL = {"ADM2": 1, "ADM1": 2, "PCLI": 3, "CONT": 4}


@dataclass
class DocContext:
    """What the ranker knows about the document: its own point, the countries / (country, admin1) it names,
    how many of its distinct names have a candidate in each country, and where its toponyms were resolved."""

    lon: float | None = None
    lat: float | None = None
    countries: set[str] = field(default_factory=set)
    admin1: set[tuple[str, str]] = field(default_factory=set)
    cc_support: dict[str, int] = field(default_factory=dict)
    n_keys: int = 0
    resolved: list[tuple[str, float, float]] = field(default_factory=list)  # (name key, lon, lat)


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


def _haversine_matrix(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dl = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _contains(area: Candidate, c: Candidate) -> bool:
    """Whether the area candidate (country / division) contains candidate ``c``."""
    if area.place_id == c.place_id or not area.country_code or area.country_code != c.country_code:
        return False
    if area.feature_code == "PCLI":
        return True
    if area.feature_code in ("ADM1", "ADM2"):
        return bool(area.admin1_code) and area.admin1_code == c.admin1_code and c.feature_code != "ADM1"
    return False


def candidate_features(cands: Sequence[Candidate], ctx: DocContext, *, mention: str = "",
                       containers: Sequence[Candidate] = (), own_ccs: frozenset[str] = frozenset()) -> np.ndarray:
    """Feature matrix (len(cands) x len(FEATURES)) for the candidates of one toponym.

    ``mention`` is the toponym's name key: other mentions of the same name are not context for it."""
    n = len(cands)
    f = np.zeros((n, len(FEATURES)))
    if not n:
        return f
    idx = {name: i for i, name in enumerate(FEATURES)}
    pops = np.array([math.log10(max(0, c.population) + 1) / 7.0 for c in cands])
    f[:, idx["bias"]] = 1.0
    f[:, idx["pop"]] = np.minimum(pops, 1.2)
    f[:, idx["pop_rel"]] = pops - pops.max()
    f[:, idx["n_cands"]] = math.log10(n) / 2
    lons = np.array([c.lon for c in cands], dtype=float)
    lats = np.array([c.lat for c in cands], dtype=float)
    others = [(lo, la) for k, lo, la in ctx.resolved if k != mention]
    if others:
        olon = np.array([o[0] for o in others])
        olat = np.array([o[1] for o in others])
        d = _haversine_matrix(lons, lats, olon, olat)
        # the mean closeness to the other toponyms: one far-away outlier costs little, a cluster counts a lot
        f[:, idx["near_others"]] = np.exp(-d / SPREAD_SCALE_KM).mean(axis=1)
    else:  # nothing else resolved in the text: a neutral value (ranks nothing, keeps the score calibrated)
        f[:, idx["near_others"]] = NEAR_OTHERS_MISSING
    if ctx.lon is not None and ctx.lat is not None:
        d = _haversine_matrix(lons, lats, np.array([ctx.lon]), np.array([ctx.lat]))[:, 0]
        f[:, idx["near_point"]] = np.exp(-d / NEAR_SCALE_KM)
    denom = max(1, ctx.n_keys - 1)
    for i, c in enumerate(cands):
        code = c.feature_code
        row = f[i]
        row[idx["pcli"]] = code == "PCLI"
        row[idx["adm1"]] = code == "ADM1"
        row[idx["adm2"]] = code == "ADM2"
        row[idx["cont"]] = code == "CONT"
        row[idx["pplc"]] = code == "PPLC"
        row[idx["primary"]] = c.is_primary
        if containers and any(_contains(a, c) or _contains(c, a) for a in containers):
            row[idx["container"]] = 1.0
        cc = c.country_code
        if cc and code != "PCLI":
            if c.admin1_code and code != "ADM1" and (cc, c.admin1_code) in ctx.admin1:
                row[idx["in_admin1"]] = 1.0
            if cc in ctx.countries:
                row[idx["in_country"]] = 1.0
        if cc:
            support = ctx.cc_support.get(cc, 0) - (1 if cc in own_ccs else 0)
            row[idx["cc_support"]] = min(1.0, max(0, support) / denom)
    return f


_W = np.array([WEIGHTS[k] for k in FEATURES])


def set_weights(weights: dict[str, float]) -> None:
    """Replace the ranking weights (e.g. with freshly fitted ones from :mod:`calibrate`)."""
    global _W
    WEIGHTS.update(weights)
    _W = np.array([WEIGHTS[k] for k in FEATURES])


def _why(c: Candidate, feats: np.ndarray) -> str:
    idx = {name: i for i, name in enumerate(FEATURES)}
    if feats[idx["near_point"]] > 0.6:
        return "near the document's point"
    if feats[idx["container"]]:
        return f"in the area written next to it ({c.country_code})"
    if feats[idx["in_admin1"]] or feats[idx["in_country"]]:
        return f"in a country/division named in the text ({c.country_code})"
    if feats[idx["near_others"]] > 0.5:
        return "close to the text's other places"
    return "most prominent (population, feature class)"


def _usable(candidates: Sequence[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.lon is not None and c.lat is not None]


def rank(candidates: Sequence[Candidate], ctx: DocContext, containers: Sequence[Candidate] = (), *,
         mention: str = "") -> Ranked | None:
    """Best candidate with a calibrated score in [0, 1] and a short reason, or None when there is no candidate."""
    usable = _usable(candidates)
    if not usable:
        return None
    own = frozenset(c.country_code for c in usable if c.country_code)
    feats = candidate_features(usable, ctx, mention=mention, containers=containers, own_ccs=own)
    z = feats @ _W
    j = int(np.argmax(z))
    p = 1.0 / (1.0 + math.exp(-float(z[j])))
    c = usable[j]
    return Ranked(c, round(p, 4), f"{_why(c, feats[j])}; {len(usable)} candidate(s)", len(usable))


def resolve_document(cands: Sequence[Sequence[Candidate]], keys: Sequence[str], ctx: DocContext,
                     containers: dict[int, int] | None = None, *, passes: int = 2,
                     collect: list[tuple[int, list[Candidate], np.ndarray]] | None = None) -> list[Ranked | None]:
    """Resolve all toponyms of one document together.

    ``cands[i]``: candidates of mention i; ``keys[i]``: its name key; ``containers``: mention i -> mention j when j
    is written right after i with a comma between (``"Paris, Texas"``): each constrains the other. ``collect``
    receives ``(mention index, candidates, feature matrix)`` of the last pass (for fitting the weights)."""
    containers = containers or {}
    partners: dict[int, list[int]] = {}
    for i, j in containers.items():
        partners.setdefault(i, []).append(j)
        partners.setdefault(j, []).append(i)
    usable = [_usable(c) for c in cands]
    # which countries have a candidate for how many distinct names
    seen: dict[str, set[str]] = {}
    for k, us in zip(keys, usable, strict=True):
        for c in us:
            if c.country_code:
                seen.setdefault(c.country_code, set()).add(k)
    ctx.cc_support = {cc: len(ks) for cc, ks in seen.items()}
    ctx.n_keys = len(set(keys))
    first = [rank(us, DocContext(ctx.lon, ctx.lat), mention=k) for k, us in zip(keys, usable, strict=True)]
    best = first
    for _ in range(passes):
        areas_by_key: list[tuple[str, str, str | None]] = []  # (key, country, admin1 or None)
        for k, r in zip(keys, best, strict=True):
            if r is None or r.score < 0.3:
                continue
            c = r.candidate
            if c.feature_code == "PCLI" and c.country_code:
                areas_by_key.append((k, c.country_code, None))
            elif c.feature_code in ("ADM1", "ADM2") and c.country_code and c.admin1_code:
                areas_by_key.append((k, c.country_code, c.admin1_code))
        resolved = [(k, r.candidate.lon, r.candidate.lat) for k, r in zip(keys, best, strict=True)
                    if r is not None and r.candidate.feature_code not in ("PCLI", "CONT")]
        per_key: dict[str, DocContext] = {}
        nxt = []
        for i, (k, us) in enumerate(zip(keys, usable, strict=True)):
            kctx = per_key.get(k)
            if kctx is None:
                kctx = DocContext(ctx.lon, ctx.lat, cc_support=ctx.cc_support, n_keys=ctx.n_keys,
                                  resolved=resolved)  # type: ignore[arg-type]
                for ok, cc, a1 in areas_by_key:
                    if ok != k:
                        kctx.countries.add(cc)
                        if a1:
                            kctx.admin1.add((cc, a1))
                per_key[k] = kctx
            areas: list[Candidate] = []
            for j in partners.get(i, []):
                areas.extend(usable[j])
            nxt.append(rank(us, kctx, areas, mention=k))
            if collect is not None and _ == passes - 1 and us:
                own = frozenset(c.country_code for c in us if c.country_code)
                collect.append((i, us, candidate_features(us, kctx, mention=k, containers=areas, own_ccs=own)))
        best = nxt
        ctx.countries = {cc for _, cc, _ in areas_by_key}
        ctx.admin1 = {(cc, a1) for _, cc, a1 in areas_by_key if a1}
        ctx.resolved = resolved  # type: ignore[assignment]
    return _fall_back_to_focus(_fall_back_to_container(best, usable, containers), keys, ctx)


FOCUS_SCORE = 0.65
# Off (0): replacing a far namesake below 0.35 by the focus lifted WikToR 2001-2400 from 0.713 to 0.822 but cost
# LGL 0.828 -> 0.768 (news name far-away places in passing; WikToR articles are about one place), and restricted
# to namesakes outside every country the text names it still only hurt LGL. Kept as an option for single-subject
# texts (e.g. gazetteer-like articles).
FOCUS_REPLACE_BELOW = 0.0
FOCUS_KM = 161.0
FOCUS_MIN_SUPPORT = 2


def _fall_back_to_focus(best: list[Ranked | None], keys: Sequence[str], ctx: DocContext) -> list[Ranked | None]:
    """A name with no candidate at all (a river, a district, a small town the gazetteer lacks), or whose best
    candidate is unlikely (score below :data:`FOCUS_REPLACE_BELOW`: a namesake far away) and lies more than
    :data:`FOCUS_KM` from the rest of the text, is placed at the focus of the text: the densest cluster (within :data:`FOCUS_KM`) of the other places resolved in it, towns and
    divisions only (countries and continents are too wide to stand for a place). Texts are mostly about one area,
    so this is usually within 161 km; the score :data:`FOCUS_SCORE` is about the share of such placements that
    were, measured on WikToR documents 2001-2400 (gold spans: 0.67; on LGL, for validation, 0.66). With a single
    other place in the text, a prominent candidate (a capital, country, division, or >= 100,000 people) is kept."""
    if all(b is not None and b.score >= FOCUS_REPLACE_BELOW for b in best):
        return best
    pts: list[tuple[str, float, float, float, str]] = [  # (key, lon, lat, weight, name)
        (k, float(b.candidate.lon), float(b.candidate.lat), b.score, b.candidate.name)  # type: ignore[arg-type]
        for k, b in zip(keys, best, strict=True) if b is not None and b.score >= 0.1
        and b.candidate.feature_code not in ("PCLI", "CONT") and not b.candidate.place_id.startswith("focus:")]
    own_point = ctx.lon is not None and ctx.lat is not None
    out = list(best)
    for i, k in enumerate(keys):
        weak = out[i]
        if weak is not None and (weak.score >= FOCUS_REPLACE_BELOW or weak.candidate.place_id.startswith("focus:")):
            continue
        members: list[tuple[str, float, float, float, str]] = []
        if own_point:
            lon, lat = float(ctx.lon), float(ctx.lat)  # type: ignore[arg-type]
            where = "the document's point"
        else:
            use = [p for p in pts if p[0] != k]
            if not use:
                continue
            votes = [sum(q[3] for q in use if haversine_km(p[1], p[2], q[1], q[2]) <= FOCUS_KM) for p in use]
            centre = use[int(np.argmax(votes))]
            members = [q for q in use if haversine_km(centre[1], centre[2], q[1], q[2]) <= FOCUS_KM]
            tot = sum(q[3] for q in members)
            lon = sum(q[1] * q[3] for q in members) / tot
            lat = sum(q[2] * q[3] for q in members) / tot
            where = f"the focus of the text's other places ({len(members)} near {centre[4]})"
        if weak is not None:
            wc = weak.candidate
            if not ctx.countries or wc.country_code in ctx.countries:
                continue  # only a namesake outside every country the text names is overruled
            if own_point or (len(members) < FOCUS_MIN_SUPPORT and (wc.population >= 100_000 or wc.feature_code in (
                    "PPLC", "PCLI", "ADM1", "CONT"))):
                continue  # one other place ("from Helsinki to Paris") is too little to overrule a prominent place
            if haversine_km(float(wc.lon), float(wc.lat), lon, lat) <= FOCUS_KM:  # type: ignore[arg-type]
                continue  # the weak candidate agrees with the rest of the text: keep it
            out[i] = Ranked(Candidate(f"focus:{round(lon, 4)},{round(lat, 4)}", keys[i], None, None, None, None, 0,
                                      lon, lat, False), FOCUS_SCORE,
                            f"best candidate {wc.name} ({wc.country_code}) is unlikely ({weak.score:.2f}) and far "
                            f"from the rest of the text: placed at {where}", weak.n_candidates)
            continue
        cand = Candidate(f"focus:{round(lon, 4)},{round(lat, 4)}", keys[i], None, None, None, None, 0, lon, lat,
                         False)
        out[i] = Ranked(cand, FOCUS_SCORE, f"no gazetteer candidate; placed at {where}", 0)
    return out


def _fall_back_to_container(best: list[Ranked | None], usable: Sequence[Sequence[Candidate]],
                            containers: dict[int, int]) -> list[Ranked | None]:
    """A name written as lying in an area (``"Lima is a town in Seminole County"``, ``"Lanexa, Va."``) with no
    candidate inside that area is a place the gazetteer lacks: the area is the best estimate we have."""
    out = list(best)
    for i in sorted(containers, reverse=True):  # innermost last: "X in Y County, Z" falls back to Y County
        j = containers[i]
        area = out[j]
        if area is None or area.candidate.feature_class not in ("A", "P"):
            continue
        a = area.candidate
        if any(_contains(a, c) or c.place_id == a.place_id for c in usable[i]):
            continue
        if out[i] is not None and _LEVEL.get(a.feature_code or "", 0) <= _LEVEL.get(
                out[i].candidate.feature_code or "", 0):  # type: ignore[union-attr]
            continue  # "Peru, Chile", "Paris, London": a list, not a container
        out[i] = Ranked(a, round(min(area.score, 0.3), 4),
                        f"not in the gazetteer inside {a.name} ({a.country_code}), named next to it: placed there; "
                        f"{len(usable[i])} candidate(s) elsewhere", len(usable[i]))
    return out
