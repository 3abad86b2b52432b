"""MediaWikiTransport, the transport given to wikipedia-api: it sends the library's Wikipedia URLs to the configured
api.php and restates MediaWiki's answers in the library's terms (what its retry loop then does with them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import wikipediaapi

from georeset.pipelines.harvest.mediawiki import MediaWikiTransport
from georeset.reliability import MediaWikiFaultServer

# What the library builds for language "en": the transport must send it to the local server instead.
LIBRARY_URL = "https://en.wikipedia.org/w/api.php?action=query&list=geosearch&gscoord=60.17%7C24.94&format=json"


def _get(t: MediaWikiTransport) -> httpx.Response:
    return t.handle_request(httpx.Request("GET", LIBRARY_URL))


def test_wikipedia_url_goes_to_the_configured_api() -> None:
    with MediaWikiFaultServer(n_pages=2) as srv:
        with MediaWikiTransport(srv.url) as t:
            r = _get(t)
            assert r.status_code == 200 and len(r.json()["query"]["geosearch"]) == 2
            assert srv.requests == 1 and t.requests == 1 and t.transient == 0


def test_retry_after_as_a_date_is_read_and_capped() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    with MediaWikiFaultServer(faults=[("status", 429, {"Retry-After": later}),
                                      ("status", 429, {"Retry-After": "3"})]) as srv:
        with MediaWikiTransport(srv.url, max_wait_s=60) as t:
            with pytest.raises(wikipediaapi.WikiRateLimitError) as info:
                _get(t)
            assert info.value.retry_after == 60  # two hours asked, capped
            with pytest.raises(wikipediaapi.WikiRateLimitError) as info:
                _get(t)
            assert info.value.retry_after == 3
            assert t.transient == 2


@pytest.mark.parametrize(("code", "headers", "wait"), [("maxlag", {}, 5), ("maxlag", {"Retry-After": "2"}, 2),
                                                       ("ratelimited", {}, None), ("readonly", {}, None)])
def test_busy_api_errors_become_the_library_rate_limit(code: str, headers: dict[str, str], wait: int | None) -> None:
    with MediaWikiFaultServer(faults=[("api_error", code, headers)]) as srv:
        with MediaWikiTransport(srv.url) as t, pytest.raises(wikipediaapi.WikiRateLimitError) as info:
            _get(t)
        assert info.value.retry_after == wait  # None: the library's exponential backoff


def test_truncated_body_is_a_connection_error_for_the_library() -> None:
    with MediaWikiFaultServer(faults=[("body", '{"query": {"geosearch": [')]) as srv:
        with MediaWikiTransport(srv.url) as t, pytest.raises(wikipediaapi.WikiConnectionError):
            _get(t)


def test_server_errors_are_left_to_the_library() -> None:
    with MediaWikiFaultServer(faults=[("status", 503, {})]) as srv:
        with MediaWikiTransport(srv.url) as t:
            assert _get(t).status_code == 503 and t.transient == 1  # the library raises WikiHttpError and retries


def test_connection_dropped_mid_body_is_a_connection_error_for_the_library() -> None:
    with MediaWikiFaultServer(faults=[("cut",)]) as srv:
        with MediaWikiTransport(srv.url) as t, pytest.raises(wikipediaapi.WikiConnectionError) as info:
            _get(t)
        assert isinstance(info.value.__cause__, httpx.RemoteProtocolError) and t.transient == 1
