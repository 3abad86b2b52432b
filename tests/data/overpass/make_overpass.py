"""Overpass API JSON (``out geom`` / ``out center``) for the harvester tests, made from a real ``.osm.pbf``.

    python tests/data/overpass/make_overpass.py OUT.json [--pbf PATH] [--bbox minlon,minlat,maxlon,maxlat]
        [--out geom|center]

The elements are the named features that ``harvest_osm`` reads from the extract (default: pyrosm's small Kotka
``test_pbf``, OpenStreetMap data, ODbL), written back in the shape the Overpass API answers with: nodes with
``lat``/``lon``, ways with ``geometry`` (or ``center``), multipolygon relations with member ways and their geometry.
The test then checks that the Overpass path turns them into the same documents as the .pbf path.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shapely import wkt

DEFAULT_BBOX = (26.92, 60.51, 26.98, 60.545)


def _pts(coords: Any) -> list[dict[str, float]]:
    return [{"lat": round(y, 7), "lon": round(x, 7)} for x, y in coords]


def _element(row: dict[str, Any], out: str, fake_ref: list[int]) -> dict[str, Any]:
    kind, ident = row["source_id"].split("/")
    tags = {k: v for k, v in json.loads(row["tags"]).items() if k != "_links"}
    geom = wkt.loads(row["geom_wkt"])
    el: dict[str, Any] = {"type": kind, "id": int(ident), "tags": tags}
    if kind == "node":
        el.update({"lat": geom.y, "lon": geom.x})
        return el
    if out == "center":
        c = geom.centroid
        el["center"] = {"lat": c.y, "lon": c.x}
        return el
    parts = list(getattr(geom, "geoms", [geom]))
    if kind == "way":
        g = parts[0]
        el["geometry"] = _pts(g.exterior.coords if g.geom_type == "Polygon" else g.coords)
        return el
    members = []
    for g in parts:
        rings = [("outer", g.exterior)] + [("inner", r) for r in g.interiors] if g.geom_type == "Polygon" else \
            [("", g)]
        for role, ring in rings:
            fake_ref[0] += 1
            members.append({"type": "way", "ref": fake_ref[0], "role": role, "geometry": _pts(ring.coords)})
    el["members"] = members
    el["tags"] = {**tags, "type": tags.get("type", "multipolygon" if parts[0].geom_type == "Polygon" else "site")}
    return el


def make_overpass(out_path: Path, *, pbf: Path | None = None, bbox: tuple[float, ...] = DEFAULT_BBOX,
                  out: str = "geom") -> list[dict[str, Any]]:
    """Write the Overpass JSON reply to ``out_path``; returns the .pbf path's rows (the ground truth)."""
    import pyrosm

    from georeset.pipelines.harvest.osm import harvest_osm

    pbf = pbf or Path(pyrosm.get_data("test_pbf"))
    rows = harvest_osm(pbf, bbox=bbox, retrieved_at=datetime(2026, 1, 2, tzinfo=UTC),
                      context_m=None)  # Overpass replies carry tags only: no land-cover context
    ref = [8_000_000_000]
    body = {"version": 0.6, "generator": "GEO-ReSeT test data (from an .osm.pbf extract)",
            "osm3s": {"timestamp_osm_base": "2026-01-02T00:00:00Z",
                      "copyright": "The data included in this document is from www.openstreetmap.org. "
                                   "The data is made available under ODbL."},
            "elements": [_element(r, out, ref) for r in rows]}
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_path", type=Path)
    ap.add_argument("--pbf", type=Path)
    ap.add_argument("--bbox", default=",".join(map(str, DEFAULT_BBOX)))
    ap.add_argument("--out", default="geom", choices=["geom", "center"])
    a = ap.parse_args()
    n = make_overpass(a.out_path, pbf=a.pbf, bbox=tuple(float(v) for v in a.bbox.split(",")), out=a.out)
    print(f"{a.out_path}: {len(n)} elements")
