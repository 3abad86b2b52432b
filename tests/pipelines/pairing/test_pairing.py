"""pair_documents on an in-memory catalogue: point in patch, toponym in patch, best per (doc, patch), idempotent."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from georeset.data_catalog import merge, open_catalog, stage
from georeset.pipelines.pairing import pair_documents

NOW = datetime(2024, 7, 1)


def _h(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _box(lon: float, lat: float, d: float = 0.005) -> str:
    return f"POLYGON(({lon - d} {lat - d}, {lon + d} {lat - d}, {lon + d} {lat + d}, {lon - d} {lat + d}, {lon - d} {lat - d}))"


def _seed(con: Any, staging: Path) -> None:
    docs = [
        ("osm:node/1", 24.940, 60.170, "ODbL-1.0"),  # inside patch A
        ("osm:node/2", 24.962, 60.170, "ODbL-1.0"),  # inside patch B
        ("wikipedia:en:Far", 10.0, 50.0, "CC-BY-SA-4.0"),  # far away, but its toponym is inside patch A
        ("osm:node/3", 24.941, 60.171, "ODbL-1.0"),  # inside A, and a toponym inside A too
    ]
    stage([{"doc_id": d, "source": d.split(":")[0], "source_id": d.split(":", 1)[1], "title": d, "text": f"text {d}",
            "lon": lon, "lat": lat, "licence": lic, "retrieved_at": NOW, "content_hash": _h(d)}
           for d, lon, lat, lic in docs], table="documents", staging_dir=staging)  # fmt: skip
    patches = [("A", 24.940, 60.170), ("B", 24.960, 60.170)]
    stage([{"patch_id": p, "scene_id": "s2/x", "sensor": "S2", "lon": lon, "lat": lat, "crs": "EPSG:32635",
            "gsd": 10.0, "size": 32, "bands": ["B04"], "path": f"patches/{p}.npy", "checksum": _h(p),
            "geom_wkt": _box(lon, lat), "source": "test", "licence": "simulated (GEO-ReSeT sample world, CC0-1.0)",
            "retrieved_at": NOW, "content_hash": _h("patch", p)} for p, lon, lat in patches],
          table="patches", staging_dir=staging)  # fmt: skip
    tops = [
        ("wikipedia:en:Far#0-5", "wikipedia:en:Far", "geonames:1", 0.8, 24.9405, 60.1705),
        ("wikipedia:en:Far#9-12", "wikipedia:en:Far", None, None, None, None),  # unresolved: ignored
        ("osm:node/3#0-4", "osm:node/3", "geonames:1", 0.9, 24.9405, 60.1705),
    ]
    stage([{"toponym_id": t, "doc_id": d, "start_char": 0, "end_char": 5, "surface": "x", "place_id": pl,
            "score": sc, "probability": sc, "lon": lon, "lat": lat, "method": "test", "licence": "CC-BY-4.0", "retrieved_at": NOW,
            "content_hash": _h(t)} for t, d, pl, sc, lon, lat in tops], table="toponyms", staging_dir=staging)  # fmt: skip
    # geonames:1 is a park (500 m): it fits the 320 m patches (extent <= 4 x 320 m)
    stage([{"place_id": "geonames:1", "name": "Park", "feature_class": "L", "feature_code": "PRK", "lon": 24.9405,
            "lat": 60.1705, "source": "test", "licence": "CC-BY-4.0", "retrieved_at": NOW,
            "content_hash": _h("geonames:1")}], table="places", staging_dir=staging)  # fmt: skip
    for t in ("documents", "patches", "toponyms", "places"):
        merge(con, table=t, staging_dir=staging)


def test_pairing(tmp_path: Path) -> None:
    con = open_catalog(":memory:")
    staging = tmp_path / "staging"
    _seed(con, staging)
    assert pair_documents(con, staging_dir=staging, retrieved_at=NOW) == 4
    merge(con, table="pairs", staging_dir=staging)
    rows = con.execute("SELECT pair_id, how, toponym_id, score, distance_m, licence, weight FROM pairs ORDER BY pair_id"
                       ).fetchall()
    got = {r[0]: r for r in rows}
    assert set(got) == {"osm:node/1|A", "osm:node/2|B", "osm:node/3|A", "wikipedia:en:Far|A"}
    assert got["osm:node/1|A"][1:4] == ("point_in_patch", None, 1.0) and got["osm:node/1|A"][4] == pytest.approx(0, abs=1)
    assert got["osm:node/3|A"][1] == "point_in_patch"  # best of point (1.0) and toponym (0.9)
    far = got["wikipedia:en:Far|A"]
    assert far[1:4] == ("toponym_in_patch", "wikipedia:en:Far#0-5", 0.8) and 30 < far[4] < 80
    assert far[5] == "CC-BY-SA-4.0 + simulated (GEO-ReSeT sample world, CC0-1.0)"
    assert far[6] == pytest.approx(0.4) and got["osm:node/1|A"][6] == 1.0  # toponym pairs weigh less
    # idempotent: same rows, nothing updated
    assert pair_documents(con, staging_dir=staging, retrieved_at=NOW) == 4
    res = merge(con, table="pairs", staging_dir=staging)
    assert (res.inserted, res.updated, res.total_rows) == (0, 0, 4)
    # node/1 (0 m), Far via toponym (~60 m), node/3 via its toponym (~60 m; its point is ~120 m away)
    assert pair_documents(con, staging_dir=staging, max_distance_m=80.0) == 3
