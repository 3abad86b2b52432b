"""Fine-tuning spaCy's NER on gold toponyms (ner_tuning.py) and using it (--ner-model, GEORESET_NER_MODEL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from georeset.errors import InputError
from georeset.pipelines.geoparse import Geoparser, cli
from georeset.pipelines.geoparse.corpora import GoldDocument, GoldToponym
from georeset.pipelines.geoparse.ner_tuning import ENV_VAR, META_FILE, fine_tune, training_examples
from georeset.pipelines.geoparse.parser import METHOD, load_nlp

PATTERNS = ["{} police said the road was closed after the crash.", "The {} council met on Monday to discuss the budget.",
            "Residents of {} voted against the new school levy.", "Deputies took a {} man to the county jail, John Smith said."]
NAMES = ["Quillbrook", "Marrowdale", "Fennick", "Ostervale"]


def _docs() -> list[GoldDocument]:
    docs = []
    for i, name in enumerate(NAMES):
        for j, pattern in enumerate(PATTERNS):
            text = pattern.format(name)
            s = text.index(name)
            docs.append(GoldDocument(f"{i}-{j}", text, [GoldToponym(s, s + len(name), name, 40.0, -90.0)]))
    return docs


def _places(nlp: Any, text: str) -> list[str]:
    return [e.text for e in nlp(text).ents if e.label_ in ("GPE", "LOC", "FAC")]


def test_training_examples_mark_gold_places_and_keep_the_other_entities() -> None:
    nlp = load_nlp()
    text = "Deputies took a Quillbrook man to the county jail in Dallas, John Smith said on Monday."
    s = text.index("Quillbrook")
    doc = GoldDocument("1", text, [GoldToponym(s, s + 10, "Quillbrook", 40.0, -90.0)])
    [ex] = training_examples(nlp, [doc])
    ents = {(e.text, e.label_) for e in ex.reference.ents}
    assert ("Quillbrook", "GPE") in ents  # the base model calls it a PRODUCT
    assert ("John Smith", "PERSON") in ents and ("Monday", "DATE") in ents  # rehearsed as the base model has them
    assert not any(t == "Dallas" for t, _ in ents)  # a place the gold does not list is not a toponym here
    assert training_examples(nlp, [GoldDocument("2", "No places.", [])]) == []


def test_fine_tuning_learns_where_names_stand_for_places() -> None:
    base = load_nlp()
    nlp = fine_tune(_docs(), epochs=10, seed=0)
    # a name never seen in training, in a pattern that was: the base model reads an organisation
    assert _places(base, "The Brackwater council met on Tuesday.") == []
    assert _places(nlp, "The Brackwater council met on Tuesday.") == ["Brackwater"]
    assert _places(base, "Ostervale police closed the bridge.") == []
    assert _places(nlp, "Ostervale police closed the bridge.") == ["Ostervale"]
    # the other labels are still there
    assert any(e.label_ == "DATE" for e in nlp("The Brackwater council met on Tuesday.").ents)


def _corpus(tmp_path: Path, docs: list[GoldDocument]) -> Path:
    p = tmp_path / "gold.jsonl"
    p.write_text("".join(json.dumps({"doc_id": d.doc_id, "text": d.text, "toponyms": [
        {"start": t.start, "end": t.end, "phrase": t.phrase, "lat": t.lat, "lon": t.lon} for t in d.toponyms]}) + "\n"
        for d in docs))
    return p


def test_train_ner_cli_then_parse_with_the_model(tmp_path: Path, gazetteer: tuple[Any, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "")  # empty is unset; monkeypatch restores the original after the test
    corpus = _corpus(tmp_path, _docs())
    out = tmp_path / "ner"
    runner = CliRunner()
    res = runner.invoke(cli.app, ["train-ner", str(corpus), "--out", str(out), "--split", "all", "--epochs", "10",
                                  "--holdout", "0.25"])
    assert res.exit_code == 0, res.output
    about = json.loads((out / META_FILE).read_text())
    assert about["documents"] == 12 and about["split"] == "all" and (out / "meta.json").is_file()
    assert "epoch 10/10" in res.stderr and "4 documents held out" in res.stderr
    held = json.loads(res.stdout.strip().splitlines()[-1])["held_out"]
    assert held == about["held_out"] and held["documents"] == 4 and held["base"]["n_gold"] == 4
    # the held-out texts put the trained names in a sentence pattern never trained on ("a Quillbrook man"), which the
    # base model reads as a product: the fine-tuned model finds more of them
    assert held["fine_tuned"]["recall"] > held["base"]["recall"]
    # the same directory again: refused, nothing overwritten
    res = runner.invoke(cli.app, ["train-ner", str(corpus), "--out", str(out), "--split", "all"])
    assert res.exit_code == 2 and "not an empty directory" in res.stderr

    monkeypatch.setattr(cli, "build_geoparser", lambda *a, **k: Geoparser.from_rows(*gazetteer))
    text = "Ostervale police closed the bridge near Chicago."
    res = runner.invoke(cli.app, ["parse", text, "--json", "--ner-model", str(out)])
    assert res.exit_code == 0, res.output
    surfaces = [t["surface"] for t in json.loads(res.stdout.strip().splitlines()[-1])["toponyms"]]
    assert "Ostervale" in surfaces
    tuned = Geoparser.from_rows(*gazetteer)  # --ner-model set GEORESET_NER_MODEL for the rest of the process
    assert tuned.method.startswith(METHOD) and "fine-tuned" in tuned.method
    monkeypatch.setenv(ENV_VAR, "")
    assert Geoparser.from_rows(*gazetteer).method == METHOD


def test_bad_input_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    gazetteer: tuple[Any, Any]) -> None:
    runner = CliRunner()
    res = runner.invoke(cli.app, ["parse", "Rain in Paris.", "--ner-model", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "--ner-model" in res.stderr and "Traceback" not in res.output
    empty = _corpus(tmp_path, [GoldDocument("1", "No place here.", [])])
    res = runner.invoke(cli.app, ["train-ner", str(empty), "--out", str(tmp_path / "m"), "--split", "all"])
    assert res.exit_code == 2 and "no document with gold toponyms" in res.stderr and not (tmp_path / "m").exists()
    res = runner.invoke(cli.app, ["train-ner", str(empty), "--out", str(tmp_path / "m"), "--split", "half"])
    assert res.exit_code == 2 and "--split" in res.stderr
    monkeypatch.setenv(ENV_VAR, str(tmp_path))  # a directory without a spaCy pipeline
    with pytest.raises(InputError, match=ENV_VAR):
        Geoparser.from_rows(*gazetteer)


def test_held_out_documents_are_spread_and_disjoint() -> None:
    from georeset.pipelines.geoparse.ner_tuning import held_out

    docs = _docs()
    train, check = held_out(docs, 0.25)
    assert len(check) == 4 and len(train) == 12 and {d.doc_id for d in train}.isdisjoint(d.doc_id for d in check)
    assert [d.doc_id for d in check] == ["0-3", "1-3", "2-3", "3-3"]  # every fourth document
    assert held_out(docs, 0.0) == (docs, [])
