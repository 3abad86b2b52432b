"""scripts/fit_geoparser.py fits the shipped weights; here on a tiny corpus, written elsewhere."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from georeset.pipelines.geoparse import commit, ranker, ranking

ROOT = Path(__file__).resolve().parents[3]


def _article(docid: str, text: str, tops: list[tuple[str, float, float]]) -> str:
    parts = []
    for phrase, lat, lon in tops:
        s = text.index(phrase)
        parts.append(f"<toponym><start>{s}</start><end>{s + len(phrase)}</end><phrase>{phrase}</phrase>"
                     f"<gaztag geonameid='1'><lat>{lat}</lat><lon>{lon}</lon></gaztag></toponym>")
    return f'<article docid="{docid}"><text>{text}</text><toponyms>{"".join(parts)}</toponyms></article>\n'


def test_fit_script_writes_weights_from_the_fitted_half(tmp_path: Path) -> None:
    lgl = tmp_path / "mini.xml"
    docs = [
        _article("1", "The rodeo in Paris, Texas drew crowds from Dallas and Tyler.",
                 [("Paris", 33.66, -95.56), ("Texas", 31.25, -99.25), ("Dallas", 32.78, -96.8)]),
        _article("2", "Officials in Helsinki met ministers from Finland.", [("Helsinki", 60.17, 24.94)]),
        _article("3", "Flights from Nairobi to Mombasa resumed, Kenya said.",
                 [("Nairobi", -1.28, 36.82), ("Mombasa", -4.05, 39.67), ("Kenya", 1.0, 38.0)]),
    ]
    lgl.write_text("<articles>\n" + "".join(docs) + "</articles>\n")
    wiktor = tmp_path / "mini.jsonl"
    wiktor.write_text(json.dumps({"doc_id": 1001, "text": "Lima is the capital of Peru, on the coast.", "toponyms": [
        {"start": 0, "end": 4, "phrase": "Lima", "lat": -12.04, "lon": -77.03}]}) + "\n")
    spec = importlib.util.spec_from_file_location("fit_geoparser", ROOT / "scripts" / "fit_geoparser.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shipped_ranking, shipped_commit = dict(ranking.WEIGHTS), dict(commit.COMMIT_WEIGHTS)
    threshold = commit.COMMIT_THRESHOLD
    out = tmp_path / "weights.json"
    try:
        (tmp_path / "ranker.npz").write_bytes(b"stale")
        assert mod.main(["--lgl", str(lgl), "--wiktor", str(wiktor), "--rounds", "1", "--out", str(out),
                         "--trees"]) == 0
    finally:  # the fit sets the module weights: restore the shipped ones for the other tests
        ranking.set_weights(shipped_ranking)
        commit.set_commit_weights(shipped_commit, threshold)
        ranker.set_active(None)
    assert not (tmp_path / "ranker.npz").exists()  # too few examples for trees: the linear weights rank
    got = json.loads(out.read_text())
    assert set(got["ranking"]) == set(ranking.FEATURES) and set(got["commit"]) == set(commit.COMMIT_FEATURES)
    assert got["ranking"]["near_point"] == ranking.PRIOR_WEIGHTS["near_point"]  # a prior, not fitted
    assert "2 documents at even positions" in got["fitted_on"]["lgl"]  # documents 1 and 3, never 2
    assert 0.0 <= got["commit_threshold"] < 1.0 and got["curve_fitted_lgl"][0]["threshold"] == 0.0
