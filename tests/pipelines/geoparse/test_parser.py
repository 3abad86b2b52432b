from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from georeset.data_catalog import merge, open_catalog, stage
from georeset.pipelines.geoparse import METHOD, Geoparser
from georeset.pipelines.harvest import document_row


def _by_surface(tops: list[Any]) -> dict[str, Any]:
    return {t.surface: t for t in tops}


def test_helsinki_and_paris(geoparser: Geoparser) -> None:
    text = "Last spring I took the night train from Helsinki to Paris."
    tops = _by_surface(geoparser.parse(text))
    assert tops["Helsinki"].country_code == "FI" and tops["Paris"].country_code == "FR"
    for t in tops.values():
        assert text[t.start:t.end] == t.surface
        assert t.place_id and t.place_id.startswith("geonames:") and 0 < t.score <= 1
        assert t.lon is not None and t.label in {"GPE", "LOC", "FAC", "GAZ"} and t.reason


def test_context_and_document_point(geoparser: Geoparser) -> None:
    tops = _by_surface(geoparser.parse("The rodeo in Paris, Texas drew a big crowd."))
    assert tops["Paris"].country_code == "US"
    text = "The new library in Paris opened on Monday."
    assert _by_surface(geoparser.parse(text))["Paris"].country_code == "FR"
    near = _by_surface(geoparser.parse(text, lon=-95.55, lat=33.66))["Paris"]  # the document lies in Texas
    assert near.country_code == "US" and "near the document" in near.reason


def test_unknown_place_and_empty(geoparser: Geoparser) -> None:
    assert geoparser.parse("") == [] and geoparser.parse(None) == []
    text = "We flew to Qwertzuiopburg yesterday."
    tops = geoparser.resolve_spans(text, [(11, 25)])
    assert tops[0].place_id is None and tops[0].reason.endswith("no gazetteer candidate") and tops[0].lon is None
    for t in geoparser.parse(text + " Then on to Helsinki."):
        assert t.place_id or "no gazetteer candidate" in t.reason


def test_long_text_read_in_chunks_not_truncated(geoparser: Geoparser) -> None:
    old = geoparser.nlp.max_length
    geoparser.nlp.max_length = 200  # spaCy refuses longer texts: the geoparser must cut them into chunks
    try:
        text = "Helsinki is nice. " * 50
        tops = geoparser.parse(text)
        assert len([t for t in tops if t.surface == "Helsinki"]) == 50
        assert max(t.end for t in tops) > 800 and all(text[t.start:t.end] == t.surface for t in tops)
    finally:
        geoparser.nlp.max_length = old


def test_text_chunks_cut_at_line_or_sentence_ends() -> None:
    from georeset.pipelines.geoparse.parser import text_chunks

    text = ("Alpha beta gamma. " * 40 + "\n") * 5
    pieces = text_chunks(text, 500)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(b - a <= 500 for a, b in pieces) and all(p[1] == q[0] for p, q in zip(pieces, pieces[1:], strict=False))
    assert all(text[b - 1] in ".\n" for a, b in pieces[:-1])
    assert text_chunks("", 10) == [(0, 0)] and text_chunks("x" * 25, 10) == [(0, 10), (10, 20), (20, 25)]


def test_gazetteer_matching_finds_what_ner_misses(geoparser: Geoparser) -> None:
    # lowercase context keeps NER quiet; the gazetteer match must be a known, capitalised place name
    tops = geoparser.parse("flights via Tampere were cancelled", lon=None, lat=None)
    assert any(t.surface == "Tampere" and t.country_code == "FI" for t in tops)
    assert not any(t.surface in {"March", "May"} for t in geoparser.parse("In March and May it rained."))


def _geoparse_catalogue(con: Any, tmp_path: Path, gp: Geoparser, when: datetime) -> int:
    """The geoparse stage's own steps on a bare catalogue connection: plan, run each batch, merge."""
    from georeset.stages.geoparse import plan, run

    files = plan(con, out_dir=tmp_path / "plan", batch_docs=2)
    staged = sum(run(f, gazetteer_dir=tmp_path / "plan" / "gazetteer", staging_dir=tmp_path, processed_at=when,
                     parser=gp)["toponyms"] for f in files)
    merge(con, table="toponyms", staging_dir=tmp_path)
    return staged


def test_stage_steps_on_a_catalogue_are_idempotent(gazetteer: tuple[Any, Any], geoparser: Geoparser,
                                                   tmp_path: Path) -> None:
    con = open_catalog(":memory:")
    stage(gazetteer[0], table="places", staging_dir=tmp_path, name="gaz")
    stage(gazetteer[1], table="place_names", staging_dir=tmp_path, name="gaz")
    merge(con, table="places", staging_dir=tmp_path)
    merge(con, table="place_names", staging_dir=tmp_path)
    when = datetime(2026, 1, 2, tzinfo=UTC)
    docs = [
        document_row(source="file", source_id="a", title="a", text="Helsinki and Espoo are neighbours.", lon=24.9,
                     lat=60.2, licence="CC0-1.0", retrieved_at=when),
        document_row(source="file", source_id="b", title="b", text="", lon=None, lat=None, licence="CC0-1.0",
                     retrieved_at=when),
        document_row(source="file", source_id="c", title="c", text="Paris and Berlin in winter.", lon=None,
                     lat=None, licence="CC-BY-SA-4.0", retrieved_at=when),
    ]
    stage(docs, table="documents", staging_dir=tmp_path)
    merge(con, table="documents", staging_dir=tmp_path)
    gp = Geoparser(geoparser.index.__class__(con), nlp=geoparser.nlp)
    n = _geoparse_catalogue(con, tmp_path, gp, when)
    assert n >= 4
    rows = con.execute("SELECT toponym_id, doc_id, surface, place_id, method, licence, score, ST_X(geom), "
                       "retrieved_at FROM toponyms ORDER BY toponym_id").fetchall()
    assert len(rows) == n
    for tid, doc_id, _surface, place_id, method, licence, score, x, retrieved_at in rows:
        assert tid.startswith(doc_id + "#") and method == METHOD and 0 <= score <= 1
        assert licence == ("CC-BY-SA-4.0" if doc_id == "file:c" else "CC0-1.0")
        assert (place_id is None) == (x is None)
        assert retrieved_at == datetime(2026, 1, 2)  # stored as naive UTC
    assert con.execute("SELECT count(*) FROM toponyms WHERE probability IS NULL OR kind NOT IN ('toponym', "
                       "'demonym') OR (place_id IS NOT NULL AND feature_class IS NULL)").fetchone()[0] == 0
    # a second run plans only the documents still without toponyms ("b", which has no text, is parsed again and
    # yields none), and nothing is duplicated
    assert _geoparse_catalogue(con, tmp_path, gp, when) == 0
    assert con.execute("SELECT count(*) FROM toponyms").fetchone()[0] == n
    # from_catalog builds the same thing
    assert Geoparser.from_catalog(con, nlp=geoparser.nlp).parse("Espoo")[0].country_code == "FI"


def test_from_catalog_needs_gazetteer() -> None:
    from georeset.errors import InputError

    with pytest.raises(InputError, match="gazetteer"):
        Geoparser.from_catalog(open_catalog(":memory:"))


def test_container_patterns_and_fallback(geoparser: Geoparser) -> None:
    text = "Lima is a small town in Oklahoma, United States. Its mayor visited Tulsa."
    lima = geoparser.resolve_spans(text, [(0, 4)])[0]
    assert lima.country_code == "US" and lima.admin1_code == "OK" and "not in the gazetteer" in lima.reason
    ohio = geoparser.resolve_spans("Lima is a city in Ohio.", [(0, 4)])[0]
    assert ohio.admin1_code == "OH" and ohio.feature_code != "ADM1"  # the real candidate, no fallback
    peru = {t.surface: t for t in geoparser.parse("Talks between Peru, Chile and Bolivia resumed.")}
    assert peru["Peru"].country_code == "PE" and peru["Chile"].country_code == "CL"  # a list, not containers


def test_gold_span_resolution_reads_the_context(geoparser: Geoparser) -> None:
    text = "Victoria is the capital city of British Columbia, Canada, on Vancouver Island."
    v = geoparser.resolve_spans(text, [(0, 8)])[0]
    assert v.country_code == "CA"
    bare = geoparser.resolve_spans(text, [(0, 8)], context=False)[0]
    assert bare.place_id is not None


def test_inhabitant_names_resolve_to_their_place(geoparser: Geoparser) -> None:
    text = "Many Texans and Californians moved there last year."
    spans = [(text.index("Texans"), text.index("Texans") + 6), (text.index("Californians"),
                                                                  text.index("Californians") + 12)]
    texans, californians = geoparser.resolve_spans(text, spans)
    assert texans.country_code == "US" and texans.feature_code == "ADM1" and texans.admin1_code == "TX"
    assert californians.feature_code == "ADM1" and californians.admin1_code == "CA"


def test_garbage_yields_nothing(geoparser: Geoparser) -> None:
    import random

    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(20_000)).decode("utf-8", errors="replace")
    assert geoparser.parse(junk) == []
    assert geoparser.parse("\x00\x01\x02 ### 1234 5678 !!!") == []


def test_spans_trimmed_and_urls_skipped(geoparser: Geoparser) -> None:
    text = "Visit\r\nHelsinki\r\n today, see http://www.paris.example.com/Helsinki and mail oslo@Tampere.fi now."
    tops = geoparser.parse(text)
    assert [t.surface for t in tops] == ["Helsinki"]
    assert tops[0].surface == text[tops[0].start:tops[0].end]


def test_entities_of_other_labels_and_organisations_do_not_hide_places(geoparser: Geoparser) -> None:
    text = ("Officers of the Helsinki Police Department said U.S.-led patrols would resume. "
            "TAMPERE \u2014 The council met on Monday.")
    surfaces = {t.surface: t for t in geoparser.parse(text)}
    assert surfaces["Helsinki"].country_code == "FI" and "organisation" in surfaces["Helsinki"].reason
    assert surfaces["U.S."].country_code == "US"
    assert surfaces["TAMPERE"].country_code == "FI"


def test_non_latin_names_kept(geoparser: Geoparser) -> None:
    text = "Встреча прошла в Москве, а потом в Москва-Сити. Москва"
    k = text.rindex("Москва")
    top = geoparser.resolve_spans(text, [(k, k + 6)])[0]
    assert top.country_code == "RU" and top.lat is not None and 50 < top.lat < 60


def test_capital_or_city_over_same_named_division(geoparser: Geoparser) -> None:
    text = "Officials in Washington said the talks in New York went well. Farmers in Washington State disagree."
    tops = geoparser.parse(text)
    by = {(t.surface, t.start): t for t in tops}
    wash = next(t for t in tops if t.surface == "Washington")
    assert wash.feature_code == "PPLC" and abs(wash.lat - 38.9) < 0.5  # type: ignore[operator]
    ny = next(t for t in tops if t.surface == "New York")
    assert ny.feature_class == "P" and abs(ny.lat - 40.7) < 0.5  # type: ignore[operator]
    state = next(t for t in by.values() if t.surface.startswith("Washington State"))
    assert state.feature_code == "ADM1" and state.admin1_code == "WA"


def test_datelines_bases_and_dealings_name_the_capital(geoparser: Geoparser) -> None:
    for text in ("WASHINGTON — The military is racing to inspect more than 90,000 buildings in Iraq.",
                 "WASHINGTON (AP) -- Senators met on Tuesday.",
                 "Egypt cooperated closely with Washington at times.",
                 "The council is a Washington-based organization of teachers."):
        k = text.lower().index("washington")
        top = geoparser.resolve_spans(text, [(k, k + 10)])[0]
        assert top.feature_code == "PPLC" and abs(top.lat - 38.9) < 0.5, text  # type: ignore[operator]
        assert "writes from" in top.reason, text
    # no cue, but the division shares its name with the capital and the text places nothing in it: the capital
    plain = geoparser.resolve_spans("Washington has many apple orchards.", [(0, 10)])[0]
    assert plain.feature_code == "PPLC" and "capital of the same name" in plain.reason
    # a town of the text inside the division, or the name written as a town's area: the division stands
    for text in ("Farmers from Spokane say Washington had a good harvest.", "He farms near Yakima, Washington."):
        k = text.index("Washington")
        top = geoparser.resolve_spans(text, [(k, k + 10)])[0]
        assert top.feature_code == "ADM1" and top.admin1_code == "WA", text


def test_commit_threshold_and_probability(geoparser: Geoparser) -> None:
    from georeset.pipelines.geoparse import commit

    tops = geoparser.parse("The mayor of Helsinki met officials from Tampere and Turku in Finland.")
    assert tops and all(0.0 < t.probability <= 1.0 and t.commit_features for t in tops)
    assert geoparser.threshold == commit.COMMIT_THRESHOLD > 0.0  # the shipped, fitted threshold
    assert all(geoparser.asserted(t) == (t.probability >= geoparser.threshold) for t in tops)
    strict = Geoparser(geoparser.index, nlp=geoparser.nlp, commit_score=1.01)
    assert not any(strict.asserted(t) for t in strict.parse("The mayor of Helsinki met officials."))


def test_common_word_alternate_is_not_a_country(geoparser: Geoparser) -> None:
    # countryinfo lists "Island" (Icelandic) as Iceland's spelling: a common English word is no alternate name
    assert not geoparser.index.lookup(["island"]).get("island")
    tops = geoparser.parse("The boat reached the Island at noon. He sailed to Island last year.")
    assert not any(geoparser.asserted(t) and t.country_code == "IS" for t in tops)
    assert any(c.country_code == "IS" for c in geoparser.index.lookup(["iceland"])["iceland"])


def test_division_short_forms(geoparser: Geoparser) -> None:
    text = "Police in Vancouver, B.C. and in Brandon, Man. said the storm moved east. The man said no."
    tops = {t.surface.rstrip("."): t for t in geoparser.parse(text)}
    assert tops["B.C"].name == "British Columbia"
    man = tops["Man"]
    assert man.name == "Manitoba" and man.kind == "toponym"
    assert sum(t.surface.lower().startswith("man") for t in geoparser.parse(text)) == 1  # not "The man"
    nsw = geoparser.resolve_spans("Flooding hit NSW on Monday.", [(13, 16)])[0]
    assert nsw.name == "New South Wales" and nsw.country_code == "AU"


def test_a_list_closed_by_counties_names_counties(geoparser: Geoparser) -> None:
    text = "Dakota, Otoe and Washington counties saw their numbers fall, said officials in Nebraska."
    tops = {(t.surface, t.start): t for t in geoparser.parse(text)}
    for name in ("Dakota", "Washington"):
        t = tops[(name, text.index(name))]
        assert t.feature_code == "ADM2" and t.admin1_code == "NE" and t.name.endswith("County"), t
    text = "The combined population of Douglas and Sarpy Counties rose, Nebraska officials said."
    tops = {(t.surface, t.start): t for t in geoparser.parse(text)}
    sarpy = tops[("Sarpy", text.index("Sarpy"))]
    assert sarpy.feature_code == "ADM2" and sarpy.admin1_code == "NE"  # "Counties" capitalised too
    text = "Boone County is near the middle of Indiana counties."
    indiana = {t.surface: t for t in geoparser.parse(text)}["Indiana"]
    assert indiana.feature_code == "ADM1"  # one name alone: the counties *of* Indiana, not Indiana County


def test_a_cued_capital_over_a_town_read_by_another_of_its_names() -> None:
    # "Washington — By most measures ...": the ranking read "Washington" as Washington Court House, Ohio (which
    # GeoNames also lists as "Washington") in a story about Ohio; the dateline names the capital. Without a cue,
    # or when the capital is not among the readings, the ranking's reading stands.
    from georeset.pipelines.geoparse.candidates import Candidate
    from georeset.pipelines.geoparse.parser import _city_over_division, _Mention
    from georeset.pipelines.geoparse.ranking import Ranked

    court_house = Candidate("wch", "Washington Court House", "P", None, "US", "OH", 14_019, -83.44, 39.54, False)
    capital = Candidate("dc", "Washington", "P", "PPLC", "US", "DC", 689_545, -77.04, 38.9, True)
    best = Ranked(court_house, 0.8, "in a division named in the text (US OH)", 37)
    for text, want in (("Washington — The stimulus bill is flying to Ohio.", capital),
                       ("Officials in Washington said Ohio gets more.", capital),
                       ("Washington schools in Ohio get more.", court_house)):
        m = _Mention(text.index("Washington"), text.index("Washington") + 10, "GPE", "washington", False)
        assert _city_over_division(text, m, best, [court_house, capital]).candidate == want, text  # type: ignore[union-attr]
    m = _Mention(0, 10, "GPE", "washington", False)
    assert _city_over_division("Washington — Ohio.", m, best, [court_house]) == best


def test_a_head_noun_after_a_name_cues_a_local_place(geoparser: Geoparser) -> None:
    # "an Elkhart man", "Danbury police": local news names people and bodies by their town; the small NER model
    # tags such a town a person or organisation, or nothing, and without the cue the name was dropped
    cases = {"An Elkhart man was hurt in a crash on Monday.": ("Elkhart", "IN"),
             "Danbury police arrested him on Monday night.": ("Danbury", "CT"),
             "Laconia residents discussed the budget.": ("Laconia", "NH")}
    for text, (name, admin1) in cases.items():
        found = [t for t in geoparser.parse(text) if t.surface == name]
        assert len(found) == 1, text
        assert (found[0].country_code, found[0].admin1_code) == ("US", admin1) and "(head)" in found[0].reason
    # a directional adjective before a head noun is no place ("Western students": a university's)
    assert geoparser.parse("Western students protested on campus.") == []


def test_a_county_court_or_office_names_its_county(geoparser: Geoparser) -> None:
    for text, (name, admin1) in {"The case went to the Kanawha Magistrate Court on Friday.": ("Kanawha", "WV"),
                                 "She appeared before the Fulton Superior Court judge.": ("Fulton", "GA")}.items():
        found = [t for t in geoparser.parse(text) if t.surface == name]
        assert len(found) == 1 and (found[0].country_code, found[0].admin1_code) == ("US", admin1), text
        assert "organisation" in found[0].reason
