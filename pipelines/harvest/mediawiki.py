"""The harvest's MediaWiki client: ``wikipedia-api`` (``import wikipediaapi``) plus a thin, documented extension.

What the library does here, unchanged: the HTTP client (``httpx``, gzip, timeouts, one connection, serial calls),
the User-Agent header (ours first, then the library's), ``list=geosearch`` (:meth:`wikipediaapi.Wikipedia.geosearch`)
and the retries (``tenacity``: HTTP 429 honouring ``Retry-After``, 5xx, timeouts and connection errors, exponential
backoff, ``max_retries`` / ``retry_wait``); ``maxlag`` goes in through its ``extra_api_params``.

What it cannot do that the harvest needs, added through its public hooks (see docs/decisions/0003-wikipedia-client.md):

- another MediaWiki than ``https://<lang>.wikipedia.org/w/api.php`` (``--api-url``, the test servers): the library
  builds that URL itself; :class:`MediaWikiTransport`, passed as its documented ``transport``, sends each request to
  the configured ``api.php`` instead;
- MediaWiki's in-body answers: ``maxlag``, ``ratelimited``, ``readonly`` come as HTTP 200 with an ``error`` object,
  and a body cut short by a dropped connection parses as invalid JSON. The library would take the first as an empty
  result (a silently lost tile) and never retry the second. The transport restates them in the library's own terms
  (:class:`wikipediaapi.WikiRateLimitError` with the ``Retry-After`` to honour, :class:`wikipediaapi.WikiConnectionError`),
  so the library's one retry loop handles them; any other API error stops the harvest with its code and message;
- pacing (``min_interval_s`` between requests) and the request / retry counts the summaries report;
- the details of 50 page ids in one request (extracts, coordinates, page props, revision id, URL), following
  ``continue`` inside the batch, and the ``prop=info`` revision check: the library fetches extracts and info one
  title per request and ``batch_coordinates`` asks for coordinates only, so :meth:`MediaWikiClient.query` sends
  these queries through the library's request method (its HTTP client, retries and transport) from this subclass.

The etiquette stays: a descriptive User-Agent (required; generic library ones refused), serial requests,
``maxlag=5``, timeouts, retries that honour ``Retry-After``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import wikipediaapi

from georeset.errors import InputError, ServiceUnavailableError

__all__ = ["MediaWikiClient", "MediaWikiTransport", "check_user_agent", "USER_AGENT_HINT"]

USER_AGENT_HINT = (
    'pass --user-agent "name/version (contact)", e.g. --user-agent "my-geo-harvest/0.3 (https://example.org/me; '
    'me@example.org)" (see https://foundation.wikimedia.org/wiki/Policy:User-Agent_policy)'
)
_GENERIC = re.compile(
    r"^\s*(python-requests|python-urllib|python-httpx|httpx|aiohttp|urllib3|curl|wget|libwww-perl|java|"
    r"go-http-client|okhttp|axios|node-fetch|undici|mozilla/|postman|insomnia|user-agent|test|none|null)",
    re.IGNORECASE,
)
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_RETRY_API_ERRORS = {"maxlag", "ratelimited", "readonly", "internal_api_error_DBQueryTimeoutError"}
_PAGE_BATCH = 50


def check_user_agent(user_agent: str | None, *, service: str = "the MediaWiki API") -> str:
    """Return the stripped User-Agent or raise :class:`InputError` if it is missing or generic.

    Wikimedia, the Overpass API and Nominatim all ask for a User-Agent that names the tool and a contact; the
    same check serves all three (``service`` names the one in the message). It is stricter than wikipedia-api's
    own check (at least 5 characters), which still runs.
    """
    ua = (user_agent or "").strip()
    if not ua:
        raise InputError(f"no User-Agent given for {service} (it blocks anonymous clients)", hint=USER_AGENT_HINT)
    has_name = re.search(r"[A-Za-z][\w.\-]*/\S+", ua) is not None
    has_contact = re.search(r"@|https?://|User:", ua) is not None
    if _GENERIC.match(ua) or not has_name or not has_contact:
        raise InputError(
            f"User-Agent {ua!r} is generic or lacks a tool name/version and a contact (URL or e-mail)",
            hint=USER_AGENT_HINT,
        )
    return ua


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class _ApiBusy(wikipediaapi.WikiRateLimitError):
    """``maxlag`` / ``ratelimited`` / ``readonly`` in an HTTP 200 body: retried like a 429 by the library."""

    def __init__(self, url: str, code: str, retry_after: int | None) -> None:
        self.code = code
        super().__init__(url, retry_after)


class _Truncated(wikipediaapi.WikiConnectionError):
    """An HTTP 200 JSON body cut short (a dropped connection): retried like a connection error by the library."""


class _Dropped(wikipediaapi.WikiConnectionError):
    """The connection broke after the request was sent (a body shorter than its Content-Length, a reset): retried
    like a connection error (the library itself retries only failures to connect and timeouts)."""


class MediaWikiTransport(httpx.BaseTransport):
    """The ``transport`` given to wikipedia-api: the endpoint, pacing, counts and MediaWiki's in-body answers.

    ``api_url``: every request goes to this ``api.php`` (scheme, host and path replaced; the query kept).
    ``inner``: the transport that does the I/O (default :class:`httpx.HTTPTransport`).
    ``max_wait_s`` caps a ``Retry-After`` (also an HTTP date, which the library alone would not read).
    """

    def __init__(self, api_url: str, *, inner: httpx.BaseTransport | None = None, min_interval_s: float = 0.0,
                 max_wait_s: float = 300.0, maxlag_wait_s: int = 5) -> None:
        self.api_url = httpx.URL(api_url)
        self.inner = inner or httpx.HTTPTransport()
        self.min_interval_s = min_interval_s
        self.max_wait_s = max_wait_s
        self.maxlag_wait_s = maxlag_wait_s
        self.requests = 0
        self.transient = 0  # answers the library retries (or gives up on): 429, 5xx, timeouts, maxlag, truncation
        self._last = 0.0
        self._lock = threading.Lock()

    def _wait(self, headers: Mapping[str, str], default: int | None = None) -> int | None:
        wait = _retry_after(headers)
        if wait is None:
            return default
        return int(min(self.max_wait_s, round(wait)))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(scheme=self.api_url.scheme, host=self.api_url.host, port=self.api_url.port,
                                    path=self.api_url.path)
        request.url = url
        request.headers["Host"] = url.netloc.decode("ascii")
        with self._lock:
            pause = self.min_interval_s - (time.monotonic() - self._last)
            if pause > 0:
                time.sleep(pause)
            self._last = time.monotonic()
            self.requests += 1
        where = str(url.copy_with(query=None))
        try:
            response = self.inner.handle_request(request)
            if response.status_code == 200:
                response.read()
        except (httpx.TimeoutException, httpx.ConnectError):
            self.transient += 1
            raise  # the library retries these
        except httpx.TransportError as exc:
            self.transient += 1
            raise _Dropped(where) from exc
        if response.status_code in _TRANSIENT_STATUS:
            self.transient += 1
            if response.status_code == 429:
                response.close()
                raise wikipediaapi.WikiRateLimitError(where, self._wait(response.headers))
            return response
        if response.is_redirect:  # the rewrite above would send a followed redirect back here: say where it goes
            location = response.headers.get("Location", "")
            response.close()
            raise ServiceUnavailableError(f"MediaWiki API {self.api_url} redirects (HTTP {response.status_code}) to "
                                          f"{location}", hint=f"pass the api.php URL it names, --api-url {location}")
        if response.status_code != 200:
            return response
        body = response.content
        try:
            data = json.loads(body)
        except ValueError:
            if body.lstrip().startswith(b"{"):
                self.transient += 1
                raise _Truncated(where) from None
            return response  # not JSON at all: the library reports it (WikiInvalidJsonError)
        err = data.get("error") if isinstance(data, dict) else None
        if not err:
            return response
        code = str(err.get("code", "")) if isinstance(err, dict) else str(err)
        if code in _RETRY_API_ERRORS:
            self.transient += 1
            raise _ApiBusy(where, code, self._wait(response.headers, self.maxlag_wait_s if code == "maxlag" else None))
        info = err.get("info", "") if isinstance(err, dict) else ""
        raise ServiceUnavailableError(
            f"MediaWiki API error {code!r}: {info}",
            hint="check the request parameters (radius <= 10000 m, limit <= 500, <= 50 page ids)",
        )

    def close(self) -> None:
        self.inner.close()


class MediaWikiClient(wikipediaapi.Wikipedia):  # type: ignore[misc]  # wikipediaapi ships no type hints
    """wikipedia-api's :class:`wikipediaapi.Wikipedia` for one language and one ``api.php``, serial and retrying.

    ``api_url`` defaults to ``https://<lang>.wikipedia.org/w/api.php``; ``transport`` replaces the I/O transport
    under :class:`MediaWikiTransport` (e.g. a caching one). ``max_retries`` and ``retry_wait_s`` are the library's
    ``max_retries`` and ``retry_wait`` (backoff ``retry_wait_s * 2**n`` unless the server says ``Retry-After``).
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        user_agent: str,
        lang: str = "en",
        timeout_s: float = 30.0,
        max_retries: int = 5,
        retry_wait_s: float = 1.0,
        max_wait_s: float = 300.0,
        maxlag: int = 5,
        min_interval_s: float = 0.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = api_url or f"https://{lang}.wikipedia.org/w/api.php"
        if not re.match(r"^https?://[^/]+", url):
            raise InputError(f"invalid MediaWiki API URL {url!r}",
                             hint="pass the api.php URL, e.g. https://en.wikipedia.org/w/api.php")
        from georeset import __version__

        self.api_url = url
        self.maxlag = maxlag
        self.mw_transport = MediaWikiTransport(url, inner=transport, min_interval_s=min_interval_s, max_wait_s=max_wait_s,
                                            maxlag_wait_s=maxlag)
        super().__init__(
            user_agent=f"{check_user_agent(user_agent)} georeset/{__version__}",
            language=lang,
            extract_format=wikipediaapi.ExtractFormat.WIKI,
            extra_api_params={"maxlag": maxlag},
            max_retries=max_retries,
            retry_wait=retry_wait_s,
            timeout=timeout_s,
            transport=self.mw_transport,
        )
        self.max_retries = max_retries

    def close(self) -> None:
        """Close the connection (the library keeps one open for the client's life)."""
        self.mw_transport.close()

    def __enter__(self) -> MediaWikiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def requests_made(self) -> int:
        return self.mw_transport.requests

    @property
    def retries(self) -> int:
        return self.mw_transport.transient

    # -- errors ------------------------------------------------------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The library's exceptions, after its retries, as :class:`ServiceUnavailableError` naming the problem."""
        try:
            yield
        except wikipediaapi.WikiInvalidJsonError as exc:
            raise ServiceUnavailableError(f"MediaWiki API {self.api_url} returned non-JSON",
                                          hint="check that the URL points at api.php") from exc
        except wikipediaapi.WikiHttpError as exc:
            if isinstance(exc, _ApiBusy):
                problem = f"API error {exc.code}"
            elif exc.status_code in _TRANSIENT_STATUS:
                problem = f"HTTP {exc.status_code}"
            else:
                raise ServiceUnavailableError(f"MediaWiki API {self.api_url} answered HTTP {exc.status_code}",
                                              hint="check the API URL and parameters") from exc
            raise self._gave_up(problem) from exc
        except wikipediaapi.WikiHttpTimeoutError as exc:
            raise self._gave_up("timed out") from exc
        except _Truncated as exc:
            raise self._gave_up("truncated JSON") from exc
        except wikipediaapi.WikiConnectionError as exc:
            cause = exc.__cause__
            raise self._gave_up(f"connection failed: {cause or exc}") from exc

    def _gave_up(self, problem: str) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            f"MediaWiki API {self.api_url} failed after {self.max_retries + 1} attempts ({problem})",
            hint="retry later; the harvest can be re-run and upserts without duplicates",
        )

    # -- queries -----------------------------------------------------------------------------------------------
    def geosearch_around(self, *, lat: float, lon: float, radius_m: float, limit: int = 500,
                         namespace: int = 0) -> list[dict[str, Any]]:
        """``list=geosearch`` around a point (the library's :meth:`geosearch`): ``[{pageid, title, lat, lon}]``."""
        radius = int(round(radius_m))
        if not 10 <= radius <= 10000:
            raise InputError(f"geosearch radius {radius_m} m is outside 10..10000 m",
                             hint="tile the area into circles of at most 10 km")
        if not 1 <= limit <= 500:
            raise InputError(f"geosearch limit {limit} is outside 1..500", hint="use at most 500 results a call")
        with self._errors():
            found = self.geosearch(coord=wikipediaapi.GeoPoint(lat=round(lat, 6), lon=round(lon, 6)), radius=radius,
                                   limit=limit, ns=namespace)
        out = []
        for title, page in found.items():
            meta = page.geosearch_meta
            out.append({"pageid": int(page.pageid), "title": title, "lat": meta.lat, "lon": meta.lon})
        return out

    def query(self, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """``action=query`` (``formatversion=2``, ``maxlag``) through the library's request method, following
        ``continue`` tokens until the result is complete."""
        cont: dict[str, Any] = {}
        seen: set[str] = set()
        while True:
            full = {"action": "query", "format": "json", "formatversion": "2", "maxlag": self.maxlag, **params,
                    **cont}
            with self._errors():
                data: dict[str, Any] = self._get(self.language, full)
            yield data
            nxt = data.get("continue")
            if not nxt:
                return
            key = json.dumps(nxt, sort_keys=True)
            if key in seen:
                raise ServiceUnavailableError(f"MediaWiki API {self.api_url} repeated a continue token {nxt}")
            seen.add(key)
            cont = dict(nxt)

    def _batched(self, pageids: Sequence[int], params: Mapping[str, Any],
                 each: Callable[[dict[str, Any]], None]) -> None:
        for i in range(0, len(pageids), _PAGE_BATCH):
            batch = [int(p) for p in pageids[i : i + _PAGE_BATCH]]
            for data in self.query({**params, "pageids": "|".join(map(str, batch))}):
                for page in data.get("query", {}).get("pages", []):
                    each(page)

    def revisions(self, pageids: Sequence[int]) -> dict[int, int | None]:
        """``lastrevid`` of each existing page (``prop=info``, 50 ids a call): the cheap check before a re-fetch.
        Missing or invalid pages are left out."""
        out: dict[int, int | None] = {}

        def each(page: dict[str, Any]) -> None:
            if page.get("missing") or page.get("invalid") or "pageid" not in page:
                return
            rev = page.get("lastrevid")
            out[int(page["pageid"])] = int(rev) if rev is not None else None

        self._batched(pageids, {"prop": "info"}, each)
        return out

    def page_details(self, pageids: Sequence[int], *, intro_only: bool = True) -> list[dict[str, Any]]:
        """Plain-text extracts, primary coordinates, Wikidata id and info (url, lastrevid) for page ids,
        50 ids a call, each call's ``continue`` followed and merged per page."""
        params: dict[str, Any] = {
            "prop": "extracts|coordinates|pageprops|info",
            "explaintext": 1,
            "exlimit": "max",
            "colimit": "max",
            "coprimary": "primary",
            "ppprop": "wikibase_item",
            "inprop": "url",
        }
        if intro_only:
            params["exintro"] = 1
        merged: dict[int, dict[str, Any]] = {}

        def each(page: dict[str, Any]) -> None:
            cur = merged.setdefault(int(page.get("pageid", -1)), {})
            for k, v in page.items():
                if k == "coordinates":
                    cur.setdefault("coordinates", []).extend(v)
                elif k not in cur or cur[k] in (None, ""):
                    cur[k] = v

        self._batched(pageids, params, each)
        return [p for pid, p in merged.items() if pid >= 0 and not p.get("missing") and not p.get("invalid")]
