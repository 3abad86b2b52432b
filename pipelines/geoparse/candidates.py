"""Candidate places for name keys, looked up in DuckDB (the catalogue, or an in-memory copy of gazetteer rows).

Lookups are batched (one query for all keys of a batch of documents) and cached, so the gazetteer never has to
be held in Python memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

__all__ = ["SPELLINGS", "Candidate", "CandidateIndex", "spellings"]

#: a name's first word and the other way it is written: "Mt. Pleasant" is "Mount Pleasant", "St. Louis" is
#: "Saint Louis", "Ft. Worth" is "Fort Worth". GeoNames files a place under one or both; the text may use either.
SPELLINGS = {"mt": "mount", "mount": "mt", "st": "saint", "saint": "st", "ste": "sainte", "sainte": "ste",
             "ft": "fort", "fort": "ft"}


def spellings(key: str) -> list[str]:
    """The name key and its other spelling (:data:`SPELLINGS`, first word only; names of one word have none)."""
    first, _, rest = key.partition(" ")
    return [key, f"{SPELLINGS[first]} {rest}"] if rest and first in SPELLINGS else [key]


@dataclass(frozen=True, slots=True)
class Candidate:
    place_id: str
    name: str
    feature_class: str | None
    feature_code: str | None
    country_code: str | None
    admin1_code: str | None
    population: int
    lon: float | None
    lat: float | None
    is_primary: bool
    extent_m: float | None = None  # the larger side of the place's extent (its box), when the gazetteer has one


_QUERY = """
SELECT n.name_key, p.place_id, p.name, p.feature_class, p.feature_code, p.country_code, p.admin1_code,
       coalesce(p.population, 0), p.lon, p.lat, n.is_primary, p.extent_m
FROM {names} n JOIN {places} p ON p.place_id = n.place_id
WHERE n.name_key IN (SELECT unnest(?::VARCHAR[]))
QUALIFY row_number() OVER (PARTITION BY n.name_key ORDER BY coalesce(p.population, 0) DESC, p.place_id) <= ?
"""


class CandidateIndex:
    """``lookup(keys) -> {key: [Candidate, ...]}`` (most populous first, at most ``max_candidates`` a key)."""

    def __init__(self, con: Any, *, places: str = "places", names: str = "place_names", max_candidates: int = 200,
                 cache_size: int = 200_000) -> None:
        self.con = con
        self.names = names
        self.sql = _QUERY.format(places=places, names=names)
        self.max_candidates = max_candidates
        self.cache_size = cache_size
        self._cache: dict[str, list[Candidate]] = {}
        self._rests: dict[tuple[str, ...], frozenset[str]] = {}

    @classmethod
    def from_tables(cls, places: pa.Table, place_names: pa.Table, **kw: Any) -> CandidateIndex:
        """An index over in-memory gazetteer tables (or lists of row dicts), e.g. from ``gazetteer_rows()``."""
        import duckdb

        con = duckdb.connect()
        p = places if isinstance(places, pa.Table) else pa.Table.from_pylist(list(places))
        n = place_names if isinstance(place_names, pa.Table) else pa.Table.from_pylist(list(place_names))
        cols = ["place_id", "name", "feature_class", "feature_code", "country_code", "admin1_code", "population",
                "lon", "lat", "extent_m"]
        con.register("_places_arrow", p.select([c for c in cols if c in p.column_names]))
        con.register("_names_arrow", n.select(["name_key", "place_id", "is_primary"]))
        con.execute("CREATE TABLE places AS SELECT * FROM _places_arrow")
        if "extent_m" not in p.column_names:  # rows from an older gazetteer build
            con.execute("ALTER TABLE places ADD COLUMN extent_m DOUBLE")
        con.execute("CREATE TABLE place_names AS SELECT * FROM _names_arrow")
        con.unregister("_places_arrow")
        con.unregister("_names_arrow")
        return cls(con, **kw)

    def lookup(self, keys: Iterable[str]) -> dict[str, list[Candidate]]:
        """The candidates of each key, under either of its spellings (:func:`spellings`: "mt pleasant" also
        finds the places filed as "Mount Pleasant"; a place filed under both counts once, as a match of its own
        name if either is)."""
        wanted = {k for k in keys if k}
        missing = [k for k in wanted if k not in self._cache]
        if missing and len(self._cache) + len(missing) > self.cache_size:
            self._cache.clear()
            missing = list(wanted)
        if missing:
            forms = {k: spellings(k) for k in missing}
            rows: dict[str, list[Candidate]] = {f: [] for fs in forms.values() for f in fs}
            for row in self.con.execute(self.sql, [list(rows), self.max_candidates]).fetchall():
                rows[row[0]].append(Candidate(row[1], row[2], row[3], row[4], row[5], row[6], int(row[7]),
                                              row[8], row[9], bool(row[10]), row[11]))
            for k, fs in forms.items():
                by_id: dict[str, Candidate] = {}
                for c in (c for f in fs for c in rows[f]):
                    if c.place_id not in by_id or (c.is_primary and not by_id[c.place_id].is_primary):
                        by_id[c.place_id] = c
                lst = sorted(by_id.values(), key=lambda c: (-c.population, c.place_id))
                self._cache[k] = lst[:self.max_candidates]
        return {k: self._cache[k] for k in wanted if k in self._cache}

    def rests_after(self, first_words: Sequence[str]) -> frozenset[str]:
        """The rest of every name key whose first word is one of ``first_words`` (``("north",)`` ->
        ``{"darfur", "carolina", ...}``): one scan of the names, then cached, so a caller can skip lookups that
        cannot match."""
        key = tuple(sorted(first_words))
        if key not in self._rests:
            rows = self.con.execute(
                f"SELECT DISTINCT substr(name_key, strpos(name_key, ' ') + 1) FROM {self.names} "
                "WHERE strpos(name_key, ' ') > 0 AND split_part(name_key, ' ', 1) IN (SELECT unnest(?::VARCHAR[]))",
                [list(key)]).fetchall()
            self._rests[key] = frozenset(r[0] for r in rows)
        return self._rests[key]
