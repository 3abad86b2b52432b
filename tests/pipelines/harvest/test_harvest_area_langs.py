"""Languages and areas of the Wikipedia harvest: several languages in one command, a GeoJSON polygon, a country."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from georeset.cli import app
from georeset.errors import InputError
from georeset.pipelines.harvest import area_from_geojson, area_from_region, resolve_area

UA = "georeset-tests/0.1 (https://example.org/georeset; tests@example.org)"
SIM_AREA = (24.80, 60.10, 25.20, 60.30)
runner = CliRunner()
# The south-west half of SIM_AREA (a triangle): the north-east tiles never touch it.
TRIANGLE = [[24.80, 60.10], [25.20, 60.10], [24.80, 60.30], [24.80, 60.10]]


def _in_triangle(lon: float, lat: float) -> bool:
    return lon >= 24.80 and lat >= 60.10 and (lon - 24.80) / 0.40 + (lat - 60.10) / 0.20 <= 1.0


def _docs(workdir: Path) -> dict[str, Any]:
    from georeset.data_catalog import open_lake

    con = open_lake(workdir, read_only=True, extensions=())
    try:
        return {r[0]: r for r in con.execute("SELECT doc_id, lang, lon, lat FROM documents").fetchall()}
    finally:
        con.close()


def test_two_languages_and_a_polygon(simwiki: Any, tmp_path: Path) -> None:
    poly = tmp_path / "area.geojson"
    poly.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [TRIANGLE]}}]}))
    r = runner.invoke(app, ["harvest", "wikipedia", "--area", str(poly), "--lang", "en,de", "--user-agent", UA,
                            "--api-url", simwiki.url, "-w", str(tmp_path / "w"), "--radius-m", "5000", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(summary["langs"]) == {"en", "de"}
    docs = _docs(tmp_path / "w")
    for lang in ("en", "de"):
        want = {f"wikipedia:{lang}:{p['pageid']}" for p in simwiki.pages[lang].values()
                if _in_triangle(p["lon"], p["lat"])}
        got = {d for d, row in docs.items() if row[1] == lang}
        assert got == want and want  # everything inside the polygon, nothing outside
    assert {e["lang"] for e in simwiki.log} == {"en", "de"}
    # 5 km tiles (0.1 x 0.05 degrees here) over the bbox; those that miss the triangle are never searched
    searched = {e["params"]["gscoord"] for e in simwiki.log if e["params"].get("list") == "geosearch"}
    centres = [tuple(float(v) for v in c.split("|")) for c in searched]
    assert any(lon < 24.9 and lat < 60.15 for lat, lon in centres)  # the south-west corner tile
    assert not any(lon > 25.05 and lat > 60.2 for lat, lon in centres)  # the north-east ones: outside


def test_repeated_lang_flag_and_rerun(simwiki: Any, tmp_path: Path) -> None:
    args = ["harvest", "wikipedia", "--bbox", ",".join(map(str, SIM_AREA)), "--lang", "de", "--lang", "en",
            "--user-agent", UA, "--api-url", simwiki.url, "-w", str(tmp_path / "w")]
    r1 = runner.invoke(app, args)
    assert r1.exit_code == 0, r1.output
    assert "geosearch tile" in r1.stderr  # progress on stderr
    n1 = len(_docs(tmp_path / "w"))
    r2 = runner.invoke(app, args)
    assert r2.exit_code == 0, r2.output
    s2 = json.loads(r2.stdout.strip().splitlines()[-1])
    assert s2["staged"] == 0 and s2["inserted"] == 0 and len(_docs(tmp_path / "w")) == n1
    assert all(v["run"] == 2 and v["pages_fetched"] == 0 for v in s2["langs"].values())


def test_one_url_for_two_languages_is_refused(tmp_path: Path) -> None:
    r = runner.invoke(app, ["harvest", "wikipedia", "--bbox", "24.9,60.15,24.98,60.19", "--lang", "en,de",
                            "--user-agent", UA, "--api-url", "http://127.0.0.1:9/w/api.php", "-w", str(tmp_path)])
    assert r.exit_code == 2 and "{lang}" in r.output


def test_area_must_be_given_once(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="exactly one"):
        resolve_area()
    with pytest.raises(InputError, match="exactly one"):
        resolve_area(bbox=(1, 1, 2, 2), region="Finland")


@pytest.mark.parametrize("content", ["not json", '{"type": "Point", "coordinates": [24.9, 60.1]}',
                                     '{"type": "FeatureCollection", "features": []}'])
def test_bad_area_file(tmp_path: Path, content: str) -> None:
    f = tmp_path / "a.geojson"
    f.write_text(content)
    with pytest.raises(InputError, match="area") as info:
        area_from_geojson(f)
    assert "GeoJSON" in (info.value.hint or "")
    with pytest.raises(InputError, match="does not exist"):
        area_from_geojson(tmp_path / "missing.geojson")


def test_named_region_is_a_country_outline() -> None:
    fi = area_from_region("Finland")
    assert fi.contains(24.94, 60.17) and not fi.contains(18.07, 59.33)  # Helsinki in, Stockholm out
    assert area_from_region("FI").key == fi.key
    with pytest.raises(InputError, match="not a country") as info:
        area_from_region("Uusimaa")
    assert "--bbox" in (info.value.hint or "") and "--area" in (info.value.hint or "")
