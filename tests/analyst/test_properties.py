"""Property-based tests (hypothesis) over the input parsers and geometry helpers."""

from __future__ import annotations

import datetime as dt
import math
import zlib

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from georeset.data_catalog.report import png_bytes  # noqa: E402
from georeset.data_catalog.search import vector_literal  # noqa: E402
from georeset.errors import InputError  # noqa: E402
from georeset.pipelines.harvest._common import content_hash, document_row, validate_bbox  # noqa: E402
from georeset.pipelines.harvest.wikipedia import tiles_for_bbox  # noqa: E402
from georeset.stages import parse_bbox  # noqa: E402

FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
lon = st.floats(-180, 180, allow_nan=False)
lat = st.floats(-90, 90, allow_nan=False)


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    x0, x1 = sorted(draw(st.lists(lon, min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(lat, min_size=2, max_size=2, unique=True)))
    return x0, y0, x1, y1


@FAST
@given(boxes())
def test_parse_bbox_round_trips_valid_boxes(b: tuple[float, float, float, float]) -> None:
    assert parse_bbox(",".join(repr(v) for v in b)) == b
    assert validate_bbox(b) == b


@FAST
@given(st.text(max_size=60))
def test_parse_bbox_never_crashes_on_any_text(text: str) -> None:
    try:
        b = parse_bbox(text)
    except InputError as exc:
        assert exc.hint and "bbox" in exc.message
        return
    x0, y0, x1, y1 = b
    assert -180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90


@FAST
@given(st.binary(max_size=40))
def test_parse_bbox_on_undecodable_bytes(raw: bytes) -> None:
    text = raw.decode("utf-8", errors="surrogateescape")
    try:
        parse_bbox(text)
    except InputError:
        pass


@FAST
@given(boxes())
def test_swapped_lat_lon_is_refused_when_out_of_range(b: tuple[float, float, float, float]) -> None:
    x0, y0, x1, y1 = b
    swapped = (y0, x0, y1, x1)
    if abs(x0) > 90 or abs(x1) > 90:
        with pytest.raises(InputError, match="swap"):
            parse_bbox(",".join(map(repr, swapped)))


@FAST
@given(st.floats(24.0, 25.0), st.floats(60.0, 61.0), st.floats(0.001, 0.6), st.floats(0.001, 0.4),
       st.sampled_from([1000.0, 5000.0, 10000.0]))
def test_geosearch_tiles_cover_the_bbox_within_the_radius(x0: float, y0: float, w: float, h: float, r: float) -> None:
    b = (x0, y0, x0 + w, y0 + h)
    tiles = tiles_for_bbox(b, r)
    assert all(t.radius_m <= r * 1.0001 for t in tiles)
    assert math.isclose(sum((t.maxlon - t.minlon) * (t.maxlat - t.minlat) for t in tiles), w * h, rel_tol=1e-6)
    assert min(t.minlon for t in tiles) == pytest.approx(b[0]) and max(t.maxlat for t in tiles) == pytest.approx(b[3])


@FAST
@given(st.text(max_size=300), st.text(max_size=40))
def test_document_rows_are_deterministic_for_any_text(text: str, title: str) -> None:
    t = dt.datetime(2026, 1, 1)
    a = document_row(source="file", source_id="1", title=title, text=text, lon=24.9, lat=60.1, licence="CC0-1.0",
                     retrieved_at=t)
    b = document_row(source="file", source_id="1", title=title, text=text, lon=24.9, lat=60.1, licence="CC0-1.0",
                     retrieved_at=t)
    assert a == b and len(a["content_hash"]) == 64 and a["geom_wkt"] == "POINT (24.9 60.1)"


def test_content_hash_of_lone_surrogate() -> None:
    assert len(content_hash("a\ud800b")) == 64
    assert content_hash("a\ud800b") != content_hash("ab")


def test_document_row_cleans_nul_and_non_utf8_text() -> None:
    import pyarrow as pa

    raw = b"Caf\xe9 \x00by the harbour".decode("utf-8", "surrogateescape")
    row = document_row(source="file", source_id="x", title="T\x00", text=raw, lon=24.9, lat=60.1,
                       licence="CC0-1.0", retrieved_at=dt.datetime(2026, 1, 1))
    assert "\x00" not in row["text"] and row["title"] == "T"
    assert row["text"] == "Caf\\udce9 by the harbour"
    pa.Table.from_pylist([row])  # valid UTF-8: Parquet staging accepts it


@FAST
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=64))
def test_vector_literal_round_trips_through_duckdb(vec: list[float]) -> None:
    import duckdb

    con = duckdb.connect()
    got = con.execute(f"SELECT {vector_literal(vec)}").fetchone()[0]
    assert list(got) == pytest.approx(vec, rel=1e-6)


def test_vector_literal_refuses_non_finite() -> None:
    for bad in ([], [math.nan], [math.inf, 1.0]):
        with pytest.raises(InputError):
            vector_literal(bad)


@FAST
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_png_bytes_round_trip(h: int, w: int, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    data = png_bytes(rgb)
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * 3)
    assert np.array_equal(raw[:, 1:].reshape(h, w, 3), rgb)
