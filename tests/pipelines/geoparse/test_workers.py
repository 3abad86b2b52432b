"""Several processes for large harvests: the geoparse stage's batches parsed by a pool equal those parsed in
process (each worker loads the parser once)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from georeset.errors import InputError

_TEXTS = [
    "Officials in Helsinki said the ferry to Tallinn would run again on Monday.",
    "The mayor of Paris met farmers from Bavaria and Lombardy.",
    "Floods closed roads between Nairobi and Mombasa.",
    "A new bridge links Ontario and Michigan near Detroit.",
    "Police in Lima arrested two men from Cusco.",
    "Moscow and Kyiv traded accusations over the talks in Istanbul.",
]


def _batches(root: Path, gazetteer: tuple[Any, Any]) -> tuple[list[str], Path]:
    gaz = root / "gazetteer"
    gaz.mkdir(parents=True)
    places, names = gazetteer
    pq.write_table(places, gaz / "places.parquet")
    pq.write_table(names, gaz / "place_names.parquet")
    files = []
    for b in range(3):
        docs = [{"doc_id": f"d{b}-{i}", "text": t, "lon": None, "lat": None, "licence": "CC0",
                 "content_hash": f"h{b}{i}"} for i, t in enumerate(_TEXTS[2 * b:2 * b + 2])]
        path = root / f"docs-{b}.parquet"
        pq.write_table(pa.Table.from_pylist(docs, schema=pa.schema([
            ("doc_id", pa.string()), ("text", pa.string()), ("lon", pa.float64()), ("lat", pa.float64()),
            ("licence", pa.string()), ("content_hash", pa.string())])), path)
        files.append(str(path))
    return files, gaz


def _staged(staging: Path) -> list[tuple[Any, ...]]:
    rows = [r for f in sorted((staging / "toponyms").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return sorted((r["doc_id"], r["start_char"], r["surface"],
                   r["place_id"]) for r in rows)


def test_pool_of_workers_equals_one_process(tmp_path: Path, gazetteer: tuple[Any, Any]) -> None:
    from georeset.stages.geoparse import default_workers, run_batches

    files, gaz = _batches(tmp_path, gazetteer)
    when = dt.datetime(2026, 1, 1)
    one = run_batches(files, gazetteer_dir=gaz, staging_dir=tmp_path / "one", processed_at=when, workers=1)
    two = run_batches(files, gazetteer_dir=gaz, staging_dir=tmp_path / "two", processed_at=when, workers=2)
    assert [d["documents"] for d in one] == [d["documents"] for d in two] == [2, 2, 2]
    a, b = _staged(tmp_path / "one"), _staged(tmp_path / "two")
    assert a == b
    assert {r[2] for r in a} >= {"Helsinki", "Nairobi", "Moscow"}
    assert default_workers() >= 1


def test_workers_must_be_positive(tmp_path: Path) -> None:
    from georeset.stages.geoparse import run_batches

    with pytest.raises(InputError, match="workers"):
        run_batches([], gazetteer_dir=tmp_path, staging_dir=tmp_path, processed_at=dt.datetime(2026, 1, 1),
                     workers=0)


@pytest.mark.slow
def test_stage_with_two_workers_equals_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyrosm

    from georeset.stages import geoparse as stage
    from georeset.stages import harvest_osm_stage
    from georeset.workspace import Workspace

    monkeypatch.setattr(stage, "MIN_DOCS_PER_WORKER", 1)  # a pool even for a small harvest
    pbf = str(pyrosm.get_data("test_pbf"))
    out = {}
    for workers in (1, 2):
        ws = Workspace.at(tmp_path / f"w{workers}")
        harvest_osm_stage(ws, pbfs=[pbf], max_docs=60)
        r = stage.geoparse_stage(ws, progress=False, min_population=15000, workers=workers,
                                 processed_at=dt.datetime(2026, 1, 1))
        con = stage.writer.open_writer(ws)
        try:
            n_docs = con.execute("SELECT count(*) FROM documents").fetchone()[0]
            out[workers] = con.execute("SELECT doc_id, start_char, surface, place_id FROM toponyms "
                                       "ORDER BY ALL").fetchall()
        finally:
            con.close()
        assert r["documents_parsed"] == n_docs > 0
    assert out[1] == out[2] and out[1]


def test_workers_use_the_fine_tuned_ner_the_environment_names(tmp_path: Path, gazetteer: tuple[Any, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``--ner-model`` / ``GEORESET_NER_MODEL``: spawned workers load the same fine-tuned NER, and the catalogue
    rows say so in ``method``."""
    from georeset.pipelines.geoparse.corpora import GoldDocument, GoldToponym
    from georeset.pipelines.geoparse.ner_tuning import ENV_VAR, fine_tune, save
    from georeset.pipelines.geoparse.parser import METHOD
    from georeset.stages.geoparse import run_batches

    text = "Officials in Helsinki said the ferry to Tallinn would run again on Monday."
    docs = [GoldDocument("1", text, [GoldToponym(text.index(n), text.index(n) + len(n), n, 60.0, 25.0)
                                     for n in ("Helsinki", "Tallinn")])]
    model = tmp_path / "ner"
    save(fine_tune(docs, epochs=1), model, {"corpus": "test", "split": "all"})
    files, gaz = _batches(tmp_path, gazetteer)
    monkeypatch.setenv(ENV_VAR, str(model))
    run_batches(files, gazetteer_dir=gaz, staging_dir=tmp_path / "two", processed_at=dt.datetime(2026, 1, 1),
                workers=2)
    rows = [r for f in sorted((tmp_path / "two" / "toponyms").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert rows and {r["method"] for r in rows} == {f"{METHOD}; NER fine-tuned on test (all)"}
