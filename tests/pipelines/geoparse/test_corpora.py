from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from georeset.errors import InputError
from georeset.pipelines.geoparse import Geoparser, evaluate, read_corpus, read_lgl, read_wiktor
from georeset.pipelines.harvest import MalformedRecordWarning

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "geoparsing"

LGL = """<?xml version="1.0" encoding="utf-8"?>
<articles>
  <article docid="1">
    <title>t</title>
    <text><![CDATA[Flooding hit Helsinki and Paris & more.]]></text>
    <toponyms>
      <toponym>
        <start>13</start>
        <end>21</end>
        <phrase>Helsinki</phrase>
        <gaztag geonameid="658225"><name>Helsinki</name><lat>60.16952</lat><lon>24.93545</lon></gaztag>
      </toponym>
      <toponym>
        <start>26</start>
        <end>31</end>
        <phrase>Paris</phrase>
      </toponym>
      <toponym>
        <start>x</start>
        <end>99</end>
        <phrase>Broken</phrase>
      </toponym>
    </toponyms>
  </article>
  <article docid="2">
    <title>no text</title>
  </article>
</articles>
"""


def _catch() -> Any:
    return warnings.catch_warnings(record=True)


def test_lgl_reader(tmp_path: Path) -> None:
    p = tmp_path / "mini.xml"
    p.write_text(LGL, encoding="utf-8")
    with _catch() as caught:
        warnings.simplefilter("always")
        docs = list(read_lgl(p))
    assert [d.doc_id for d in docs] == ["1"]
    d = docs[0]
    assert d.text == "Flooding hit Helsinki and Paris & more." and d.line == 3
    assert [(t.start, t.end, t.phrase, t.lat, t.geonameid, t.span_ok) for t in d.toponyms] == [
        (13, 21, "Helsinki", 60.16952, "658225", True), (26, 31, "Paris", None, None, True)]
    msgs = [str(w.message) for w in caught if issubclass(w.category, MalformedRecordWarning)]
    assert any("mini.xml:18:" in m for m in msgs) and any("mini.xml:25:" in m and "no <text>" in m for m in msgs)
    with pytest.raises(InputError, match="mini.xml:18"):
        list(read_lgl(p, on_error="raise"))


def test_lgl_malformed_xml(tmp_path: Path) -> None:
    p = tmp_path / "bad.xml"
    p.write_text("<articles>\n<article docid='1'>\n<text>oops</article>\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.xml:3: malformed XML"):
        list(read_lgl(p, on_error="raise"))
    with _catch() as caught:
        warnings.simplefilter("always")
        assert list(read_lgl(p)) == []
    assert any("bad.xml:3:" in str(w.message) for w in caught)


def test_wiktor_reader(tmp_path: Path) -> None:
    p = tmp_path / "mini.jsonl"
    good = {"doc_id": 7, "text": "Lima is in Peru.", "toponyms": [
        {"start": 0, "end": 4, "phrase": "Lima", "lat": -12.04, "lon": -77.03},
        {"start": 50, "end": 60, "phrase": "Out", "lat": 0, "lon": 0}]}
    p.write_text(json.dumps(good) + "\n{bad\n" + json.dumps({"no": "text"}) + "\n", encoding="utf-8")
    with _catch() as caught:
        warnings.simplefilter("always")
        docs = list(read_corpus(p))
    assert len(docs) == 1 and docs[0].doc_id == "7" and len(docs[0].toponyms) == 1
    lines = sorted(str(w.message).split("mini.jsonl:")[1].split(":")[0] for w in caught)
    assert lines == ["1", "2", "3"]
    with pytest.raises(InputError, match="unknown corpus format"):
        read_corpus(tmp_path / "x.txt")


def test_evaluate_minimal(geoparser: Geoparser, tmp_path: Path) -> None:
    p = tmp_path / "mini.xml"
    p.write_text(LGL, encoding="utf-8")
    with _catch():
        warnings.simplefilter("ignore")
        m = evaluate(geoparser, read_lgl(p))
    assert m["n_docs"] == 1 and m["n_gold"] == 2
    assert m["acc161_gold"] == 1.0 and m["ner_recall"] >= 0.5
    assert 0 < m["f1_161"] <= 1 and m["docs_per_second"] > 0


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/geoparsing is absent")
def test_shared_lgl_parses() -> None:
    docs = list(read_lgl(SHARED / "lgl" / "lgl.xml", on_error="raise"))
    assert len(docs) == 588
    tops = [t for d in docs for t in d.toponyms]
    assert len(tops) == 5088 and sum(t.lat is not None for t in tops) == 4462
    assert all(t.span_ok for t in tops)


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/geoparsing is absent")
def test_shared_wiktor_parses() -> None:
    docs = list(read_wiktor(SHARED / "wiktor" / "wiktor.jsonl", on_error="raise"))
    assert len(docs) == 5000
    tops = [t for d in docs for t in d.toponyms]
    assert len(tops) == 25242 and all(t.lat is not None for t in tops)


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/geoparsing is absent")
def test_curve_of_the_probability_agrees_with_the_commit_threshold(geoparser: Geoparser) -> None:
    from georeset.pipelines.geoparse.evaluate import CURVE_THRESHOLDS

    docs = list(read_lgl(SHARED / "lgl" / "lgl.xml"))[:40]
    strict = Geoparser(geoparser.index, nlp=geoparser.nlp, commit_score=0.5)
    m = evaluate(strict, docs)
    curve = {c["threshold"]: c for c in m["curve"]}
    assert [c["threshold"] for c in m["curve"]] == list(CURVE_THRESHOLDS)
    assert curve[0.5]["precision_161"] == m["precision_161"] and curve[0.5]["recall_161"] == m["recall_161"]
    recalls = [c["recall_161"] for c in m["curve"]]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > recalls[-1]  # a higher bar asserts less
