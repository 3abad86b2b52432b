from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import wikipediaapi

from georeset.errors import InputError, ServiceUnavailableError
from georeset.pipelines.harvest import MediaWikiClient, harvest_wikipedia, tiles_for_bbox
from georeset.pipelines.harvest.mediawiki import check_user_agent

UA = "georeset-tests/0.1 (https://example.org/georeset; tests@example.org)"
WHEN = datetime(2026, 1, 2, tzinfo=UTC)


def _client(url: str, **kw: object) -> MediaWikiClient:
    return MediaWikiClient(url, user_agent=UA, retry_wait_s=0.001, timeout_s=5, **kw)  # type: ignore[arg-type]


def test_harvest_follows_continue_and_retries(mediawiki) -> None:  # type: ignore[no-untyped-def]
    client = _client(mediawiki.url)
    assert isinstance(client, wikipediaapi.Wikipedia)  # the library's client, pointed at the replay server
    rows = harvest_wikipedia(bbox=tuple(mediawiki.pages["bbox"]), user_agent=UA, retrieved_at=WHEN, client=client)
    inside = {p["pageid"]: p for p in mediawiki.pages["pages"] if p["in_bbox"]}
    assert len(rows) == len(inside) == 60
    assert len({r["doc_id"] for r in rows}) == 60
    for r in rows:
        pid = int(r["doc_id"].rsplit(":", 1)[1])
        page = inside[pid]
        assert r["doc_id"] == f"wikipedia:en:{pid}" and r["source_id"] == f"en:{pid}"
        assert r["text"] == page["extract"]  # every extract arrived, across continue pages
        assert (r["lat"], r["lon"]) == (page["lat"], page["lon"])
        assert r["licence"] == "CC-BY-SA-4.0" and r["url"].startswith("https://en.wikipedia.org/wiki/")
        assert json.loads(r["tags"])["wikibase_item"] == page["wikibase_item"]
        assert len(r["content_hash"]) == 64
    statuses = mediawiki.statuses()
    assert 429 in statuses and 503 in statuses
    assert client.retries == 3 and client.requests_made == len(mediawiki.log) == 8  # 429, 503, maxlag retried
    # 3 + 1 calls for the two batches, plus the retried 503 and maxlag (an HTTP 200 with an error object, which
    # must not be taken for an empty batch: the 10 pages of the second batch are among the 60 rows)
    assert sum("pageids" in e["params"] for e in mediawiki.log) == 6
    continued = [e for e in mediawiki.log if "excontinue" in e["params"]]
    assert len(continued) == 2
    for e in mediawiki.log:
        assert e["params"]["maxlag"] == "5" and e["params"]["format"] == "json"
        assert e["params"].get("formatversion") == ("2" if "pageids" in e["params"] else None)
        ua = e["headers"]["User-Agent"]
        assert ua.startswith(UA + " georeset/") and ua.endswith(wikipediaapi.USER_AGENT)
        assert len(e["params"].get("pageids", "").split("|")) <= 50
        assert int(e["params"].get("gsradius", 10)) <= 10000


def test_api_error_surfaces(mediawiki) -> None:  # type: ignore[no-untyped-def]
    client = _client(mediawiki.url)
    # the replay has no rule for a 5-page batch: the API error must surface as ServiceUnavailableError
    with pytest.raises(ServiceUnavailableError, match="unmatched"):
        harvest_wikipedia(bbox=tuple(mediawiki.pages["bbox"]), user_agent=UA, retrieved_at=WHEN, client=client,
                          limit=5)


def test_gives_up_after_retries(mediawiki) -> None:  # type: ignore[no-untyped-def]
    client = _client(mediawiki.url, max_retries=0)
    with pytest.raises(ServiceUnavailableError, match="HTTP 429"):
        client.geosearch_around(lat=60.17, lon=24.94, radius_m=1000)


def test_unreachable_api() -> None:
    client = _client("http://127.0.0.1:9/w/api.php", max_retries=1)
    with pytest.raises(ServiceUnavailableError, match="connection failed"):
        list(client.query({"meta": "siteinfo"}))


@pytest.mark.parametrize("ua", [None, "", "python-requests/2.32.3", "curl/8.0", "Mozilla/5.0 (X11; Linux)",
                                "mytool", "mytool/1.0"])
def test_refuses_generic_user_agent(ua: str | None) -> None:
    with pytest.raises(InputError, match="--user-agent"):
        check_user_agent(ua)
    with pytest.raises(InputError, match="--user-agent"):
        harvest_wikipedia(bbox=(24.9, 60.15, 24.98, 60.19), user_agent=ua, retrieved_at=WHEN,  # type: ignore[arg-type]
                          api_url="http://127.0.0.1:9/w/api.php")


def test_accepts_descriptive_user_agent() -> None:
    assert check_user_agent(" " + UA) == UA
    assert check_user_agent("GeoBot/2.1 (User:Example; bot@example.org)")


@pytest.mark.parametrize("bbox", [(1, 2, 3), (10, 10, 5, 5), (200, 0, 201, 1), ("a", 0, 1, 1)])
def test_bad_bbox(bbox: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError, match="bbox"):
        harvest_wikipedia(bbox=bbox, user_agent=UA, retrieved_at=WHEN, api_url="http://127.0.0.1:9/w/api.php")


def test_tiles_respect_radius() -> None:
    tiles = tiles_for_bbox((24.5, 60.0, 25.5, 60.5), radius_m=10000)
    assert len(tiles) > 1
    assert all(t.radius_m <= 10000 for t in tiles)
    area = sum((t.maxlon - t.minlon) * (t.maxlat - t.minlat) for t in tiles)
    assert area == pytest.approx(1.0 * 0.5)
    assert all(s.radius_m < t.radius_m for t in tiles[:1] for s in t.split())
