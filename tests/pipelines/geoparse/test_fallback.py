"""The focus fallback's support and area rules, and the comma-pairing of places with their areas."""

from __future__ import annotations

from georeset.pipelines.geoparse import Geoparser
from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.fallback import fall_back_to_container, fall_back_to_focus
from georeset.pipelines.geoparse.parser import _appositions, _containers, _Mention
from georeset.pipelines.geoparse.ranking import DocContext, Ranked, haversine_km


def _ranked(name: str, lon: float, lat: float, score: float, *, cc: str = "XX", admin1: str = "01",
            code: str = "PPL", population: int = 1000) -> Ranked:
    fclass = "A" if code.startswith("ADM") else "P"
    return Ranked(Candidate(name, name, fclass, code, cc, admin1, population, lon, lat, True), score, "", 1)


def test_focus_support_counts_names_not_mentions() -> None:
    # "Paris" (a weak French reading) written four times and "Dallas" (a large US city, weak in a text that names
    # nothing near it): one name is no focus to overrule a prominent place in another country.
    paris = _ranked("paris", 2.35, 48.85, 0.18, cc="FR", admin1="11", population=2_000_000)
    dallas = _ranked("dallas", -96.8, 32.78, 0.04, cc="US", admin1="TX", population=1_300_000)
    keys = ["paris", "paris", "dallas", "paris", "paris"]
    out = fall_back_to_focus([paris, paris, dallas, paris, paris], keys, DocContext())
    assert out[2] == dallas
    # two distinct names near each other do make a focus, and a prominent foreign namesake gives way to it
    lyon = _ranked("lyon", 2.5, 48.9, 0.5, cc="FR", admin1="11")
    out = fall_back_to_focus([paris, lyon, dallas], ["paris", "lyon", "dallas"], DocContext())
    assert out[2] is not None and out[2].candidate.place_id.startswith("focus:")


def test_a_weak_candidate_inside_the_focus_division_stands() -> None:
    # "Eden is a coastal town in New South Wales": the division's point is the centre of a wide area, hundreds of
    # kilometres from the town, yet the town lies in it.
    nsw = _ranked("new south wales", 146.0, -32.0, 0.9, cc="AU", admin1="02", code="ADM1")
    sydney = _ranked("bathurst", 149.58, -33.42, 0.6, cc="AU", admin1="02")
    eden = _ranked("eden", 149.9, -37.06, 0.15, cc="AU", admin1="02")
    keys = ["eden", "new south wales", "bathurst"]
    assert fall_back_to_focus([eden, nsw, sydney], keys, DocContext())[0] == eden
    # the same weak candidate in another division is far from the text and is replaced by the focus
    elsewhere = _ranked("eden", 115.0, -20.0, 0.15, cc="AU", admin1="08")
    out = fall_back_to_focus([elsewhere, nsw, sydney], keys, DocContext())[0]
    assert out is not None and out.candidate.place_id.startswith("focus:")


def _mentions(text: str, names: list[str]) -> list[_Mention]:
    out, at = [], 0
    for n in names:
        s = text.index(n, at)
        out.append(_Mention(s, s + len(n), "GPE", n.lower(), False))
        at = s + len(n)
    return out


def test_a_list_of_places_with_their_areas_pairs_each_place_with_its_own_area() -> None:
    levels = {"ky.": 2, "conn.": 2, "s.d.": 2, "henry county": 1, "tennessee": 2, "united states": 3}

    def level(k: str) -> int:
        return levels.get(k, 0)

    text = "The finalists were Louisville, Ky., New Haven, Conn. and Sioux Falls, S.D."
    ms = _mentions(text, ["Louisville", "Ky.", "New Haven", "Conn.", "Sioux Falls", "S.D."])
    assert _containers(text, ms, level) == {0: 1, 2: 3, 4: 5}  # never (Ky., New Haven)
    chain = "He lives in Paris, Henry County, Tennessee, United States."  # growing areas: a chain, kept whole
    names = ["Paris", "Henry County", "Tennessee", "United States"]
    assert _containers(chain, _mentions(chain, names), level) == {0: 1, 1: 2, 2: 3}


def test_a_settlement_written_in_an_area_is_never_a_list() -> None:
    text = "Lima is a small town in Oklahoma. Russia was interested in removal of Georgia's leaders. Peru, Chile."
    ms = _mentions(text, ["Lima", "Oklahoma", "Russia", "Georgia", "Peru", "Chile"])
    assert _containers(text, ms) == {0: 1, 2: 3, 4: 5}
    assert _appositions(text, ms, _containers(text, ms)) == {0}  # "is a small town in"; the other two gaps name no settlement
    # the ranking's best reading of "Lima" is a division of the same level as Oklahoma (the gazetteer lacks the
    # Oklahoma town): a comma pair of equals is a list, the apposition places Lima in Oklahoma
    lima = _ranked("lima", -76.7, -11.8, 0.5, cc="PE", admin1="15", code="ADM1")
    oklahoma = _ranked("oklahoma", -97.5, 35.5, 0.9, cc="US", admin1="OK", code="ADM1")
    usable = [[lima.candidate], [oklahoma.candidate]]
    assert fall_back_to_container([lima, oklahoma], usable, {0: 1})[0] == lima
    placed = fall_back_to_container([lima, oklahoma], usable, {0: 1}, appositions={0})[0]
    assert placed is not None and placed.candidate == oklahoma.candidate and "inside oklahoma" in placed.reason


def test_a_list_of_us_towns_with_states_resolves_each_in_its_state(geoparser: Geoparser) -> None:
    text = "The finalists were Louisville, Ky., Richmond, Va. and Denver."
    s = text.index("Richmond")
    richmond = geoparser.resolve_spans(text, [(s, s + len("Richmond"))])[0]
    assert (richmond.country_code, richmond.admin1_code) == ("US", "VA")


def test_street_names_and_unit_numbers_name_no_place(geoparser: Geoparser) -> None:
    # A street's words are not places ("Lone Oak Road" is not Loni, India; "Mineral Wells Avenue" not Mineral
    # County; "Memphis St." not Memphis), nor is a word before a lot number; a saint's name inside a town's name
    # ("East St. Louis") is no street.
    text = ("McDaniel, 19, of 1205 Lone Oak Road Lot 12, was arrested. She left her baby at a Mineral Wells Avenue "
            "store, then drove to 2517 Memphis St. and on to East St. Louis.")
    surfaces = {t.surface for t in geoparser.parse(text)}
    assert not surfaces & {"Lone", "Lot", "Mineral", "Memphis", "Lone Oak", "Mineral Wells"}
    assert "East St. Louis" in surfaces


def test_a_state_institution_names_its_state(geoparser: Geoparser) -> None:
    # "Georgia Bureau of Investigation" (an organisation to spaCy) names the state, which places Albany in it.
    text = "An Albany police SWAT team and Georgia Bureau of Investigation agents raided the home on Wednesday."
    by_surface = {t.surface: t for t in geoparser.parse(text)}
    assert (by_surface["Georgia"].country_code, by_surface["Georgia"].admin1_code) == ("US", "GA")
    assert (by_surface["Albany"].country_code, by_surface["Albany"].admin1_code) == ("US", "GA")


def test_a_first_order_division_is_no_point_of_the_focus() -> None:
    # "Laconia ... Alaska": a state is an area hundreds of km across, its point the centre of it; a story that names
    # only the state besides the town gives no focus to move the town to, so its (weak) reading stands.
    alaska = _ranked("alaska", -150.0, 64.0, 0.45, cc="US", admin1="AK", code="ADM1", population=700_000)
    laconia = _ranked("laconia", -71.47, 43.53, 0.03, cc="US", admin1="NH", population=16_000)
    keys = ["laconia", "alaska", "laconia"]
    assert fall_back_to_focus([laconia, alaska, laconia], keys, DocContext()) == [laconia, alaska, laconia]
    # a town of the text still makes a focus, and a far weak namesake still gives way to it
    juneau = _ranked("juneau", -134.42, 58.3, 0.6, cc="US", admin1="AK", population=32_000)
    out = fall_back_to_focus([laconia, alaska, juneau], ["laconia", "alaska", "juneau"], DocContext())
    assert out[0] is not None and out[0].candidate.place_id.startswith("focus:")
    assert haversine_km(out[0].candidate.lon, out[0].candidate.lat, -134.42, 58.3) < 1  # type: ignore[arg-type]
    # with no other place at all, a name without candidates is not placed at the division's centre
    assert fall_back_to_focus([None, alaska], ["lune river", "alaska"], DocContext())[0] is None


def test_a_weak_candidate_inside_a_named_state_stands_though_the_focus_lies_elsewhere() -> None:
    # "Mount Pleasant ... Texas ... Paris": the weak Texan reading lies in the state the text names, far from the
    # focus made of the other town; it agrees with the text and stands. Outside the state it gives way.
    texas = _ranked("texas", -99.0, 31.0, 0.9, cc="US", admin1="TX", code="ADM1", population=25_000_000)
    paris = _ranked("paris", -95.55, 33.66, 0.7, cc="US", admin1="TX", population=25_000)
    dallas = _ranked("dallas", -96.8, 32.78, 0.7, cc="US", admin1="TX", population=1_300_000)
    mp = _ranked("mount pleasant", -100.0, 29.0, 0.05, cc="US", admin1="TX")
    keys = ["mount pleasant", "texas", "paris", "dallas"]
    assert fall_back_to_focus([mp, texas, paris, dallas], keys, DocContext())[0] == mp
    elsewhere = _ranked("mount pleasant", -80.0, 33.0, 0.05, cc="US", admin1="SC")
    out = fall_back_to_focus([elsewhere, texas, paris, dallas], keys, DocContext())[0]
    assert out is not None and out.candidate.place_id.startswith("focus:")


def test_a_prominent_city_in_a_country_the_text_names_stands() -> None:
    # A story set in France (Grasse, Nice) that also names New York: "Los Angeles" (weak: many namesakes, no
    # support nearby) is the Californian city, not the French focus. A prominent city in a country the text
    # names nowhere still gives way to the focus.
    grasse = _ranked("grasse", 6.92, 43.66, 0.6, cc="FR", admin1="93", population=50_000)
    nice = _ranked("nice", 7.27, 43.7, 0.7, cc="FR", admin1="93", population=340_000)
    new_york = _ranked("new york", -74.0, 40.71, 0.57, cc="US", admin1="NY", population=8_000_000)
    la = _ranked("los angeles", -118.24, 34.05, 0.02, cc="US", admin1="CA", population=3_900_000)
    keys = ["los angeles", "grasse", "nice", "new york"]
    assert fall_back_to_focus([la, grasse, nice, new_york], keys, DocContext())[0] == la
    out = fall_back_to_focus([la, grasse, nice], keys[:3], DocContext())[0]
    assert out is not None and out.candidate.place_id.startswith("focus:")
