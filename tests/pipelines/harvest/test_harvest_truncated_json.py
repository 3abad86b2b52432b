"""Broken HTTP 200 bodies from a local MediaWiki: a JSON body cut short is retried; an HTML page is a configuration
error; any other API error stops with its code; another status than 200/429/5xx names the URL."""

from __future__ import annotations

import pytest

from georeset.errors import ServiceUnavailableError
from georeset.pipelines.harvest.mediawiki import MediaWikiClient
from georeset.reliability import MediaWikiFaultServer

UA = "georeset-tests/0.1 (tests@example.org)"
TRUNCATED = '{"batchcomplete": true, "query": {"geos'


def _client(url: str) -> MediaWikiClient:
    return MediaWikiClient(url, user_agent=UA, retry_wait_s=0.001, max_retries=3, timeout_s=5)


def test_truncated_json_is_retried() -> None:
    with MediaWikiFaultServer(n_pages=3, faults=[("body", TRUNCATED)]) as srv:
        c = _client(srv.url)
        hits = c.geosearch_around(lat=60.17, lon=24.94, radius_m=1000)
        assert sorted(h["pageid"] for h in hits) == [1000, 1001, 1002]
        assert c.retries == 1 and c.requests_made == srv.requests == 2


def test_html_page_fails_at_once_with_a_hint() -> None:
    with MediaWikiFaultServer(faults=[("body", "<html>Main Page</html>")]) as srv:
        c = _client(srv.url)
        with pytest.raises(ServiceUnavailableError, match="non-JSON") as info:
            c.geosearch_around(lat=60.17, lon=24.94, radius_m=1000)
        assert "api.php" in (info.value.hint or "") and srv.requests == 1


def test_truncated_every_time_gives_up_naming_the_problem() -> None:
    with MediaWikiFaultServer(faults=[("body", '{"query": ')] * 4) as srv:
        with pytest.raises(ServiceUnavailableError, match=r"4 attempts \(truncated JSON\)"):
            list(_client(srv.url).query({"prop": "info", "pageids": "1000"}))
        assert srv.requests == 4


def test_other_api_error_stops_with_its_code() -> None:
    body = '{"error": {"code": "toomanyvalues", "info": "Too many values supplied for parameter \\"pageids\\"."}}'
    with MediaWikiFaultServer(faults=[("body", body)]) as srv:
        with pytest.raises(ServiceUnavailableError, match="toomanyvalues"):
            _client(srv.url).revisions([1000])
        assert srv.requests == 1  # not retried


def test_not_found_names_the_url() -> None:
    with MediaWikiFaultServer(faults=[("status", 404, {})]) as srv:
        with pytest.raises(ServiceUnavailableError, match="answered HTTP 404") as info:
            _client(srv.url).page_details([1000])
        assert srv.url in info.value.message and srv.requests == 1


def test_redirect_names_the_new_url() -> None:
    moved = "https://example.org/w/api.php"
    with MediaWikiFaultServer(faults=[("status", 301, {"Location": moved})]) as srv:
        with pytest.raises(ServiceUnavailableError, match="redirects") as info:
            _client(srv.url).geosearch_around(lat=60.17, lon=24.94, radius_m=1000)
        assert f"--api-url {moved}" in (info.value.hint or "") and srv.requests == 1
