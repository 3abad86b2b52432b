"""A small, polite MediaWiki Action API client (stdlib ``urllib``; no extra dependency).

Why not ``wikipedia-api``: its endpoint is fixed to ``https://<lang>.wikipedia.org/w/api.php`` (so it cannot talk to
another MediaWiki or to a local test server without patching private methods), and it does not batch 50 page ids
per call nor follow ``continue`` inside one batch. The etiquette it encodes is kept here: a descriptive User-Agent
(required; generic library ones refused), serial requests, ``maxlag=5``, gzip, timeouts, retries with exponential
backoff and jitter that honour ``Retry-After`` on 429/5xx and on ``maxlag``/``ratelimited`` API errors.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

from georeset.errors import InputError, ServiceUnavailableError

__all__ = ["MediaWikiClient", "check_user_agent", "USER_AGENT_HINT"]

USER_AGENT_HINT = (
    'pass --user-agent "name/version (contact)", e.g. --user-agent "my-geo-harvest/0.3 (https://example.org/me; '
    'me@example.org)" (see https://foundation.wikimedia.org/wiki/Policy:User-Agent_policy)'
)
_GENERIC = re.compile(
    r"^\s*(python-requests|python-urllib|python-httpx|httpx|aiohttp|urllib3|curl|wget|libwww-perl|java|"
    r"go-http-client|okhttp|axios|node-fetch|undici|mozilla/|postman|insomnia|user-agent|test|none|null)",
    re.IGNORECASE,
)
_RETRY_STATUS = {429, 500, 502, 503, 504}
_RETRY_API_ERRORS = {"maxlag", "ratelimited", "readonly", "internal_api_error_DBQueryTimeoutError"}
_PAGE_BATCH = 50


def check_user_agent(user_agent: str | None, *, service: str = "the MediaWiki API") -> str:
    """Return the stripped User-Agent or raise :class:`InputError` if it is missing or generic.

    Wikimedia, the Overpass API and Nominatim all ask for a User-Agent that names the tool and a contact; the
    same check serves all three (``service`` names the one in the message).
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


class MediaWikiClient:
    """Serial, retrying client for one ``api.php`` endpoint.

    ``sleep`` and ``rng`` are injectable so tests run without waiting; ``min_interval_s`` spaces requests.
    """

    def __init__(
        self,
        api_url: str,
        *,
        user_agent: str,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_wait_s: float = 300.0,
        maxlag: int = 5,
        min_interval_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not re.match(r"^https?://", api_url or ""):
            raise InputError(f"invalid MediaWiki API URL {api_url!r}",
                             hint="pass the api.php URL, e.g. https://en.wikipedia.org/w/api.php")
        from georeset import __version__

        self.api_url = api_url
        self.user_agent = f"{check_user_agent(user_agent)} georeset/{__version__}"
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.maxlag = maxlag
        self.min_interval_s = min_interval_s
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.requests_made = 0
        self.retries = 0
        self._last = 0.0

    # -- transport ---------------------------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        return min(self.max_wait_s, self.backoff_s * (2**attempt) * self.rng.uniform(0.75, 1.25))

    def _http_get(self, url: str) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(url, headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (http(s) checked)
                status, headers, body = resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            status, headers, body = err.code, dict(err.headers.items()), err.read()
        if headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return status, headers, body

    def request(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One API call (``format=json&formatversion=2&maxlag=...`` added) with retries; returns the JSON body."""
        full = {"format": "json", "formatversion": "2", "maxlag": str(self.maxlag), **params}
        url = f"{self.api_url}?{urllib.parse.urlencode({k: str(v) for k, v in full.items()})}"
        problem = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait_for = self.min_interval_s - (time.monotonic() - self._last)
            if wait_for > 0:
                self.sleep(wait_for)
            self._last = time.monotonic()
            self.requests_made += 1
            wait: float | None = None
            try:
                status, headers, body = self._http_get(url)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                problem = f"connection failed: {getattr(exc, 'reason', exc)}"
            else:
                if status in _RETRY_STATUS:
                    problem, wait = f"HTTP {status}", _retry_after(headers)
                elif status != 200:
                    raise ServiceUnavailableError(f"MediaWiki API {self.api_url} answered HTTP {status}",
                                                  hint="check the API URL and parameters")
                else:
                    data: Any = None
                    try:
                        data = json.loads(body)
                    except ValueError as exc:
                        if not body.lstrip().startswith(b"{"):
                            raise ServiceUnavailableError(f"MediaWiki API {self.api_url} returned non-JSON",
                                                          hint="check that the URL points at api.php") from exc
                        problem = "truncated JSON"  # a body cut short (dropped connection): transient, retried
                    err = data.get("error") if isinstance(data, dict) else None
                    if data is not None and not err:
                        return data  # type: ignore[no-any-return]
                    if err:
                        code = str(err.get("code", ""))
                        if code not in _RETRY_API_ERRORS:
                            raise ServiceUnavailableError(
                                f"MediaWiki API error {code!r}: {err.get('info', '')}",
                                hint="check the request parameters (radius <= 10000 m, limit <= 500, <= 50 page ids)",
                            )
                        problem = f"API error {code}"
                        wait = _retry_after(headers)
                        if wait is None and code == "maxlag":
                            wait = 5.0
            if attempt == self.max_retries:
                break
            self.retries += 1
            self.sleep(min(self.max_wait_s, wait) if wait is not None else self._backoff(attempt))
        raise ServiceUnavailableError(
            f"MediaWiki API {self.api_url} failed after {self.max_retries + 1} attempts ({problem})",
            hint="retry later; the harvest can be re-run and upserts without duplicates",
        )

    def query(self, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """``action=query`` responses, following ``continue`` tokens until the result is complete."""
        cont: dict[str, Any] = {}
        seen: set[str] = set()
        while True:
            data = self.request({"action": "query", **params, **cont})
            yield data
            nxt = data.get("continue")
            if not nxt:
                return
            key = json.dumps(nxt, sort_keys=True)
            if key in seen:
                raise ServiceUnavailableError(f"MediaWiki API {self.api_url} repeated a continue token {nxt}")
            seen.add(key)
            cont = dict(nxt)

    # -- queries -----------------------------------------------------------------------------------------------
    def geosearch(self, *, lat: float, lon: float, radius_m: float, limit: int = 500,
                  namespace: int = 0) -> list[dict[str, Any]]:
        """``list=geosearch`` around a point: ``[{pageid, ns, title, lat, lon, dist, primary}]``."""
        radius = int(round(radius_m))
        if not 10 <= radius <= 10000:
            raise InputError(f"geosearch radius {radius_m} m is outside 10..10000 m",
                             hint="tile the area into circles of at most 10 km")
        if not 1 <= limit <= 500:
            raise InputError(f"geosearch limit {limit} is outside 1..500", hint="use at most 500 results a call")
        out: list[dict[str, Any]] = []
        for data in self.query({"list": "geosearch", "gscoord": f"{lat:.6f}|{lon:.6f}", "gsradius": radius,
                                "gslimit": limit, "gsnamespace": namespace}):
            out.extend(data.get("query", {}).get("geosearch", []))
        return out

    def revisions(self, pageids: Sequence[int]) -> dict[int, int | None]:
        """``lastrevid`` of each existing page (``prop=info``, 50 ids a call): the cheap check before a re-fetch.
        Missing or invalid pages are left out."""
        out: dict[int, int | None] = {}
        for i in range(0, len(pageids), _PAGE_BATCH):
            batch = [int(p) for p in pageids[i : i + _PAGE_BATCH]]
            for data in self.query({"prop": "info", "pageids": "|".join(map(str, batch))}):
                for page in data.get("query", {}).get("pages", []):
                    if page.get("missing") or page.get("invalid") or "pageid" not in page:
                        continue
                    rev = page.get("lastrevid")
                    out[int(page["pageid"])] = int(rev) if rev is not None else None
        return out

    def pages(self, pageids: Sequence[int], *, intro_only: bool = True) -> list[dict[str, Any]]:
        """Plain-text extracts, primary coordinates, Wikidata id and info (url, lastrevid) for page ids,
        50 ids a call, each call's ``continue`` followed and merged per page."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(pageids), _PAGE_BATCH):
            batch = [int(p) for p in pageids[i : i + _PAGE_BATCH]]
            params: dict[str, Any] = {
                "prop": "extracts|coordinates|pageprops|info",
                "pageids": "|".join(map(str, batch)),
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
            for data in self.query(params):
                for page in data.get("query", {}).get("pages", []):
                    pid = int(page.get("pageid", -1))
                    cur = merged.setdefault(pid, {})
                    for k, v in page.items():
                        if k == "coordinates":
                            cur.setdefault("coordinates", []).extend(v)
                        elif k not in cur or cur[k] in (None, ""):
                            cur[k] = v
            out.extend(p for pid, p in merged.items() if pid >= 0 and not p.get("missing") and not p.get("invalid"))
        return out
