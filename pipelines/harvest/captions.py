"""Captions from OSM tags, in the spirit of SkyScript: the name, what it is (with the defining tag), where, and a
few salient attributes, e.g. ``"Kaivopuisto, a park (leisure=park) in Helsinki; wheelchair accessible."``."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PRIMARY_KEYS", "caption", "feature_kind"]

# Tag keys that say what a feature is, most specific first.
PRIMARY_KEYS: tuple[str, ...] = (
    "amenity", "shop", "tourism", "historic", "leisure", "sport", "office", "craft", "healthcare", "emergency",
    "public_transport", "railway", "aeroway", "man_made", "military", "building", "landuse", "natural", "waterway",
    "water", "place", "highway", "boundary",
)

_KIND_OVERRIDES: dict[tuple[str, str], str] = {
    ("building", "yes"): "building",
    ("amenity", "fuel"): "fuel station",
    ("amenity", "fast_food"): "fast food restaurant",
    ("amenity", "parking"): "car park",
    ("amenity", "place_of_worship"): "place of worship",
    ("shop", "yes"): "shop",
    ("landuse", "yes"): "land use area",
    ("natural", "water"): "body of water",
    ("natural", "wood"): "wood",
    ("leisure", "pitch"): "sports pitch",
    ("highway", "residential"): "residential street",
    ("highway", "service"): "service road",
    ("highway", "footway"): "footpath",
    ("highway", "cycleway"): "cycle path",
    ("highway", "pedestrian"): "pedestrian street",
    ("highway", "primary"): "primary road",
    ("highway", "secondary"): "secondary road",
    ("highway", "tertiary"): "tertiary road",
    ("highway", "trunk"): "trunk road",
    ("highway", "motorway"): "motorway",
    ("highway", "unclassified"): "minor road",
    ("highway", "bus_stop"): "bus stop",
    ("railway", "station"): "railway station",
    ("railway", "tram_stop"): "tram stop",
    ("place", "suburb"): "suburb",
    ("place", "neighbourhood"): "neighbourhood",
}


def feature_kind(tags: Mapping[str, str]) -> tuple[str, str, str] | None:
    """``(kind words, key, value)`` from the first defining tag, or None."""
    for key in PRIMARY_KEYS:
        value = tags.get(key)
        if not value or value == "no":
            continue
        kind = _KIND_OVERRIDES.get((key, value))
        if kind is None:
            kind = value.replace("_", " ").replace(";", " / ")
            if value == "yes":
                kind = key.replace("_", " ")
        return kind, key, value
    return None


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _details(tags: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    if tags.get("cuisine"):
        out.append(f"{tags['cuisine'].replace('_', ' ').replace(';', ', ')} cuisine")
    if tags.get("religion"):
        denom = tags.get("denomination", "").replace("_", " ")
        out.append(f"{denom + ' ' if denom else ''}{tags['religion']}".strip())
    if tags.get("sport") and not tags.get("leisure") == "sports_centre":
        out.append(f"for {tags['sport'].replace('_', ' ').replace(';', ', ')}")
    if tags.get("building:levels"):
        out.append(f"{tags['building:levels']} levels")
    if tags.get("height"):
        out.append(f"{tags['height']} m high")
    if tags.get("start_date"):
        out.append(f"built {tags['start_date']}")
    if tags.get("operator"):
        out.append(f"operated by {tags['operator']}")
    if tags.get("surface"):
        out.append(f"{tags['surface'].replace('_', ' ')} surface")
    if tags.get("wheelchair") == "yes":
        out.append("wheelchair accessible")
    if tags.get("opening_hours") == "24/7":
        out.append("open 24/7")
    return out


def caption(name: str, tags: Mapping[str, str], *, place: str | None = None) -> str:
    """Caption text for one named feature. ``place`` (a town) is used when ``addr:city`` is absent."""
    kind = feature_kind(tags)
    where = tags.get("addr:city") or place
    text = name
    if kind is not None:
        words, key, value = kind
        text += f", {_article(words)} {words} ({key}={value})"
    if where and where != name:
        text += f" in {where}"
    details = _details(tags)
    if details:
        text += "; " + ", ".join(details)
    return text + "."
