"""A town and a county that the text names together and that lie together are read together."""

from __future__ import annotations

from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.pairs import read_town_county_pairs
from georeset.pipelines.geoparse.ranking import Ranked


def _c(pid: str, name: str, lon: float, lat: float, admin1: str, *, code: str | None = None,
       population: int = 5000, primary: bool = True) -> Candidate:
    return Candidate(pid, name, "A" if code else "P", code, "US", admin1, population, lon, lat, primary)


RICHMOND_KY = _c("r-ky", "Richmond", -84.29, 37.75, "KY", population=33_533)
RICHMOND_LA = _c("r-la", "Richmond", -91.42, 32.39, "LA", population=543)
RICHMOND_VA = _c("r-va", "Richmond", -77.46, 37.55, "VA", population=226_610)
MADISON_KY = _c("m-ky", "Madison County", -84.28, 37.72, "KY", code="ADM2", population=48_415)
MADISON_MS = _c("m-ms", "Madison County", -90.03, 32.63, "MS", code="ADM2", population=66_766)
LOUISIANA = _c("la", "Louisiana", -92.0, 31.0, "LA", code="ADM1", population=4_500_000)


def _best(c: Candidate, score: float) -> Ranked:
    return Ranked(c, score, "", 3)


def test_a_town_and_the_county_it_lies_in_outweigh_a_state_vote() -> None:
    # "A Richmond man ... Madison County ... a Louisiana man": the state vote read Richmond in Louisiana and the
    # county's belief is spread over its namesakes, but one Richmond lies in one of the Madison Counties.
    cands = {"richmond": [RICHMOND_VA, RICHMOND_KY, RICHMOND_LA], "madison county": [MADISON_MS, MADISON_KY],
             "louisiana": [LOUISIANA]}
    best = {"richmond": _best(RICHMOND_LA, 0.27), "madison county": _best(MADISON_MS, 0.08),
            "louisiana": _best(LOUISIANA, 0.99)}
    out = read_town_county_pairs(cands, best)
    assert out["richmond"].candidate == RICHMOND_KY and out["madison county"].candidate == MADISON_KY
    assert "louisiana" not in out and out["richmond"].score >= 0.27
    # a town read surely keeps its reading, and so does a county read surely
    assert read_town_county_pairs(cands, {**best, "richmond": _best(RICHMOND_VA, 0.8)}) == {}
    sure_county = {**best, "madison county": _best(MADISON_MS, 0.9)}
    assert read_town_county_pairs(cands, sure_county) == {}


def test_no_pairing_or_several_towns_pairing_change_nothing() -> None:
    far = {"richmond": [RICHMOND_VA, RICHMOND_LA], "madison county": [MADISON_MS, MADISON_KY]}
    best = {"richmond": _best(RICHMOND_LA, 0.2), "madison county": _best(MADISON_MS, 0.1)}
    assert read_town_county_pairs(far, best) == {}  # no Richmond lies near a Madison County
    richmond_ms = _c("r-ms", "Richmond", -90.1, 32.6, "MS")  # a second pairing: the text cannot tell which
    two = {"richmond": [RICHMOND_KY, richmond_ms], "madison county": [MADISON_MS, MADISON_KY]}
    assert read_town_county_pairs(two, best) == {}
    alt = _c("r-alt", "Richwood", -84.3, 37.7, "KY", primary=False)  # matched by an alternate name only
    assert read_town_county_pairs({"richmond": [RICHMOND_LA, alt], "madison county": [MADISON_KY]},
                                  {"richmond": _best(RICHMOND_LA, 0.2),
                                   "madison county": _best(MADISON_KY, 0.1)}) == {}
