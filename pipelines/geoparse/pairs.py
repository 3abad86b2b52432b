"""A town and a county that the text names together and that lie together are read together.

The joint ranking's division votes are a belief-weighted maximum: a state written twice ("a Louisiana man ... of
Sulphur, La.") outweighs a county ("Madison County") whose own belief is spread over its 19 namesakes, so
"Richmond" went to Louisiana although Richmond, Kentucky is the seat of Madison County, Kentucky. When exactly one
reading of a town lies within :data:`PAIR_KM` of a reading of a county the text names (same country and first-order
division), that pairing is the text's own evidence for both names and stands over a division vote, unless a name is
already read surely (:data:`PAIR_SURE`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.ranking import Ranked, haversine_km

__all__ = ["PAIR_KM", "PAIR_SCORE", "PAIR_SURE", "read_town_county_pairs"]

PAIR_KM = 50.0  # a town this close to a county's point lies in it or next to it ("Columbus ... Harris County")
PAIR_SURE = 0.5  # a name read with at least this score keeps its reading
PAIR_SCORE = 0.5  # the score of a reading chosen by its pairing


def _county_name(cands: Sequence[Candidate]) -> bool:
    """Every reading is a second-order division: the name was written as a county ("Madison County")."""
    return bool(cands) and all(c.feature_code == "ADM2" for c in cands)


def read_town_county_pairs(cands: Mapping[str, Sequence[Candidate]], best: Mapping[str, Ranked]
                           ) -> dict[str, Ranked]:
    """The names whose reading changes (name key -> new reading): for each name read as a town with a score below
    :data:`PAIR_SURE`, the readings of its name (primary names only) that lie within :data:`PAIR_KM` of a reading
    of a county name of the text in the same first-order division; when they are one town, the town and the
    county readings it pairs with are chosen (a county already read surely keeps its reading)."""
    counties = [k for k, cs in cands.items() if _county_name(cs)]
    if not counties:
        return {}
    # a county read surely pairs with its own reading only ("Warren County ... Virginia" is not the one in Indiana)
    readings = {ck: [best[ck].candidate] if ck in best and best[ck].score >= PAIR_SURE else list(cands[ck])
                for ck in counties}
    out: dict[str, Ranked] = {}
    for k, cs in cands.items():
        b = best.get(k)
        if k in counties or b is None or b.candidate.feature_class != "P" or b.score >= PAIR_SURE:
            continue
        pairs: list[tuple[Candidate, str, Candidate]] = []
        for t in cs:
            if t.feature_class != "P" or not t.is_primary or not t.country_code or not t.admin1_code:
                continue
            for ck in counties:
                pairs.extend((t, ck, c) for c in readings[ck]
                             if c.country_code == t.country_code and c.admin1_code == t.admin1_code
                             and haversine_km(float(t.lon), float(t.lat), float(c.lon), float(c.lat))  # type: ignore[arg-type]
                             <= PAIR_KM)
        if len({t.place_id for t, _, _ in pairs}) != 1:
            continue  # no pairing, or several towns of the name pair with the text's counties: nothing to say
        town = pairs[0][0]
        if town.place_id != b.candidate.place_id:
            out[k] = _paired(town, b, pairs[0][2])
        for ck in {ck for _, ck, _ in pairs}:
            mine = [c for _, kk, c in pairs if kk == ck]
            cb = out.get(ck, best.get(ck))
            if len(mine) == 1 and cb is not None and cb.candidate.place_id != mine[0].place_id \
                    and cb.score < PAIR_SURE:
                out[ck] = _paired(mine[0], cb, town)
    return out


def _paired(c: Candidate, was: Ranked, other: Candidate) -> Ranked:
    return Ranked(c, max(PAIR_SCORE, was.score), f"lies together with {other.name} ({other.country_code} "
                  f"{other.admin1_code}), also named in the text; {was.n_candidates} candidate(s)", was.n_candidates)
