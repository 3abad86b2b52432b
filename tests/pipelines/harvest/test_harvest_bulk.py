from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from georeset.errors import InputError
from georeset.pipelines.harvest import MalformedRecordWarning, read_geotagged_jsonl

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "wikipedia"
WHEN = datetime(2026, 1, 2, tzinfo=UTC)


def _write(tmp_path: Path) -> Path:
    good = {"title": "Test Town", "lat": 60.1, "lon": 24.9, "text": "Test Town is a test.", "toponym": "Test"}
    lines = [
        json.dumps(good).encode(),
        b"{not json",
        json.dumps({"title": "No coords", "text": "x"}).encode(),
        b"",
        json.dumps({**good, "title": "Other", "lang": "fi", "pageid": 42, "url": "https://fi.wikipedia.org/wiki/O"}).encode(),
        b"\xff\xfe bad bytes",
        json.dumps([1, 2]).encode(),
        json.dumps({**good, "lat": 123}).encode(),
    ]
    p = tmp_path / "articles.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    return p


def test_streams_and_reports_bad_lines(tmp_path: Path) -> None:
    p = _write(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = list(read_geotagged_jsonl(p, retrieved_at=WHEN))
    assert [r["doc_id"] for r in rows] == ["wikipedia:en:Test Town", "wikipedia:fi:42"]
    assert rows[0]["url"] == "https://en.wikipedia.org/wiki/Test_Town"
    assert json.loads(rows[0]["tags"]) == {"toponym": "Test"}
    msgs = [str(w.message) for w in caught if issubclass(w.category, MalformedRecordWarning)]
    assert [m.split(":")[1] for m in msgs] == ["2", "3", "6", "7", "8"]


def test_raise_mode_and_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"articles.jsonl:2"):
        list(read_geotagged_jsonl(_write(tmp_path), on_error="raise"))
    with pytest.raises(InputError, match="does not exist"):
        list(read_geotagged_jsonl(tmp_path / "missing.jsonl"))


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/wikipedia is absent")
def test_reads_shared_wiktor_articles() -> None:
    rows = list(read_geotagged_jsonl(SHARED / "wiktor_geotagged_articles.jsonl", on_error="raise"))
    assert len(rows) == 4984
    assert len({r["doc_id"] for r in rows}) == len(rows)
    assert all(r["text"] and -90 <= r["lat"] <= 90 for r in rows)
