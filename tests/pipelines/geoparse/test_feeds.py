"""Per-feed points for the geoparse stage: files, the catalogue's own output, and their effect on resolution."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from georeset.errors import InputError
from georeset.pipelines.geoparse.feeds import feed_key, feed_points_from_catalog, load_feed_points, point_for
from georeset.pipelines.geoparse.ranking import haversine_km

PARIS_TX = (-95.5555, 33.6609)


def test_feed_key_is_the_url_host_else_the_source() -> None:
    assert feed_key("rss", "https://www.TheParisNews.com/news/1") == "theparisnews.com"
    assert feed_key("wikipedia", None) == "wikipedia"
    assert feed_key(None, None) is None


def test_points_files_csv_and_json(tmp_path: Path) -> None:
    csv = tmp_path / "feeds.csv"
    csv.write_text("feed,lon,lat\nhttps://www.theparisnews.com/,-95.5555,33.6609\nosm,24.94,60.17\n", encoding="utf-8")
    pts = load_feed_points(csv)
    assert pts == {"theparisnews.com": PARIS_TX, "osm": (24.94, 60.17)}
    assert point_for(pts, "rss", "http://theparisnews.com/a") == PARIS_TX
    assert point_for(pts, "rss", "http://elsewhere.com/a") == (None, None)
    js = tmp_path / "feeds.json"
    js.write_text(json.dumps({"theparisnews.com": [-95.5555, 33.6609], "osm": {"lon": 24.94, "lat": 60.17}}),
                  encoding="utf-8")
    assert load_feed_points(js) == pts
    bad = tmp_path / "bad.csv"
    bad.write_text("feed,lon,lat\nx.com,200,10\n", encoding="utf-8")
    with pytest.raises(InputError, match="out of range"):
        load_feed_points(bad)
    with pytest.raises(InputError, match="header"):
        (tmp_path / "h.csv").write_text("name,x,y\n", encoding="utf-8")
        load_feed_points(tmp_path / "h.csv")
    with pytest.raises(InputError, match="does not exist"):
        load_feed_points(tmp_path / "missing.csv")


def test_feed_points_learned_from_the_catalogue() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE documents (doc_id VARCHAR, source VARCHAR, url VARCHAR)")
    con.execute("CREATE TABLE toponyms (doc_id VARCHAR, start_char INTEGER, place_id VARCHAR, lon DOUBLE, "
                "lat DOUBLE, kind VARCHAR, probability DOUBLE)")
    local = [(-95.55, 33.66), (-95.6, 33.7), (-95.5, 33.6), (-96.8, 32.78), (-95.55, 33.66), (2.35, 48.85)]
    for i, (lon, lat) in enumerate(local):
        con.execute("INSERT INTO documents VALUES (?, 'rss', ?)", [f"d{i}", f"https://www.theparisnews.com/{i}"])
        con.execute("INSERT INTO toponyms VALUES (?, 0, 'p', ?, ?, 'toponym', 0.9)", [f"d{i}", lon, lat])
        con.execute("INSERT INTO toponyms VALUES (?, 9, 'p', 100.0, 0.0, 'toponym', 0.1)", [f"d{i}"])  # not asserted
    pts = feed_points_from_catalog(con)
    assert set(pts) == {"theparisnews.com"}
    assert haversine_km(*pts["theparisnews.com"], *PARIS_TX) < 20
    assert feed_points_from_catalog(con, threshold=0.95) == {}  # nothing asserted: no point


def _batch(root: Path, gazetteer: tuple[Any, Any], text: str) -> tuple[str, Path]:
    gaz = root / "gazetteer"
    gaz.mkdir(parents=True)
    pq.write_table(gazetteer[0], gaz / "places.parquet")
    pq.write_table(gazetteer[1], gaz / "place_names.parquet")
    docs = [{"doc_id": "d0", "text": text, "lon": None, "lat": None, "licence": "CC0", "content_hash": "h0",
             "source": "rss", "url": "https://www.theparisnews.com/fire"}]
    path = root / "docs-0.parquet"
    pq.write_table(pa.Table.from_pylist(docs), path)
    return str(path), gaz


def test_the_stage_gives_documents_their_feed_point(tmp_path: Path, gazetteer: tuple[Any, Any]) -> None:
    from georeset.stages.geoparse import run_batches, write_feed_points

    text = "Fire damages apartment. Paris firefighters made quick work of a kitchen fire in Paris on Friday."
    f, gaz = _batch(tmp_path, gazetteer, text)
    when = dt.datetime(2026, 1, 1)

    def paris(staging: Path) -> dict[str, Any]:
        rows = [r for p in (staging / "toponyms").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
        return next(r for r in rows if r["surface"] == "Paris")

    run_batches([f], gazetteer_dir=gaz, staging_dir=tmp_path / "plain", processed_at=when)
    write_feed_points(Path(f).parent, {"theparisnews.com": PARIS_TX})  # as plan() stores them beside its batches
    run_batches([f], gazetteer_dir=gaz, staging_dir=tmp_path / "feed", processed_at=when)
    plain, fed = paris(tmp_path / "plain"), paris(tmp_path / "feed")
    assert haversine_km(plain["lon"], plain["lat"], *PARIS_TX) > 1000  # alone, "Paris" is the capital
    assert haversine_km(fed["lon"], fed["lat"], *PARIS_TX) < 50  # the feed's point settles it


def test_run_refuses_a_bad_feed_points_file_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from georeset.cli import app

    bad = tmp_path / "feeds.csv"
    bad.write_text("feed,lon,lat\nx.com,abc,1\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["geoparse", "run", "--workdir", str(tmp_path / "w"), "--feed-points", str(bad)])
    assert r.exit_code == 2 and "numeric" in r.output
    w = tmp_path / "w"
    assert not (w / "lake").exists() and not (w / "georeset.duckdb").exists()  # failed before the catalogue


def test_plan_stores_the_feed_points_and_a_worker_pool_uses_them(tmp_path: Path, gazetteer: tuple[Any, Any]) -> None:
    """The CLI and the DAG share plan() -> run(): the points travel with the plan, so pool workers see them."""
    from georeset.stages.geoparse import plan, read_feed_points, run_batches

    con = duckdb.connect()
    places, names = gazetteer
    con.register("p", places)
    con.register("n", names)
    con.execute("CREATE TABLE places AS SELECT * FROM p")
    con.execute("CREATE TABLE place_names AS SELECT * FROM n")
    con.execute("CREATE TABLE documents (doc_id VARCHAR, text VARCHAR, lon DOUBLE, lat DOUBLE, licence VARCHAR, "
                "content_hash VARCHAR, source VARCHAR, url VARCHAR)")
    con.execute("CREATE TABLE toponyms (doc_id VARCHAR)")
    texts = ["Paris firefighters made quick work of a kitchen fire in Paris on Friday.",
             "A Paris teacher was honoured at the school board meeting in Paris."]
    for i, t in enumerate(texts):
        con.execute("INSERT INTO documents VALUES (?, ?, NULL, NULL, 'CC0', ?, 'rss', ?)",
                    [f"d{i}", t, f"h{i}", f"https://www.theparisnews.com/{i}"])
    out = tmp_path / "plan"
    files = plan(con, out_dir=out, batch_docs=1, feed_points={"theparisnews.com": PARIS_TX})
    assert len(files) == 2 and read_feed_points(out) == {"theparisnews.com": PARIS_TX}
    run_batches(files, gazetteer_dir=out / "gazetteer", staging_dir=tmp_path / "s", processed_at=dt.datetime(2026, 1, 1),
                workers=2)
    rows = [r for f in (tmp_path / "s" / "toponyms").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    paris = [r for r in rows if r["surface"] == "Paris"]
    assert {r["doc_id"] for r in paris} == {"d0", "d1"}
    assert all(haversine_km(r["lon"], r["lat"], *PARIS_TX) < 50 for r in paris)
    plan(con, out_dir=out, batch_docs=1)  # a plan without points replaces the directory: none are left behind
    assert read_feed_points(out) is None
