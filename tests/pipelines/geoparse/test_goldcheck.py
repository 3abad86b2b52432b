"""Gold points that lost their sign, and the share of gold names the gazetteer can place (goldcheck.py)."""

from __future__ import annotations

from typing import Any

from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.corpora import GoldDocument, GoldToponym
from georeset.pipelines.geoparse.goldcheck import check_signs, reachable, repaired, sign_flip
from georeset.pipelines.geoparse.names import name_key


def _place(name: str, lat: float, lon: float) -> Candidate:
    return Candidate(f"t:{name}:{lat}", name, "P", "PPL", "US", "MI", 1000, lon, lat, True)


PORTLAND = [_place("Portland", 42.8692, -84.9031), _place("Portland", 45.5234, -122.6762)]
DALLAS = [_place("Dallas", -37.67, 144.94), _place("Dallas", 32.78, -96.81)]


class _Index:
    def __init__(self, places: dict[str, list[Candidate]]) -> None:
        self.places = places

    def lookup(self, keys: Any) -> dict[str, list[Candidate]]:
        return {k: self.places[k] for k in keys if k in self.places}


def test_a_lost_sign_is_found_and_only_then() -> None:
    assert reachable(PORTLAND, 42.8681, -84.9028)
    assert sign_flip(PORTLAND, 42.8681, -84.9028) is None  # a right point is left alone
    which, lat, lon = sign_flip(PORTLAND, 42.8681, 84.9028)  # type: ignore[misc]  # WikToR's point, in China
    assert which == "longitude" and (lat, lon) == (42.8681, -84.9028)
    assert sign_flip(DALLAS, 37.668, 144.94)[0] == "latitude"  # type: ignore[index]  # a Melbourne suburb, off Japan
    assert sign_flip(DALLAS, -32.78, 96.81)[0] == "both"  # type: ignore[index]
    assert not reachable(PORTLAND, 10.0, 10.0) and sign_flip(PORTLAND, 10.0, 10.0) is None  # far from every one
    assert not reachable([], 42.8681, -84.9028) and sign_flip([], 42.8681, 84.9028) is None  # a name it lacks


def test_check_and_repair_documents_without_touching_the_originals() -> None:
    text = "Portland is a city in Ionia County. Portland has two rivers."
    bad = GoldToponym(0, 8, "Portland", 42.8681, 84.9028)
    good = GoldToponym(36, 44, "Portland", 42.8681, -84.9028)
    doc = GoldDocument("1", text, [bad, good])
    flips = check_signs([doc], _Index({name_key("Portland"): PORTLAND}))
    assert [(f.doc_id, f.index, f.flipped) for f in flips] == [("1", 0, "longitude")]
    fixed = repaired([doc], flips)[0]
    assert fixed.toponyms[0].lon == -84.9028 and fixed.toponyms[1] == good
    assert doc.toponyms[0].lon == 84.9028  # the corpus as read is unchanged
