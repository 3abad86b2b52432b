"""Name keys: the normalised form under which places are looked up (``place_names.name_key``)."""

from __future__ import annotations

import unicodedata

__all__ = ["is_latin", "name_key"]

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
