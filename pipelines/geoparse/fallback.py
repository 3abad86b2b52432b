"""Fallbacks after ranking: a name the gazetteer lacks is placed in the area written next to it, or at the focus
of the text's other places (see :func:`fall_back_to_container` and :func:`fall_back_to_focus`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.ranking import (
    LEVEL,
    DocContext,
    Ranked,
    contains,
    haversine_km,
    haversine_matrix,
)

__all__ = ["FOCUS_KM", "FOCUS_MIN_SUPPORT", "FOCUS_REPLACE_BELOW", "FOCUS_SCORE", "fall_back_to_container",
           "fall_back_to_focus"]

FOCUS_SCORE = 0.65
# A best candidate scoring below this that lies far from the rest of the text is replaced by the text's focus.
# Chosen on the dev halves (even documents) of LGL and of WikToR 1-800 with the joint ranker (acc161 LGL dev /
# WikToR dev): off 0.878 / 0.741; 0.2 outside named countries only 0.881 / 0.782; 0.1 anywhere 0.874 / 0.789;
# 0.2 anywhere 0.873 / 0.802 (kept: best sum); higher thresholds gain WikToR nothing more and cost LGL.
FOCUS_REPLACE_BELOW = 0.2
FOCUS_KM = 161.0
FOCUS_OUTSIDE_NAMED_ONLY = False  # True: only a namesake outside every country the text names
FOCUS_MIN_SUPPORT = 2
PROMINENT_POPULATION = 100_000
# A prominent best candidate (a capital, country, first-order division or a city of >= 100,000) in the country of
# the text's focus is not replaced by the focus (a foreign namesake still is: "Paris" in an article about a town in
# Kentucky). Chosen on the fitted halves (acc161 on gold spans, LGL even documents / WikToR 1001-1600): replacement
# as before 0.8745 (LGL, with the new recognition) / 0.7988 (WikToR, before it), replacement off 0.8823 / 0.7404,
# every prominent place kept 0.8842 / 0.7834; this rule: docs/geoparsing.md.
FOCUS_KEEP_PROMINENT = True
# The focus's support (:data:`FOCUS_MIN_SUPPORT`) counts the distinct names near it, not their mentions: "Paris"
# written seven times in a Texan story is one name, and a focus made of it alone no longer overrules Dallas.
# Fitted halves, acc161 on gold spans (LGL even / WikToR 1001-1600): mentions 0.8906 / 0.8165, names 0.8952 / 0.8159.
FOCUS_SUPPORT_NAMES = True
# A weak candidate inside a division (ADM1/ADM2) that is itself one of the focus's places agrees with the text even
# when it lies far from the division's point ("Eden ... New South Wales", "Avondale ... Newfoundland": a division's
# point is the centre of a wide area). Fitted halves: 0.8962 / 0.8159 without, 0.8980 / 0.8165 with.
FOCUS_AREA_KEEPS = True
# A prominent best candidate in a country where another name of the text surely lies (a place of any kind scoring
# >= :data:`SURE_SCORE`: "New York" makes the text partly American) stands as well: "Los Angeles" in a story set in
# France that also names New York is the Californian city, not the French focus. Fitted halves, acc161 on gold
# spans (LGL even / WikToR 1001-1600): 0.9128 / 0.8249 without, 0.9137 / 0.8249 with (round 11).
FOCUS_KEEP_PROMINENT_NAMED = True
SURE_SCORE = 0.3
# A first-order division (a state, a province) is too wide to be a point of the focus, as a country is: its point
# is the centre of an area hundreds of km across ("Laconia ... Alaska" moved Laconia, New Hampshire, to Alaska's
# centre), so the focus is made of towns and second-order divisions only, and a weak candidate inside a
# first-order division the text names agrees with the text and stands ("Mount Pleasant ... Texas"). Fitted halves,
# same shipped weights: 0.9137 / 0.8249 without, 0.9169 / 0.8290 with (round 11).
FOCUS_WIDE_AREAS_NAMED = True


def _too_wide() -> tuple[str, ...]:
    """Feature codes too wide to be a point of the focus."""
    return ("PCLI", "CONT", "ADM1") if FOCUS_WIDE_AREAS_NAMED else ("PCLI", "CONT")


def fall_back_to_focus(best: list[Ranked | None], keys: Sequence[str], ctx: DocContext) -> list[Ranked | None]:
    """A name with no candidate at all (a river, a district, a small town the gazetteer lacks), or whose best
    candidate is unlikely (score below :data:`FOCUS_REPLACE_BELOW`: a namesake far away) and lies more than
    :data:`FOCUS_KM` from the rest of the text, is placed at the focus of the text: the densest cluster (within :data:`FOCUS_KM`) of the other places resolved in it, towns and
    second-order divisions only (countries, continents and first-order divisions are too wide to stand for a place,
    :data:`FOCUS_WIDE_AREAS_NAMED`). Texts are mostly about one area,
    so this is usually within 161 km; the score :data:`FOCUS_SCORE` is about the share of such placements that
    were, measured on WikToR documents 2001-2400 (gold spans: 0.67; on LGL, for validation, 0.66). With a single
    other place in the text, a prominent candidate (a capital, country, division, or >= 100,000 people) is kept
    (the focus's support counts distinct names, :data:`FOCUS_SUPPORT_NAMES`), and so is a weak candidate inside a
    division the focus is made of (:data:`FOCUS_AREA_KEEPS`) or in a first-order division the text names, and a
    prominent candidate in a country where another of the text's names surely lies
    (:data:`FOCUS_KEEP_PROMINENT_NAMED`).

    A document's own point (``ctx.lon``/``ctx.lat``; e.g. a per-source prior) already weighs in the ranking
    (``near_point``), so the focus of the text's places leans towards it; the point itself is used only for a text
    with no other place, and a weak candidate within :data:`FOCUS_KM` of it is kept. (It used to take the focus's
    place outright and keep every weak candidate: on LGL's fitted half with the source prior, acc161 on gold
    spans 0.941 that way; see docs/geoparsing.md.)"""
    if all(b is not None and b.score >= FOCUS_REPLACE_BELOW for b in best):
        return best
    # One point per name (mentions of a name are resolved alike), votes computed once: a name's vote for a centre
    # leaves out its own contribution, so a weak name is never its own support (cost: names^2 per window).
    first: dict[str, int] = {}
    count: dict[str, int] = {}  # a name written n times weighs n times
    # looked up per weak name, so kept by value: a first-order division (country, admin1) -> the names read as it,
    # a country -> the names whose sure reading lies in it
    adm1_names: dict[tuple[str | None, str | None], set[str]] = {}
    sure_names: dict[str, set[str]] = {}
    too_wide = _too_wide()
    for i, (k, b) in enumerate(zip(keys, best, strict=True)):
        if b is None or b.score < 0.1 or b.candidate.place_id.startswith("focus:"):
            continue
        if b.score >= SURE_SCORE and b.candidate.country_code:
            sure_names.setdefault(b.candidate.country_code, set()).add(k)
        division = _division_of(b)
        if FOCUS_WIDE_AREAS_NAMED and division is not None and b.candidate.feature_code == "ADM1":
            adm1_names.setdefault(division, set()).add(k)
        if b.candidate.feature_code not in too_wide:
            first.setdefault(k, i)
            count[k] = count.get(k, 0) + 1
    pts: list[tuple[str, float, float, float, str, str | None]] = [  # (key, lon, lat, weight, name, country)
        (k, float(best[i].candidate.lon), float(best[i].candidate.lat), best[i].score,  # type: ignore[union-attr,arg-type]
         best[i].candidate.name, best[i].candidate.country_code) for k, i in first.items()]  # type: ignore[union-attr]
    area_pt = [_division_of(best[i]) for i in first.values()]  # the (country, admin1) of a division's point
    if pts:
        lons, lats = np.array([p[1] for p in pts]), np.array([p[2] for p in pts])
        close = haversine_matrix(lons, lats, lons, lats) <= FOCUS_KM
        mult = np.array([count[p[0]] for p in pts], dtype=float)
        wts = np.array([p[3] for p in pts]) * mult
        votes = close @ wts
    own_point = ctx.lon is not None and ctx.lat is not None
    out = list(best)
    placed: dict[str, tuple[float, float, str, int, str | None]] = {}
    focus_areas: dict[str, set[tuple[str | None, str | None]]] = {}
    for i, k in enumerate(keys):
        weak = out[i]
        if weak is not None and (weak.score >= FOCUS_REPLACE_BELOW or weak.candidate.place_id.startswith("focus:")):
            continue
        n_members = 0
        focus_cc: str | None = None
        if k in placed:
            lon, lat, where, n_members, focus_cc = placed[k]
        elif not pts or all(p[0] == k for p in pts):
            if not own_point:
                continue
            lon, lat = float(ctx.lon), float(ctx.lat)  # type: ignore[arg-type]
            where = "the document's point"  # the text has no other place: its own point is all there is
            placed[k] = (lon, lat, where, n_members, focus_cc)
        else:
            mine = np.array([p[0] == k for p in pts], dtype=bool)
            v = np.where(mine, -np.inf, votes - (close[:, mine] @ wts[mine] if mine.any() else 0.0))
            c = int(np.argmax(v))
            members = close[c] & ~mine
            tot = float(wts[members].sum())
            lon = float((lons[members] * wts[members]).sum() / tot)
            lat = float((lats[members] * wts[members]).sum() / tot)
            n_members = int(members.sum()) if FOCUS_SUPPORT_NAMES else int(mult[members].sum())
            where = f"the focus of the text's other places ({n_members} near {pts[c][4]})"
            focus_cc = pts[c][5]
            focus_areas[k] = {a for a, mm in zip(area_pt, members, strict=True) if mm and a is not None}
            placed[k] = (lon, lat, where, n_members, focus_cc)
        if weak is not None:
            wc = weak.candidate
            if FOCUS_OUTSIDE_NAMED_ONLY and (not ctx.countries or wc.country_code in ctx.countries):
                continue  # only a namesake outside every country the text names is overruled
            prominent = wc.population >= PROMINENT_POPULATION or wc.feature_code in ("PPLC", "PCLI", "ADM1", "CONT")
            same_country = focus_cc is not None and wc.country_code == focus_cc
            if FOCUS_KEEP_PROMINENT_NAMED and not same_country and wc.country_code:
                same_country = bool(sure_names.get(wc.country_code, set()) - {k})
            if FOCUS_AREA_KEEPS and wc.admin1_code and (wc.country_code, wc.admin1_code) in focus_areas.get(k, ()):
                continue  # inside a division the focus is made of: it agrees with the text
            if FOCUS_WIDE_AREAS_NAMED and wc.admin1_code and wc.feature_code != "ADM1" \
                    and adm1_names.get((wc.country_code, wc.admin1_code), set()) - {k}:
                continue  # inside a first-order division the text names: it agrees with the text
            if prominent and ((FOCUS_KEEP_PROMINENT and same_country) or n_members < FOCUS_MIN_SUPPORT):
                continue  # a prominent place in the country the text is about stands (Denver in a Texan story)
            if own_point and haversine_km(float(wc.lon), float(wc.lat), float(ctx.lon),  # type: ignore[arg-type]
                                          float(ctx.lat)) <= FOCUS_KM:  # type: ignore[arg-type]
                continue  # near the document's own point: the ranker's choice stands
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


def _division_of(r: Ranked | None) -> tuple[str | None, str | None] | None:
    c = r.candidate if r is not None else None
    if c is None or c.feature_code not in ("ADM1", "ADM2") or not c.admin1_code:
        return None
    return c.country_code, c.admin1_code


def fall_back_to_container(best: list[Ranked | None], usable: Sequence[Sequence[Candidate]],
                            containers: dict[int, int], appositions: Collection[int] = ()) -> list[Ranked | None]:
    """A name written as lying in an area (``"Lima is a town in Seminole County"``, ``"Lanexa, Va."``) with no
    candidate inside that area is a place the gazetteer lacks: the area is the best estimate we have. A comma pair
    of two names of the same level is a list ("Peru, Chile"), an apposition (``appositions``) never is."""
    out = list(best)
    for i in sorted(containers, reverse=True):  # innermost last: "X in Y County, Z" falls back to Y County
        j = containers[i]
        area = out[j]
        if area is None or area.candidate.feature_class not in ("A", "P"):
            continue
        a = area.candidate
        if any(contains(a, c) or c.place_id == a.place_id for c in usable[i]):
            continue
        if out[i] is not None and i not in appositions and LEVEL.get(a.feature_code or "", 0) <= LEVEL.get(
                out[i].candidate.feature_code or "", 0):  # type: ignore[union-attr]
            continue  # "Peru, Chile", "Paris, London": a list, not a container
        out[i] = Ranked(a, round(min(area.score, 0.3), 4),
                        f"not in the gazetteer inside {a.name} ({a.country_code}), named next to it: placed there; "
                        f"{len(usable[i])} candidate(s) elsewhere", len(usable[i]))
    return out
