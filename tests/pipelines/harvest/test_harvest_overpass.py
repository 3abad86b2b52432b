"""The Overpass path: same documents and ids as the .pbf path, polite pacing, retries and clear errors."""

from __future__ import annotations

import importlib.util
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from georeset.cli import app
from georeset.errors import InputError, ServiceUnavailableError
from georeset.pipelines.harvest import OverpassClient, harvest_overpass

UA = "georeset-tests/0.1 (https://example.org/georeset; tests@example.org)"
WHEN = datetime(2026, 1, 2, tzinfo=UTC)
BBOX = (26.92, 60.51, 26.98, 60.545)  # Kotka, inside pyrosm's test_pbf
GENERATOR = Path(__file__).resolve().parents[2] / "data" / "overpass" / "make_overpass.py"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_overpass", GENERATOR)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def replies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("overpass")
    gen = _generator()
    rows = gen.make_overpass(d / "geom.json", bbox=BBOX, out="geom")
    gen.make_overpass(d / "center.json", bbox=BBOX, out="center")
    return {"pbf_rows": rows, "geom": (d / "geom.json").read_bytes(), "center": (d / "center.json").read_bytes()}


def _client(url: str, sleeps: list[float], **kw: Any) -> OverpassClient:
    return OverpassClient(url, user_agent=UA, sleep=sleeps.append, rng=random.Random(0), backoff_s=1.0,
                          query_timeout_s=5, **kw)


def test_same_documents_as_the_pbf_path(overpass: Any, replies: dict[str, Any], tmp_path: Path) -> None:
    from georeset.data_catalog import merge, open_catalog, stage

    overpass.body = replies["geom"]
    sleeps: list[float] = []
    rows, summary = harvest_overpass(bbox=BBOX, user_agent=UA, retrieved_at=WHEN, client=_client(overpass.url, sleeps))
    ref = {r["doc_id"]: r for r in replies["pbf_rows"]}
    got = {r["doc_id"]: r for r in rows}
    assert set(got) == set(ref) and len(rows) == len(got) == summary["documents"]
    assert {r["source_id"].split("/")[0] for r in rows} >= {"node", "way"}
    for d, r in got.items():
        assert (r["title"], r["text"], r["tags"], r["url"], r["licence"]) == (
            ref[d]["title"], ref[d]["text"], ref[d]["tags"], ref[d]["url"], ref[d]["licence"])
    query = next(e["query"] for e in overpass.log if "query" in e)
    assert "[out:json]" in query and "out geom;" in query and f"({BBOX[1]},{BBOX[0]},{BBOX[3]},{BBOX[2]})" in query
    assert overpass.log[0]["path"].endswith("/api/status")  # a free slot is checked for first
    assert all(e["ua"].startswith(UA) for e in overpass.log)
    # both sources in one catalogue: no duplicates
    stage(replies["pbf_rows"], table="documents", staging_dir=tmp_path / "s", name="pbf")
    stage(rows, table="documents", staging_dir=tmp_path / "s", name="overpass")
    con = open_catalog(str(tmp_path / "c.duckdb"))
    try:
        merge(con, table="documents", staging_dir=tmp_path / "s")
        assert con.execute("SELECT count(*) FROM documents").fetchone()[0] == len(ref)  # type: ignore[index]
    finally:
        con.close()


def test_out_center_gives_points_with_the_same_ids(overpass: Any, replies: dict[str, Any]) -> None:
    overpass.body = replies["center"]
    rows, _ = harvest_overpass(bbox=BBOX, user_agent=UA, retrieved_at=WHEN, out="center",
                               client=_client(overpass.url, []))
    assert {r["doc_id"] for r in rows} == {r["doc_id"] for r in replies["pbf_rows"]}
    assert all(r["geom_wkt"].startswith("POINT") for r in rows)


def test_links_to_wikipedia_and_wikidata(overpass: Any) -> None:
    overpass.body = json.dumps({"elements": [
        {"type": "node", "id": 1, "lat": 60.17, "lon": 24.95,
         "tags": {"name": "Tuomiokirkko", "amenity": "place_of_worship", "wikipedia": "fi:Helsingin tuomiokirkko",
                  "wikidata": "Q215000"}},
        {"type": "node", "id": 2, "lat": 60.17, "lon": 24.95, "tags": {"amenity": "bench"}},  # no name: skipped
    ]}).encode()
    rows, summary = harvest_overpass(bbox=(24.9, 60.15, 25.0, 60.2), user_agent=UA, retrieved_at=WHEN,
                                     client=_client(overpass.url, []))
    assert [r["doc_id"] for r in rows] == ["osm:node/1"] and summary["elements"] == 2
    tags = json.loads(rows[0]["tags"])
    assert tags["wikidata"] == "Q215000"  # raw tags kept
    assert tags["_links"] == {"wikidata": "https://www.wikidata.org/wiki/Q215000",
                              "wikipedia": "https://fi.wikipedia.org/wiki/Helsingin_tuomiokirkko"}


def test_429_5xx_truncated_and_cut_off_queries_are_retried(overpass: Any, replies: dict[str, Any]) -> None:
    overpass.body = replies["geom"]
    overpass.faults = [
        (429, {"Retry-After": "7"}, b"rate limited"),
        (504, {}, b"<html>Gateway Timeout</html>"),
        (200, {}, replies["geom"][: len(replies["geom"]) // 2]),  # truncated JSON
        (200, {}, b'{"elements": [], "remark": "runtime error: Query timed out in \\"query\\" at line 2"}'),
    ]
    sleeps: list[float] = []
    client = _client(overpass.url, sleeps, min_interval_s=0.0)
    rows, summary = harvest_overpass(bbox=BBOX, user_agent=UA, retrieved_at=WHEN, client=client)
    assert len(rows) == len(replies["pbf_rows"])
    assert client.retries == summary["retries"] == 4
    assert [e["status"] for e in overpass.log if "query" in e] == [429, 504, 200, 200, 200]
    assert sleeps[0] == 7.0  # Retry-After honoured
    assert 0.75 * 2 <= sleeps[1] <= 1.25 * 2 and 0.75 * 4 <= sleeps[2] <= 1.25 * 4  # backoff with jitter


def test_waits_for_a_free_slot(overpass: Any) -> None:
    overpass.body = b'{"elements": []}'
    overpass.status_text = ("Connected as: 1\nRate limit: 2\n0 slots available now.\n"
                            "Slot available after: 2026-01-02T00:00:12Z, in 12 seconds.\n"
                            "Slot available after: 2026-01-02T00:00:30Z, in 30 seconds.\n")
    sleeps: list[float] = []
    _client(overpass.url, sleeps).query("[out:json];node(1);out;")
    assert sleeps == [12.0]


def test_gives_up_with_a_clear_error(overpass: Any) -> None:
    overpass.faults = [(200, {}, b'{"elements": [')] * 3
    with pytest.raises(ServiceUnavailableError, match="truncated JSON") as info:
        _client(overpass.url, [], max_retries=2).query("[out:json];node(1);out;")
    assert "pbf" in (info.value.hint or "")
    overpass.faults = [(400, {}, b"<html><p>Error: line 1: parse error</p></html>")]
    with pytest.raises(ServiceUnavailableError, match="HTTP 400: Error: line 1: parse error"):
        _client(overpass.url, []).query("nonsense")


@pytest.mark.parametrize("ua", [None, "", "python-requests/2.32", "mytool/1.0"])
def test_refuses_generic_user_agent(ua: str | None) -> None:
    with pytest.raises(InputError, match="user-agent"):
        OverpassClient("http://127.0.0.1:9/api/interpreter", user_agent=ua)  # type: ignore[arg-type]


def test_refuses_a_large_area() -> None:
    with pytest.raises(InputError, match="too large") as info:
        harvest_overpass(bbox=(20.0, 59.0, 26.0, 61.0), user_agent=UA, retrieved_at=WHEN)
    assert "harvest osm" in (info.value.hint or "")


def test_cli(overpass: Any, replies: dict[str, Any], tmp_path: Path) -> None:
    overpass.body = replies["geom"]
    args = ["harvest", "overpass", "--bbox", ",".join(map(str, BBOX)), "--endpoint", overpass.url,
            "--user-agent", UA, "-w", str(tmp_path)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["staged"] == out["inserted"] == out["total"] == len(replies["pbf_rows"])
    assert "overpass:" in r.stderr
    r2 = CliRunner().invoke(app, args)
    assert json.loads(r2.stdout.strip().splitlines()[-1])["total"] == len(replies["pbf_rows"])  # re-run: no dups
    bad = CliRunner().invoke(app, [*args[:-4], "--user-agent", "curl/8", "-w", str(tmp_path)])
    assert bad.exit_code == 2 and "--user-agent" in bad.output
