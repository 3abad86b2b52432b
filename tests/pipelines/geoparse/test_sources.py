from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from georeset.pipelines.geoparse import Geoparser, evaluate, read_lgl
from georeset.pipelines.geoparse.candidates import Candidate
from georeset.pipelines.geoparse.corpora import GoldDocument, GoldToponym
from georeset.pipelines.geoparse.fallback import fall_back_to_focus
from georeset.pipelines.geoparse.ranking import DocContext, Ranked, haversine_km
from georeset.pipelines.geoparse.sources import learn_source_points, point_of
from georeset.pipelines.geoparse.splits import select

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "geoparsing"

ATHENS_GA = (-83.3777, 33.9607)
ATHENS_GR = (23.7162, 37.9795)

LGL = """<?xml version="1.0" encoding="utf-8"?>
<articles>
  <article docid="1">
    <feedid>7</feedid>
    <title>t</title>
    <domain>onlineathens.com</domain>
    <text><![CDATA[Athens police arrested two men on Tuesday.]]></text>
    <toponyms>
      <toponym><start>0</start><end>6</end><phrase>Athens</phrase>
        <gaztag geonameid="4180386"><name>Athens</name><lat>33.9607</lat><lon>-83.3777</lon></gaztag>
      </toponym>
    </toponyms>
  </article>
  <article docid="2">
    <feedid>8</feedid>
    <text><![CDATA[Nothing here.]]></text>
  </article>
</articles>
"""


def _doc(source: str | None, points: list[tuple[float, float]]) -> GoldDocument:
    return GoldDocument("d", "x", [GoldToponym(0, 1, "x", lat, lon) for lon, lat in points], source=source)


def test_lgl_reader_exposes_the_source(tmp_path: Path) -> None:
    p = tmp_path / "mini.xml"
    p.write_text(LGL, encoding="utf-8")
    docs = list(read_lgl(p))
    assert [d.source for d in docs] == ["onlineathens.com", "8"]  # the domain, else the feed id


def test_a_local_source_gets_the_point_of_its_densest_cluster() -> None:
    near = [(ATHENS_GA[0] + 0.1 * k, ATHENS_GA[1]) for k in range(4)]  # within ~40 km of Athens, Georgia
    docs = [_doc("local", near[:2] + [ATHENS_GR]), _doc("local", near[2:]),
            _doc("wire", [(lon, 0.0) for lon in range(-150, 150, 50)]),  # six places thousands of km apart
            _doc("small", near[:3]), _doc(None, near)]
    pts = learn_source_points(docs)
    assert set(pts) == {"local"}  # the wire is not local, "small" has too few toponyms, no source is skipped
    sp = pts["local"]
    assert sp.n_docs == 2 and sp.n_toponyms == 5 and sp.share == 0.8
    assert haversine_km(sp.lon, sp.lat, *ATHENS_GA) < 50
    assert point_of(pts, docs[1]) == (sp.lon, sp.lat) and point_of(pts, docs[2]) == (None, None)
    assert learn_source_points(docs, min_share=0.9) == {}


def test_the_source_point_moves_a_lone_namesake_home(geoparser: Geoparser, tmp_path: Path) -> None:
    p = tmp_path / "mini.xml"
    p.write_text(LGL, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = list(read_lgl(p))[:1]
    plain = geoparser.resolve_spans(docs[0].text, [(0, 6)])[0]
    assert plain.country_code == "GR"  # "Athens" alone: the capital
    m = evaluate(geoparser, docs, points=lambda d: ATHENS_GA if d.source == "onlineathens.com" else (None, None))
    assert m["acc161_gold"] == 1.0
    assert evaluate(geoparser, docs)["acc161_gold"] == 0.0


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/geoparsing is absent")
def test_lgl_sources_learned_on_the_fitted_half_cover_the_unfitted_half() -> None:
    path = SHARED / "lgl" / "lgl.xml"
    docs = list(read_lgl(path, on_error="raise"))
    assert all(d.source for d in docs)
    pts = learn_source_points(select(docs, path, "fitted"))
    unfitted = list(select(docs, path, "unfitted"))
    with_point = [d for d in unfitted if point_of(pts, d)[0] is not None]
    assert len(with_point) > len(unfitted) / 2
    golds = [(point_of(pts, d), g) for d in with_point for g in d.toponyms if g.lon is not None]
    near = sum(haversine_km(p[0], p[1], g.lon, g.lat) <= 161 for p, g in golds)  # type: ignore[arg-type]
    assert near > len(golds) / 2  # local news: most toponyms of a local source's stories are near its point


def _ranked(name: str, lon: float, lat: float, score: float) -> Ranked:
    return Ranked(Candidate(name, name, "P", "PPL", "XX", "01", 1000, lon, lat, True), score, "", 1)


def test_a_document_point_leaves_the_focus_of_the_text_in_charge() -> None:
    keys = ["a", "b", "c"]
    best: list[Ranked | None] = [_ranked("a", 10.0, 50.0, 0.9), _ranked("b", 10.2, 50.1, 0.9),
                                 _ranked("c", 100.0, 0.0, 0.05)]
    far_point = DocContext(lon=-80.0, lat=40.0)  # a point far from all the text's places
    c = fall_back_to_focus(best, keys, far_point)[2]
    assert c is not None and c.candidate.place_id.startswith("focus:")
    assert haversine_km(c.candidate.lon, c.candidate.lat, 10.1, 50.05) < 20  # type: ignore[arg-type]
    near_c = DocContext(lon=100.5, lat=0.5)  # the weak candidate lies by the document's point: it stands
    assert fall_back_to_focus(best, keys, near_c)[2] == best[2]
    alone = fall_back_to_focus([None], ["x"], far_point)[0]  # nothing else in the text: the point is all there is
    assert alone is not None and (alone.candidate.lon, alone.candidate.lat) == (-80.0, 40.0)
    assert fall_back_to_focus([None], ["x"], DocContext())[0] is None
