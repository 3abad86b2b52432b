"""Bad input: corrupt or missing .pbf, empty area, bad bbox or scale -> InputError naming the input and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from georeset.errors import InputError
from georeset.pipelines.sample_world import build_sample_world
from georeset.pipelines.sample_world.landcover import Grid, landcover_fractions
from georeset.pipelines.sample_world.osm import OsmFeatures
from georeset.pipelines.sample_world.simulate import (
    S1Date,
    S2Date,
    rng_for,
    simulate_s1,
    simulate_s2,
    textures,
)


def test_corrupt_pbf(tmp_path: Path) -> None:
    bad = tmp_path / "broken.osm.pbf"
    bad.write_bytes(b"this is not a protobuf file" * 100)
    with pytest.raises(InputError) as exc:
        build_sample_world(tmp_path / "w", scale="tiny", progress=False, osm_pbf=bad)
    assert str(bad) in str(exc.value) and exc.value.hint and ".osm.pbf" in exc.value.hint
    assert not (tmp_path / "w" / "world.json").exists()


def test_missing_pbf(tmp_path: Path) -> None:
    missing = tmp_path / "nope.osm.pbf"
    with pytest.raises(InputError, match="not found") as exc:
        build_sample_world(tmp_path / "w", scale="tiny", progress=False, osm_pbf=missing)
    assert str(missing) in str(exc.value)


def test_bbox_outside_extract(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not overlap"):
        build_sample_world(tmp_path / "w", scale="tiny", progress=False, bbox=(10.0, 50.0, 10.1, 50.1))


@pytest.mark.parametrize("bbox", [(25.0, 60.0, 24.0, 61.0), (0, 0, 0), ("a", 1, 2, 3), (0, -95, 1, 1)])
def test_bad_bbox(tmp_path: Path, bbox: tuple) -> None:
    with pytest.raises(InputError, match="bbox"):
        build_sample_world(tmp_path / "w", scale="tiny", progress=False, bbox=bbox)


def test_bad_scale(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="scale"):
        build_sample_world(tmp_path / "w", scale="huge", progress=False)


def test_empty_area(tmp_path: Path) -> None:
    feat = OsmFeatures(path=tmp_path / "x.osm.pbf", epsg=32635, bounds_lonlat=(24.9, 60.1, 25.0, 60.2))
    grid = Grid(epsg=32635, x0=385500.0, y1=6673080.0, width=30, height=30)
    with pytest.raises(InputError, match="no OSM land features"):
        landcover_fractions(feat, grid)


def test_simulation_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    frac = rng.dirichlet(np.ones(10), size=(24, 30)).transpose(2, 0, 1).astype(np.float32)
    tex = textures(7, "r", (24, 30))
    d2 = S2Date("2024-06-05", "10:00:00", "sentinel-2a", cloud=0.3, green=1.0, harvested=0.0)
    d1 = S1Date("2024-06-05", "16:00:00", "sentinel-1a", "ascending", 29, wind_db=0.0, moisture_db=0.0)
    a = simulate_s2(frac, tex, d2, rng_for(7, "r", "s2"))
    b = simulate_s2(frac, textures(7, "r", (24, 30)), d2, rng_for(7, "r", "s2"))
    assert all(np.array_equal(a.bands[k], b.bands[k]) for k in a.bands) and np.array_equal(a.scl, b.scl)
    c = simulate_s2(frac, tex, d2, rng_for(8, "r", "s2"))
    assert not np.array_equal(a.bands["B04"], c.bands["B04"])
    s = simulate_s1(frac, tex, d1, rng_for(7, "r", "s1"))
    t = simulate_s1(frac, tex, d1, rng_for(7, "r", "s1"))
    assert np.array_equal(s.bands["VV"], t.bands["VV"])
    assert (
        a.bands["B02"].shape == (24, 30)
        and a.bands["B05"].shape == (12, 15)
        and a.bands["B01"].shape == (4, 5)
    )
