from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from georeset.pipelines.geoparse import Geoparser, cli
from georeset.pipelines.geoparse.evaluate import auc_of_errors
from georeset.pipelines.geoparse.geolocate import geolocate
from georeset.pipelines.geoparse.parser import Toponym

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "geoparsing"
REQUIRED = {"ner_precision", "ner_recall", "ner_f1", "acc161_gold", "f1_161", "median_error_km", "docs_per_second",
            "n_docs", "n_gold", "precision_161", "recall_161", "mean_error_km", "auc"}


def _article(docid: str, text: str, tops: list[tuple[str, float | None, float | None]]) -> str:
    parts = []
    for phrase, lat, lon in tops:
        s = text.index(phrase)
        tag = f"<gaztag geonameid='1'><name>{phrase}</name><lat>{lat}</lat><lon>{lon}</lon></gaztag>" if lat else ""
        parts.append(f"<toponym><start>{s}</start><end>{s + len(phrase)}</end><phrase>{phrase}</phrase>{tag}"
                     "</toponym>")
    return (f'<article docid="{docid}">\n<title>t</title>\n<text>{text}</text>\n<toponyms>\n' + "\n".join(parts)
            + "\n</toponyms>\n</article>\n")


GOOD = [
    _article("1", "The rodeo in Paris, Texas drew crowds from Dallas.", [("Paris", 33.66, -95.56),
                                                                        ("Texas", 31.25, -99.25), ("Dallas", 32.78, -96.8)]),
    _article("2", "Officials in Helsinki met ministers from Finland and Sweden.", [
        ("Helsinki", 60.17, 24.94), ("Finland", 64.0, 26.0), ("Sweden", None, None)]),
    _article("3", "", []),
]


@pytest.fixture
def runner(geoparser: Geoparser, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli, "build_geoparser", lambda *a, **k: geoparser)
    return CliRunner()


def _last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def test_evaluate_lgl_json(runner: CliRunner, tmp_path: Path) -> None:
    p = tmp_path / "mini.xml"
    p.write_text("<?xml version='1.0' encoding='utf-8'?>\n<articles>\n" + "".join(GOOD) + "</articles>\n")
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json"])
    assert res.exit_code == 0, res.output
    m = _last_json(res.stdout)
    assert REQUIRED <= set(m)
    assert m["n_docs"] == 3 and m["n_gold"] == 6 and m["n_gold_with_coords"] == 5
    assert m["acc161_gold"] >= 0.8 and m["f1_161"] > 0.5 and 0 <= m["auc"] < 0.5
    res = runner.invoke(cli.app, ["evaluate", str(p), "--limit", "1"])
    assert res.exit_code == 0 and "acc161_gold" in res.stdout and "n_docs: 1" in res.stdout


def test_evaluate_malformed_xml_skip_or_fail(runner: CliRunner, tmp_path: Path) -> None:
    broken = '<article docid="9">\n<text>Unclosed <b> tag in Cairo</text>\n</article>\n'
    p = tmp_path / "bad.xml"
    p.write_text("<articles>\n" + GOOD[0] + broken + GOOD[1] + "</articles>\n")
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json", "--on-error", "skip"])
    assert res.exit_code == 0, res.output
    m = _last_json(res.stdout)
    assert m["n_docs"] == 2 and m["n_malformed_skipped"] >= 1
    assert "bad.xml:" in res.stderr
    res = runner.invoke(cli.app, ["evaluate", str(p), "--on-error", "fail"])
    assert res.exit_code == 2 and "bad.xml:" in res.stderr and "malformed XML" in res.stderr


def test_evaluate_jsonl_bad_lines(runner: CliRunner, tmp_path: Path) -> None:
    good = {"doc_id": 1, "text": "Lima is the capital of Peru.", "toponyms": [
        {"start": 0, "end": 4, "phrase": "Lima", "lat": -12.04, "lon": -77.03}]}
    long_text = "Rain fell on Nairobi. " + "Nothing happened here at all. " * 3000
    p = tmp_path / "c.jsonl"
    p.write_bytes(json.dumps(good).encode() + b"\n{not json\n" + b'{"text": "caf\xe9 in Qwertzuiopburg"}\n'
                  + json.dumps({"doc_id": 4, "text": "", "toponyms": []}).encode() + b"\n"
                  + json.dumps({"doc_id": 5, "text": long_text, "toponyms": [
                      {"start": 13, "end": 20, "phrase": "Nairobi", "lat": -1.28, "lon": 36.82}]}).encode() + b"\n"
                  + json.dumps({"doc_id": 6, "text": "We drove to Qwertzuiopburg.", "toponyms": [
                      {"start": 12, "end": 26, "phrase": "Qwertzuiopburg", "lat": 1.0, "lon": 1.0}]}).encode())
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json"])
    assert res.exit_code == 0, res.output
    assert "c.jsonl:2:" in res.stderr and "c.jsonl:3:" in res.stderr
    m = _last_json(res.stdout)
    assert m["n_docs"] == 4 and m["n_gold"] == 3 and m["n_malformed_skipped"] == 2
    assert 0.6 <= m["acc161_gold"] < 1.0  # the unknown place counts as wrong
    res = runner.invoke(cli.app, ["evaluate", str(p), "--on-error", "fail"])
    assert res.exit_code == 2 and "c.jsonl:2:" in res.stderr
    res = runner.invoke(cli.app, ["evaluate", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_parse_command(runner: CliRunner) -> None:
    res = runner.invoke(cli.app, ["parse", "The rodeo in Paris, Texas drew a crowd from Dallas.", "--json"])
    assert res.exit_code == 0, res.output
    out = _last_json(res.stdout)
    by = {t["surface"]: t for t in out["toponyms"]}
    assert by["Paris"]["country_code"] == "US" and by["Paris"]["admin1_code"] == "TX"
    loc = out["location"]
    assert loc and 30 < loc["lat"] < 36 and -100 < loc["lon"] < -94
    res = runner.invoke(cli.app, ["parse", "nothing to see"])
    assert res.exit_code == 0 and "unknown" in res.stdout


def test_geolocate_and_auc() -> None:
    def top(lon: float, lat: float, code: str | None = None, score: float = 0.9) -> Toponym:
        return Toponym(0, 1, "x", "GPE", "p", score, lon, lat, "r", feature_code=code)

    assert geolocate([]) is None
    loc = geolocate([top(24.94, 60.17), top(24.66, 60.21), top(-77.0, 38.9, score=0.2), top(26.0, 64.0, "PCLI")])
    assert loc is not None and abs(loc["lat"] - 60.19) < 0.1 and loc["radius_km"] < 100
    only_country = geolocate([top(26.0, 64.0, "PCLI")])
    assert only_country is not None and only_country["radius_km"] >= 800
    assert auc_of_errors([0.0, 0.0]) == 0.0 and auc_of_errors([20038.0]) == pytest.approx(1.0, abs=1e-4)
    assert auc_of_errors([]) is None


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/geoparsing is absent")
@pytest.mark.parametrize("rel", ["lgl/lgl.xml", "wiktor/wiktor.jsonl"])
def test_shared_corpora_limit(runner: CliRunner, rel: str) -> None:
    res = runner.invoke(cli.app, ["evaluate", str(SHARED / rel), "--json", "--limit", "5", "--on-error", "fail"])
    assert res.exit_code == 0, res.output
    m = _last_json(res.stdout)
    assert m["n_docs"] == 5 and m["n_gold"] > 0 and REQUIRED <= set(m)


def test_evaluate_halves_and_per_toponym(runner: CliRunner, tmp_path: Path) -> None:
    p = tmp_path / "mini.xml"
    extra = _article("4", "Flights from Qwertzuiopburg and from Helsinki.", [("Qwertzuiopburg", 10.0, 10.0)])
    p.write_text("<articles>\n" + "".join(GOOD) + extra + "</articles>\n")
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json", "--per-toponym"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    m, rows = lines[-1], lines[:-1]
    assert m["split"] == "both" and m["n_docs"] == 4
    assert m["fitted"]["n_docs"] == 2 and m["unfitted"]["n_docs"] == 2  # documents at even / odd positions
    assert REQUIRED <= set(m["fitted"]) and REQUIRED <= set(m["unfitted"])
    classes = {r["class"] for r in rows}
    assert classes <= {"missed span", "spurious", "not in gazetteer", "wrong candidate", "not asserted"}
    unknown = [r for r in rows if r["surface"] == "Qwertzuiopburg"]
    assert unknown and unknown[0]["class"] in ("missed span", "not in gazetteer", "not asserted")
    assert any(r["class"] == "spurious" and r["surface"] == "Helsinki" for r in rows)  # not annotated in doc 4
    odd = runner.invoke(cli.app, ["evaluate", str(p), "--json", "--split", "unfitted"])
    assert odd.exit_code == 0 and _last_json(odd.stdout)["n_docs"] == 2
    bad = runner.invoke(cli.app, ["evaluate", str(p), "--split", "odd"])
    assert bad.exit_code == 2 and "--split" in bad.stderr


def test_evaluate_refuses_a_layout_it_cannot_read(runner: CliRunner, tmp_path: Path) -> None:
    p = tmp_path / "other.xml"
    p.write_text("<corpus><doc id='1'><body>Rain in Paris.</body><place>Paris</place></doc></corpus>\n")
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json"])
    assert res.exit_code == 2 and "no document this reader understands" in res.stderr and "Traceback" not in \
        res.output
    assert "fix:" in res.stderr


def test_parse_gives_probability_feature_class_and_kind(runner: CliRunner) -> None:
    res = runner.invoke(cli.app, ["parse", "Nigerian troops flew from Ibadan to Paris, France.", "--json"])
    assert res.exit_code == 0, res.output
    by = {t["surface"]: t for t in _last_json(res.stdout)["toponyms"]}
    assert by["Ibadan"]["feature_class"] == "P" and by["France"]["feature_class"] == "A"
    assert all(0.0 <= t["probability"] <= 1.0 for t in by.values()) and "commit_features" not in by["Ibadan"]
    assert by["Nigerian"]["kind"] == "demonym" and by["Nigerian"]["country_code"] == "NG"
    assert by["Ibadan"]["kind"] == "toponym"
    assert by["France"]["extent_m"] > 500_000 and by["Ibadan"]["extent_m"] is None  # a country's box; a town's point
    text = runner.invoke(cli.app, ["parse", "Nigerian troops flew from Ibadan to Paris, France."])
    assert "demonym" in text.stdout and "p=" in text.stdout and " km" in text.stdout


def test_evaluate_source_prior_is_a_separate_row(runner: CliRunner, tmp_path: Path) -> None:
    ga = (33.96, -83.38)  # Athens, Georgia
    fitted = ("Athens, Georgia: the council met in Athens, then in Athens again.", [("Athens", *ga)])
    docs = [fitted, ("Athens police arrested two men.", [("Athens", *ga)]), fitted, ("Quiet day.", []),
            fitted]  # positions 0, 2, 4 fitted (3 gold points of the source), 1 and 3 unfitted
    body = "".join(_article(str(i), t, tops).replace("<title>t</title>", "<domain>onlineathens.com</domain>")
                   for i, (t, tops) in enumerate(docs))
    p = tmp_path / "src.xml"
    p.write_text("<?xml version='1.0' encoding='utf-8'?>\n<articles>\n" + body + "</articles>\n")
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json", "--source-prior", "gold"])
    assert res.exit_code == 0, res.output
    m = _last_json(res.stdout)
    assert m["unfitted"]["acc161_gold"] == 0.0  # the plain row: a lone "Athens" is the capital of Greece
    sp = m["source_prior"]
    assert sp["source_prior"]["n_sources"] == 0  # 3 gold points: below the minimum, no prior
    assert sp["unfitted"]["acc161_gold"] == 0.0
    fitted_more = ("Athens, Georgia: Athens, Athens and Athens.", [("Athens", *ga)])
    body = "".join(_article(str(i), t, tops).replace("<title>t</title>", "<domain>onlineathens.com</domain>")
                   for i, (t, tops) in enumerate([*docs, ("x", []), fitted_more, ("y", []), fitted_more]))
    p.write_text("<?xml version='1.0' encoding='utf-8'?>\n<articles>\n" + body + "</articles>\n")
    m = _last_json(runner.invoke(cli.app, ["evaluate", str(p), "--json", "--source-prior", "gold"]).stdout)
    assert m["unfitted"]["acc161_gold"] == 0.0 and m["source_prior"]["source_prior"]["n_sources"] == 1
    assert m["source_prior"]["unfitted"]["acc161_gold"] == 1.0  # the source's point, learned on the fitted half
    assert runner.invoke(cli.app, ["evaluate", str(p), "--source-prior", "guess"]).exit_code == 2


def test_evaluate_reports_lost_signs_and_names_the_gazetteer_cannot_place(runner: CliRunner,
                                                                          tmp_path: Path) -> None:
    """The headline stays against the corpus as published; beside it, how many gold points lost a sign (here
    Dallas' longitude) and the accuracy with them repaired, and the share of gold names with a place nearby."""
    p = tmp_path / "signs.xml"
    p.write_text("<?xml version='1.0' encoding='utf-8'?>\n<articles>\n" + _article(
        "1", "The rodeo in Paris, Texas drew crowds from Dallas.",
        [("Paris", 33.66, -95.56), ("Texas", 31.25, -99.25), ("Dallas", 32.78, 96.8)]) + "</articles>\n")
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json"])
    assert res.exit_code == 0, res.output
    m = _last_json(res.stdout)
    assert m["n_gold_sign_flipped"] == 1
    assert abs(m["acc161_gold_sign_repaired"] - m["acc161_gold"] - 1 / 3) < 1e-3  # Dallas is right once repaired
    # Paris is placed; the gold point of a name with no place within 161 km of it (or of its repair) is not
    assert m["name_in_gazetteer_161"] < 1.0 and m["acc161_gold_in_gazetteer"] == 1.0
    res = runner.invoke(cli.app, ["evaluate", str(p), "--json", "--per-toponym"])
    rows = [json.loads(x) for x in res.stdout.strip().splitlines()[:-1]]
    dallas = next(r for r in rows if r.get("surface") == "Dallas")
    assert dallas["gold_sign_flipped"] == "longitude" and dallas["gold_repaired_lon"] == -96.8
