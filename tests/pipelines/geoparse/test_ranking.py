"""Joint ranking, its fallbacks and name variants (pure functions, no spaCy)."""

from __future__ import annotations

import pytest

from georeset.pipelines.geoparse import fallback, ranking
from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.parser import _prominent_reading, demonym_variants, name_variants
from georeset.pipelines.geoparse.ranking import DocContext, haversine_km, resolve_document


def _c(pid: str, name: str, lon: float, lat: float, pop: int = 1000, cc: str = "US", a1: str = "OH",
       code: str | None = None, primary: bool = True) -> Candidate:
    fclass = "A" if code in ("PCLI", "ADM1", "ADM2") else "P"
    return Candidate(pid, name, fclass, code, cc, a1, pop, lon, lat, primary)


def test_name_variants() -> None:
    assert "fort worth" in name_variants("ft worth")
    assert "monroe" in name_variants("monroe township")
    assert "hague" in name_variants("the hague")
    assert name_variants("paris") == ["paris county", "paris parish"]  # a county written without its area word
    assert name_variants("loudon co") == ["loudon county"] and "pointe coupee parish" in name_variants("pointe coupee")
    assert name_variants("county mayo") == ["mayo county"]
    assert name_variants("mayo county")[0] == "county mayo"  # the other order is tried before the bare name


def test_demonym_variants_and_prominent_reading() -> None:
    assert "ontario" in demonym_variants("ontarians") and "texas" in demonym_variants("texan")
    assert demonym_variants("new yorkers") == ["new york"] and demonym_variants("richmondites") == ["richmond"]
    assert demonym_variants("paris") == []
    texas = [_c("tx", "Texas", -99.0, 31.0, 25_000_000, a1="TX", code="ADM1")]
    texa = [_c("t", "Texa", 10.0, 10.0, 800, "NG", "01")]
    assert _prominent_reading([texa, texas]) is texas
    # a stem that only matches a village ("Palawan" -> "Palawa") or an alternate name is no inhabitant name
    assert _prominent_reading([texa]) is None
    assert _prominent_reading([[_c("f", "Fargo", -96.8, 46.9, 120_000, a1="ND", primary=False)]]) is None


def test_unknown_name_placed_at_the_text_focus() -> None:
    columbus = [_c("1", "Columbus", -83.0, 39.96, 900_000)]
    dublin = [_c("2", "Dublin", -83.11, 40.1, 40_000)]
    out = resolve_document([columbus, [], dublin], ["columbus", "olentangy river", "dublin"], DocContext())
    r = out[1]
    assert r is not None and r.candidate.place_id.startswith("focus:") and r.n_candidates == 0
    assert haversine_km(r.candidate.lon, r.candidate.lat, -83.0, 40.0) < 50  # type: ignore[arg-type]
    alone = resolve_document([[]], ["nowhere"], DocContext())
    assert alone[0] is None


def test_far_unlikely_namesake_replaced_but_prominent_place_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fallback, "FOCUS_REPLACE_BELOW", 0.35)
    ctx_places = [[_c("1", "Homs", 36.7, 34.7, 700_000, "SY", "11")], [_c("2", "Palmyra", 38.27, 34.55, 50_000,
                                                                          "SY", "11")]]
    namesake = [_c("3", "Arak", 49.7, 34.1, 500, "IR", "34"), _c("7", "Arak", 10.0, 50.0, 800, "DE", "01")]
    syria = [Candidate("8", "Syria", "A", "PCLI", "SY", None, 20_000_000, 38.0, 35.0, True)]
    out = resolve_document([*ctx_places, syria, namesake], ["homs", "palmyra", "syria", "arak"], DocContext())
    r = out[3]
    assert r is not None and r.candidate.place_id.startswith("focus:") and "unlikely" in r.reason
    assert r.n_candidates == 2 and haversine_km(r.candidate.lon, r.candidate.lat, 38.57, 34.65) < 161  # type: ignore[arg-type]
    helsinki = [_c("4", "Helsinki", 24.94, 60.17, 600_000, "FI", "18")]
    paris = [_c("5", "Paris", 2.35, 48.86, 2_000_000, "FR", "11", "PPLC"), _c("6", "Paris", -95.55, 33.66, 25_000)]
    out = resolve_document([helsinki, paris], ["helsinki", "paris"], DocContext())
    assert out[1] is not None and out[1].candidate.place_id == "5"


def test_namesakes_resolved_jointly() -> None:
    """Neither name alone points to Tennessee; together a Paris 20 km from a Henry County does."""
    paris = [_c("fr", "Paris", 2.35, 48.86, 2_000_000, "FR", "11", "PPLC"), _c("tx", "Paris", -95.55, 33.66, 25_000,
             a1="TX"), _c("tn", "Paris", -88.33, 36.30, 10_000, a1="TN")]
    henry = [_c("ga", "Henry County", -84.15, 33.45, 200_000, a1="GA", code="ADM2"),
             _c("htn", "Henry County", -88.30, 36.33, 30_000, a1="TN", code="ADM2")]
    alone = resolve_document([paris], ["paris"], DocContext())
    assert alone[0] is not None and alone[0].candidate.place_id == "fr"
    out = resolve_document([paris, henry], ["paris", "henry county"], DocContext())
    assert [r.candidate.place_id for r in out if r is not None] == ["tn", "htn"]
    assert "(US TN)" in out[0].reason  # type: ignore[union-attr]


def test_division_named_in_the_text_wins() -> None:
    lima = [_c("pe", "Lima", -77.03, -12.04, 8_000_000, "PE", "15", "PPLC"), _c("oh", "Lima", -84.1, 40.74, 38_000)]
    ohio = [_c("ohio", "Ohio", -82.8, 40.3, 11_000_000, a1="OH", code="ADM1")]
    out = resolve_document([lima, ohio], ["lima", "ohio"], DocContext())
    assert out[0] is not None and out[0].candidate.place_id == "oh"
    assert out[0].score > resolve_document([lima], ["lima"], DocContext())[0].score  # type: ignore[union-attr]


def test_alternate_name_shadowed_by_a_primary_one() -> None:
    """"Philadelphia" is also an old name of Amman (a capital): flagged as shadowed by the city that carries it as
    its name, which wins as soon as the text gives any hint (here: Pennsylvania)."""
    cands = [_c("amman", "Amman", 35.93, 31.95, 1_300_000, "JO", "16", "PPLC", primary=False),
             _c("phl", "Philadelphia", -75.16, 39.95, 1_500_000, a1="PA")]
    feats = ranking.candidate_features(cands, DocContext())
    assert feats[0, ranking.FEATURES.index("shadowed")] == 1.0 and feats[1, ranking.FEATURES.index("shadowed")] == 0
    # alone in the text, the capital matched only by an old name does not win on its capital status
    assert feats[0, ranking.FEATURES.index("pplc")] == 0.0
    alone = resolve_document([cands], ["philadelphia"], DocContext())
    assert alone[0] is not None and alone[0].candidate.place_id == "phl"
    amman = ranking.candidate_features([cands[0]], DocContext())  # no primary holder: a capital all the same
    assert amman[0, ranking.FEATURES.index("pplc")] == 1.0
    penn = [_c("pa", "Pennsylvania", -77.6, 40.9, 12_000_000, a1="PA", code="ADM1")]
    out = resolve_document([cands, penn], ["philadelphia", "pennsylvania"], DocContext())
    assert out[0] is not None and out[0].candidate.place_id == "phl"


def test_document_point_decides() -> None:
    cands = [_c("a", "Springfield", -89.65, 39.8, 116_000, a1="IL"), _c("b", "Springfield", -72.59, 42.1, 150_000,
             a1="MA")]
    r = ranking.rank(cands, DocContext(lon=-89.6, lat=39.7))
    assert r is not None and r.candidate.place_id == "a" and "document's point" in r.reason
