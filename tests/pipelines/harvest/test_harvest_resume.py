"""An interrupted Wikipedia harvest resumes where it stopped; a re-run fetches only changed or new pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from georeset.errors import ServiceUnavailableError
from georeset.pipelines.harvest import (
    MediaWikiClient,
    area_from_bbox,
    harvest_wikipedia,
    run_wikipedia_harvest,
)

UA = "georeset-tests/0.1 (https://example.org/georeset; tests@example.org)"
WHEN = datetime(2026, 1, 2, tzinfo=UTC)
SIM_AREA = (24.80, 60.10, 25.20, 60.30)  # as in conftest
GSLIMIT = 12  # small, so full tiles are split (and the split children recorded)


def _client(url: str) -> MediaWikiClient:
    return MediaWikiClient(url, user_agent=UA, retry_wait_s=0.001, timeout_s=5, max_retries=1)


def _run(sim: Any, tmp: Path, **kw: Any) -> dict[str, Any]:
    from georeset.data_catalog import stage

    return run_wikipedia_harvest(
        client=_client(sim.api("en")), area=area_from_bbox(SIM_AREA), lang="en", retrieved_at=WHEN,
        sink=lambda rows, name: stage(rows, table="documents", staging_dir=tmp / "staging", name=name),
        state_dir=tmp / "state", gslimit=GSLIMIT, batch_pages=50, **kw)


def _merge(tmp: Path) -> dict[str, tuple[str, str]]:
    """Merge the staged rows into a catalogue; doc_id -> (title, text), checking there are no duplicates."""
    from georeset.data_catalog import merge, open_catalog

    con = open_catalog(str(tmp / "georeset.duckdb"))
    try:
        merge(con, table="documents", staging_dir=tmp / "staging")
        n, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM documents").fetchone()  # type: ignore[misc]
        assert n == distinct
        return {r[0]: (r[1], r[2]) for r in con.execute("SELECT doc_id, title, text FROM documents").fetchall()}
    finally:
        con.close()


def _inside(sim: Any) -> set[str]:
    minlon, minlat, maxlon, maxlat = SIM_AREA
    return {f"wikipedia:en:{p['pageid']}" for p in sim.pages["en"].values()
            if minlon <= p["lon"] <= maxlon and minlat <= p["lat"] <= maxlat}


@pytest.fixture()
def reference(simwiki: Any) -> dict[str, Any]:
    """The uninterrupted harvest (in memory) and the requests it made."""
    rows = harvest_wikipedia(area=area_from_bbox(SIM_AREA), user_agent=UA, retrieved_at=WHEN,
                             client=_client(simwiki.api("en")), gslimit=GSLIMIT)
    out = {"rows": {r["doc_id"]: (r["title"], r["text"]) for r in rows},
           "geosearch": len(simwiki.requests("geosearch")), "pages": len(simwiki.requests("pages"))}
    simwiki.log.clear()
    return out


def test_reference_covers_the_area(simwiki: Any, reference: dict[str, Any]) -> None:
    assert set(reference["rows"]) == _inside(simwiki)  # every page inside, none outside
    assert reference["geosearch"] > 4  # the 4 planned tiles came back full and were split


@pytest.mark.parametrize("where", ["search", "fetch"])
def test_interrupted_harvest_resumes_without_duplicates(simwiki: Any, reference: dict[str, Any], tmp_path: Path,
                                                         where: str) -> None:
    n_geo = reference["geosearch"]
    simwiki.fail_after = 3 if where == "search" else n_geo + 3  # stop among the tiles, or after some batches
    with pytest.raises(ServiceUnavailableError, match="HTTP 503"):
        _run(simwiki, tmp_path)
    first_geo = {p["gscoord"] for p in simwiki.requests("geosearch")}
    first_pages = [p for p in simwiki.requests("pages") if "excontinue" not in p]
    assert len(first_geo) == (3 if where == "search" else n_geo)
    assert (tmp_path / "state").is_dir() and any((tmp_path / "state").rglob("journal.jsonl"))
    if where == "fetch":
        assert first_pages and any((tmp_path / "staging" / "documents").glob("*.parquet"))  # batches staged

    simwiki.log.clear()
    simwiki.fail_after = None
    summary = _run(simwiki, tmp_path)
    assert summary["resumed"] is True and summary["tiles_resumed"] == len(first_geo)
    again_geo = [p["gscoord"] for p in simwiki.requests("geosearch")]
    assert not set(again_geo) & first_geo  # no tile searched twice
    assert len(first_geo) + len(again_geo) == n_geo
    again_ids = {i for p in simwiki.requests("pages") for i in p["pageids"].split("|")}
    done_ids = {i for p in first_pages for i in p["pageids"].split("|")} if where == "fetch" else set()
    assert not again_ids & done_ids  # staged batches are not fetched again
    assert _merge(tmp_path) == reference["rows"]  # exactly the same documents, no duplicates
    assert not any((tmp_path / "state").rglob("journal.jsonl"))  # run complete: journal folded in


def test_torn_journal_line_is_dropped(simwiki: Any, reference: dict[str, Any], tmp_path: Path) -> None:
    simwiki.fail_after = 4
    with pytest.raises(ServiceUnavailableError):
        _run(simwiki, tmp_path)
    journal = next((tmp_path / "state").rglob("journal.jsonl"))
    with journal.open("ab") as fh:
        fh.write(b'{"t":"tile","tile":[24.8,')  # a crash in the middle of a write
    simwiki.fail_after = None
    _run(simwiki, tmp_path)
    assert _merge(tmp_path) == reference["rows"]


def test_rerun_fetches_only_changed_and_new_pages(simwiki: Any, reference: dict[str, Any], tmp_path: Path) -> None:
    first = _run(simwiki, tmp_path)
    assert first["pages_new"] == first["pages_fetched"] == len(reference["rows"])
    before = _merge(tmp_path)
    known = sorted(int(d.rsplit(":", 1)[1]) for d in before)
    changed = known[7]
    simwiki.revise("en", changed)
    new_id = 7_099_999
    simwiki.pages["en"][new_id] = {"pageid": new_id, "title": "GEO-ReSeT en test page new", "lat": 60.2,
                                   "lon": 25.0, "lastrevid": 1, "wikibase_item": "Q1", "extract": "TEST DATA new."}
    simwiki.log.clear()
    second = _run(simwiki, tmp_path)
    info = simwiki.requests("info")
    assert len(info) == -(-len(known) // 50)  # the known ids, asked 50 at a time
    assert sorted(int(i) for p in info for i in p["pageids"].split("|")) == known
    fetched = sorted(int(i) for p in simwiki.requests("pages") for i in p["pageids"].split("|"))
    assert fetched == sorted([changed, new_id])
    assert second["pages_new"] == 1 and second["pages_fetched"] == 2 and second["pages_unchanged"] == len(known) - 1
    after = _merge(tmp_path)
    assert set(after) == set(before) | {f"wikipedia:en:{new_id}"}
    assert after[f"wikipedia:en:{changed}"][1].endswith("Revised.")
    assert all(after[d] == before[d] for d in before if d != f"wikipedia:en:{changed}")
    simwiki.log.clear()
    third = _run(simwiki, tmp_path)  # nothing changed: revisions only
    assert third["pages_fetched"] == 0 and not simwiki.requests("pages")
