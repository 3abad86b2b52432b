"""STAC search against a local rustac server, items -> scenes rows, real Earth Search / Planetary Computer items."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pystac
import pytest
from imagery_fixture_world import point

from georeset.errors import ServiceUnavailableError
from georeset.pipelines.imagery.bands import band_specs
from georeset.pipelines.imagery.stac import LICENCE_COPERNICUS, LICENCE_SIMULATED, scene_row, search_items

NOW = datetime(2024, 7, 1, tzinfo=UTC)


def test_search_by_point_datetime_and_cloud(stac_url: str) -> None:
    pt = {"type": "Point", "coordinates": list(point(0.5, 0.5))}
    items = search_items(stac_url, collections=["sentinel-2-l2a"], intersects=pt, datetime="2024-06-01/2024-06-30")
    assert sorted(i.id for i in items) == ["S2A_FIXTURE_20240601", "S2B_FIXTURE_20240620"]
    late = search_items(stac_url, collections=["sentinel-2-l2a"], intersects=pt, datetime="2024-06-10/2024-06-30")
    assert [i.id for i in late] == ["S2B_FIXTURE_20240620"]
    clear = search_items(stac_url, collections=["sentinel-2-l2a", "sentinel-1-grd"], intersects=pt, max_cloud=10)
    assert sorted(i.id for i in clear) == ["S1A_FIXTURE_20240605", "S2B_FIXTURE_20240620"]
    far = search_items(stac_url, collections=["sentinel-2-l2a"], bbox=[0, 0, 1, 1])
    assert far == []


def test_scene_rows_from_search(stac_url: str) -> None:
    items = search_items(stac_url, collections=["sentinel-2-l2a", "sentinel-1-grd"], bbox=[20, 55, 30, 65])
    rows = {r["scene_id"]: r for r in (scene_row(i, stac_api=stac_url, retrieved_at=NOW) for i in items)}
    s2 = rows["sentinel-2-l2a/S2A_FIXTURE_20240601"]
    assert (s2["sensor"], s2["crs"], s2["cloud_cover"], s2["simulated"]) == ("S2", "EPSG:32635", 50.0, True)
    assert s2["licence"] == LICENCE_SIMULATED and s2["geom_wkt"].startswith("POLYGON")
    assert len(s2["content_hash"]) == 64 and json.loads(s2["item_json"])["id"] == "S2A_FIXTURE_20240601"
    assert rows["sentinel-1-grd/S1A_FIXTURE_20240605"]["sensor"] == "S1"


def test_unreachable_stac_api_names_url_and_fix() -> None:
    from stac_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailableError) as ei:
        search_items(url, collections=["sentinel-2-l2a"], max_retries=0, timeout=2)
    assert url in str(ei.value) and "fix:" in str(ei.value)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "sensor", "crs", "nbands"),
    [
        ("earth-search_sentinel-2-l2a_S2B_20EPT_20250731_0_L2A.json", "S2", "EPSG:32720", 12),
        ("earth-search_sentinel-2-c1-l2a_S2B_T20EPT_20250731T131905_L2A.json", "S2", "EPSG:32720", 12),
        ("planetary-computer_sentinel-2-l2a_S2A_MSIL2A_20190101T000001_R116_T60VUK_20201007T214652.json", "S2", "EPSG:32660", 12),
        ("earth-search_sentinel-1-grd_S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E.json", "S1", "EPSG:4326", 0),
    ],
)
def test_real_items_parse(shared_dir: Path, name: str, sensor: str, crs: str, nbands: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        item = pystac.Item.from_file(str(shared_dir / "data" / "stac" / "items" / name))
    row = scene_row(item, stac_api="https://example.invalid/stac", retrieved_at=NOW)
    assert row["sensor"] == sensor and row["crs"] == crs and row["licence"] == LICENCE_COPERNICUS
    assert row["simulated"] is False and row["scene_id"] == f"{item.collection_id}/{item.id}"
    assert "sig=" not in row["item_json"]
    specs = band_specs(item)
    refl = [s for s in specs.values() if s.kind == "reflectance"]
    assert len(refl) == nbands
    if sensor == "S2":
        b8a = specs["B8A"]
        assert b8a.wavelength_um == pytest.approx(0.8647)
        if name.startswith("earth-search"):
            assert (b8a.scale, b8a.offset, b8a.gsd) == (0.0001, -0.1, 20)
    else:
        assert specs["HH"].kind == "sar" and specs["HH"].polarization == "HH"


@pytest.mark.shared
def test_real_search_response_parses(shared_dir: Path) -> None:
    body = json.loads((shared_dir / "data/stac/responses/earth-search-v1_search_cql2-cloudcover-lte40_page1_s1grd-s2.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = [pystac.Item.from_dict(f) for f in body["features"]]
    rows = [scene_row(i, stac_api="https://earth-search.aws.element84.com/v1", retrieved_at=NOW) for i in items]
    assert rows and all(r["sensor"] in {"S1", "S2", None} for r in rows)
    assert {r["sensor"] for r in rows if r["collection"].startswith("sentinel-2")} == {"S2"}


RESPONSES = {
    "planetary-computer_search_sentinel-2-l2a_2019-01-01T000001-10Z.json": "https://planetarycomputer.microsoft.com/api/stac/v1",
    "earth-search-v1_search_cql2-cloudcover-lte40_page1_s1grd-s2.json": "https://earth-search.aws.element84.com/v1",
    "earth-search-v1_search_cql2-cloudcover-lte40_page2_s2l2a-l1c-c1l2a.json": "https://earth-search.aws.element84.com/v1",
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_real_responses_parse_into_scene_rows_and_bands(shared_dir: Path, name: str) -> None:
    from georeset.pipelines.imagery.stac import scene_bands

    body = json.loads((shared_dir / "data/stac/responses" / name).read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = [pystac.Item.from_dict(f) for f in body["features"]]
    assert items
    seen = set()
    for item in items:
        row = scene_row(item, stac_api=RESPONSES[name], retrieved_at=NOW)
        assert row["scene_id"] == f"{item.collection_id}/{item.id}" and len(row["content_hash"]) == 64
        assert "sig=" not in row["item_json"] and row["geom_wkt"].startswith(("POLYGON", "MULTIPOLYGON"))
        coll = item.collection_id or ""
        bands = {b["name"]: b for b in scene_bands(item)}
        if coll in {"sentinel-2-l2a", "sentinel-2-c1-l2a"}:
            seen.add(coll)
            assert row["sensor"] == "S2" and row["crs"].startswith("EPSG:32")
            assert {"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "SCL"} <= set(bands)
            assert bands["B8A"]["wavelength_um"] == pytest.approx(0.8647) and bands["B04"]["wavelength_um"] == pytest.approx(0.6646)
            assert (bands["B02"]["gsd"], bands["B8A"]["gsd"], bands["B01"]["gsd"], bands["SCL"]["gsd"]) == (10, 20, 60, 20)
            assert bands["B02"]["crs"] == row["crs"] and bands["SCL"]["kind"] == "class"
            b = bands["B04"]
            if name.startswith("planetary"):  # no raster:bands: from the processing baseline in the product id
                assert item.properties.get("s2:processing_baseline", "02.12") < "04.00"
                assert (b["scale"], b["offset"], b["offset_rule"]) == (1e-4, 0.0, "baseline")
            elif item.properties.get("earthsearch:boa_offset_applied") is True:
                # the DNs were already shifted: the declared -0.1 must not be applied again (Element84/earth-search#9)
                assert (b["scale"], b["offset"]) == (1e-4, 0.0)
                assert b["offset_rule"] == "property:earthsearch:boa_offset_applied"
            elif coll == "sentinel-2-l2a" or float(item.properties.get("s2:processing_baseline", "0")) >= 4:
                assert (b["scale"], b["offset"], b["offset_rule"]) == (1e-4, -0.1, "raster:bands")
        elif coll == "sentinel-1-grd":
            seen.add(coll)
            assert row["sensor"] == "S1"
            sar = [b for b in bands.values() if b["kind"] == "sar"]
            assert sar and all(b["polarization"] in {"VV", "VH", "HH", "HV"} and b["wavelength_um"] is None for b in sar)
    assert seen
