"""Fallbacks of the ranker and name variants (pure functions, no spaCy)."""

from __future__ import annotations

import pytest

from georeset.pipelines.geoparse import ranking
from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.parser import name_variants
from georeset.pipelines.geoparse.ranking import DocContext, haversine_km, resolve_document


def _c(pid: str, name: str, lon: float, lat: float, pop: int = 1000, cc: str = "US", a1: str = "OH",
       code: str | None = None) -> Candidate:
    return Candidate(pid, name, "P", code, cc, a1, pop, lon, lat, True)


def test_name_variants() -> None:
    assert "fort worth" in name_variants("ft worth")
    assert "monroe" in name_variants("monroe township")
    assert "hague" in name_variants("the hague")
    assert name_variants("paris") == []


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
    monkeypatch.setattr(ranking, "FOCUS_REPLACE_BELOW", 0.35)  # off by default (see ranking)
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
