"""HTML report (self-contained), PNG encoder, GeoParquet export, and docs/queries.md regeneration."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from georeset.analyst_cli import app
from georeset.data_catalog.report import png_bytes, thumbnail_rgb
from georeset.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


def test_png_encoder_round_trips() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    data = png_bytes(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(5, 1 + 7 * 3)
    assert (raw[:, 0] == 0).all() and np.array_equal(raw[:, 1:].reshape(5, 7, 3), rgb)


def test_thumbnail_marks_nodata_and_scales() -> None:
    img = np.full((3, 4, 4), 0.1, np.float32)
    img[:, 0, 0] = 0.0
    out = thumbnail_rgb(img, ["B02", "B03", "B04"], scale=2)
    assert out.shape == (8, 8, 3) and (out[0, 0] == 200).all()


def test_report_is_one_self_contained_file(embedded: Workspace) -> None:
    res = CliRunner().invoke(app, ["report", "--workdir", str(embedded.root)])
    assert res.exit_code == 0, res.output
    html = (embedded.root / "report.html").read_text()
    assert html.count("src='data:image/png;base64,") == 6  # the gallery; the map's popups carry 6 more in its JSON
    assert html.count("data:image/png;base64,") == 12
    assert "georeset-map" in html and "Leaflet" in html  # the zoomable map, Leaflet inlined
    assert "<polygon" in html and "<circle" in html and "<line" in html and "<polyline" in html
    assert "recall@k" in html and "Training loss" in html
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # Leaflet's source names its own site
    assert not re.search(r"(src|href)=['\"]https?://", markup)  # the browser test checks what is requested


def test_geoparquet_reads_back_with_geopandas(workspace: Workspace, tmp_path: Path) -> None:
    gpd = pytest.importorskip("geopandas")
    for view, geom_type in (("paired_corpus", "Polygon"), ("documents", "Point"), ("resolved_toponyms", None)):
        out = tmp_path / f"{view}.parquet"
        res = CliRunner().invoke(app, ["export-geoparquet", "--db", str(workspace.db_path), "--view", view,
                                       "--out", str(out)])
        assert res.exit_code == 0, res.output
        g = gpd.read_parquet(out)
        assert g.crs is not None and g.crs.to_epsg() in (4326, None) and "CRS84" in g.crs.to_string()
        if geom_type:
            assert len(g) == 6 and set(g.geometry.geom_type) == {geom_type}
            assert 24.9 < g.total_bounds[0] < 25.0
    bad = CliRunner().invoke(app, ["export-geoparquet", "--db", str(workspace.db_path), "--view", "nope; DROP",
                                   "--out", str(tmp_path / "x.parquet")])
    assert bad.exit_code == 2 and "not a table or view" in bad.output


def test_queries_doc_has_ten_queries_that_all_run(embedded: Workspace, tmp_path: Path) -> None:
    md = (REPO / "docs" / "queries.md").read_text()
    assert md.count("```sql") >= 10 and md.count("<!-- output -->") == md.count("```sql")
    copy = tmp_path / "q.md"
    copy.write_text(md)
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "regen_queries.py"), "--db", str(embedded.db_path),
                        "--md", str(copy)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["errors"] == 0
    assert "ERROR" not in copy.read_text()
