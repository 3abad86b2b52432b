"""A 200 reply whose JSON body was cut short is retried; an HTML page is a configuration error."""

from __future__ import annotations

import pytest

from georeset.errors import ServiceUnavailableError
from georeset.pipelines.harvest.mediawiki import MediaWikiClient

UA = "georeset-tests/0.1 (tests@example.org)"


def _client(bodies: list[bytes]) -> MediaWikiClient:
    c = MediaWikiClient("http://127.0.0.1:9/w/api.php", user_agent=UA, sleep=lambda s: None, max_retries=3)
    replies = iter(bodies)
    c._http_get = lambda url: (200, {}, next(replies))  # type: ignore[method-assign]
    return c


def test_truncated_json_is_retried() -> None:
    c = _client([b'{"batchcomplete": true, "query": {"geos', b'{"batchcomplete": true, "query": {"geosearch": []}}'])
    assert c.request({"action": "query"})["query"] == {"geosearch": []}
    assert c.retries == 1


def test_html_page_fails_at_once_with_a_hint() -> None:
    c = _client([b"<html>Main Page</html>"])
    with pytest.raises(ServiceUnavailableError, match="non-JSON"):
        c.request({"action": "query"})


def test_truncated_every_time_gives_up_naming_the_problem() -> None:
    c = _client([b'{"query": '] * 4)
    with pytest.raises(ServiceUnavailableError, match="truncated JSON"):
        c.request({"action": "query"})
