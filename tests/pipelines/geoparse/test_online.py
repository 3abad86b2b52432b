"""Online resolution through a local server speaking Nominatim's /search JSON: fills, cache, limiter, retries."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from georeset.errors import InputError
from georeset.pipelines.geoparse.online import MinIntervalLimiter, NominatimResolver, resolve_unresolved
from georeset.pipelines.geoparse.parser import Toponym

UA = "georeset-tests/0.1 (https://example.org/georeset; tests@example.org)"
# FAKE gazetteer of the test server (made-up places; the reply shape is Nominatim's format=json with addressdetails)
KNOWN = {"zorblatt bay": (61.5, 23.75, "Zorblatt Bay", "bay", 4242), "kallio": (60.184, 24.95, "Kallio", "suburb", 77),
         "zorblattville": (40.61, -82.51, "Zorblattville", "town", 5151)}


@dataclass
class FakeNominatim:
    url: str = ""
    log: list[dict[str, str]] = field(default_factory=list)
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _handler(srv: FakeNominatim) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            parsed = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(parsed.query))
            with lock:
                srv.log.append({"path": parsed.path, "ua": self.headers.get("User-Agent", ""), **q})
                fault = srv.faults.pop(0) if srv.faults else None
            if fault:
                status, headers, body = fault[0], fault[1], b"busy"
            else:
                hit = KNOWN.get(" ".join(q.get("q", "").split()).casefold())
                out = [] if hit is None else [{
                    "place_id": 1, "licence": "test data", "osm_type": "node", "osm_id": hit[4], "lat": str(hit[0]),
                    "lon": str(hit[1]), "class": "place", "type": hit[3], "importance": 0.41, "name": hit[2],
                    "display_name": f"{hit[2]}, Testland", "address": {"country_code": "fi"},
                    "boundingbox": [str(hit[0] - 0.01), str(hit[0] + 0.01), str(hit[1] - 0.01), str(hit[1] + 0.01)]}]
                status, headers, body = 200, {"Content-Type": "application/json"}, json.dumps(out).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def nominatim() -> Iterator[FakeNominatim]:
    srv = FakeNominatim()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(srv))
    srv.url = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)


class FakeClock:
    """Time that only moves when the limiter sleeps: waits are counted, never timed."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def _resolver(url: str, cache: Path, clock: FakeClock | None = None, **kw: Any) -> NominatimResolver:
    clock = clock or FakeClock()
    return NominatimResolver(user_agent=UA, url=url, cache_path=cache, timeout_s=5,
                             limiter=MinIntervalLimiter(1.0, clock=clock, sleep=clock.sleep), sleep=clock.sleep, **kw)


def _top(surface: str, place_id: str | None = None) -> Toponym:
    lon = lat = None if place_id is None else 0.0
    return Toponym(0, len(surface), surface, "GPE", place_id, 0.9 if place_id else 0.0, lon, lat,
                   "ner:GPE; no gazetteer candidate" if place_id is None else "ner:GPE; test")


def test_fills_only_unresolved_and_records_the_reason(nominatim: FakeNominatim, tmp_path: Path) -> None:
    tops = [_top("Helsinki", "geonames:658225"), _top("Zorblatt  Bay"), _top("Nowhereville")]
    r = _resolver(nominatim.url, tmp_path / "c.sqlite")
    out = resolve_unresolved(tops, r)
    assert out[0] == tops[0]  # resolved offline: untouched, not asked
    assert [e["q"] for e in nominatim.log] == ["Zorblatt  Bay", "Nowhereville"]
    assert all(e["path"] == "/search" and e["ua"].startswith(UA) for e in nominatim.log)
    z = out[1]
    assert (z.place_id, z.lat, z.lon, z.name, z.country_code) == ("nominatim:node/4242", 61.5, 23.75, "Zorblatt Bay",
                                                                   "FI")
    assert "online nominatim (found)" in z.reason and z.reason.startswith("ner:GPE")
    assert out[2].place_id is None and out[2].reason.endswith("online nominatim: not found")


def test_cache_means_no_second_request(nominatim: FakeNominatim, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    tops = [_top("Kallio"), _top("Nowhereville"), _top("kallio")]
    first = resolve_unresolved(tops, _resolver(nominatim.url, cache))
    assert len(nominatim.log) == 2  # "kallio" is the same name as "Kallio"
    again = _resolver(nominatim.url, cache)  # a new resolver, as in a later run
    second = resolve_unresolved(tops, again)
    assert len(nominatim.log) == 2 and again.requests == 0 and again.cache_hits == 3  # not-found is cached too
    assert [(t.place_id, t.lat, t.lon) for t in second] == [(t.place_id, t.lat, t.lon) for t in first]


def test_limiter_spaces_requests(nominatim: FakeNominatim, tmp_path: Path) -> None:
    clock = FakeClock()
    r = _resolver(nominatim.url, tmp_path / "c.sqlite", clock)
    names = ["Kallio", "Zorblatt Bay", "Nowhereville", "Kallio", "Kallio"]
    for n in names:
        r.lookup(n)
    assert len(nominatim.log) == 3 and r.requests == 3
    assert r.limiter.waits == 2 and clock.sleeps == [1.0, 1.0]  # one wait before each request after the first


def test_rate_limit_and_errors_are_retried_not_cached(nominatim: FakeNominatim, tmp_path: Path) -> None:
    clock = FakeClock()
    nominatim.faults = [(429, {"Retry-After": "9"}), (503, {})]
    r = _resolver(nominatim.url, tmp_path / "c.sqlite", clock, max_retries=2)
    result, status = r.lookup("Kallio")
    assert status == "found" and result and result["name"] == "Kallio" and len(nominatim.log) == 3
    assert any(9.0 <= s <= 9.0 * 1.25 for s in clock.sleeps), clock.sleeps  # Retry-After honoured
    nominatim.faults = [(500, {})] * 2
    r2 = _resolver(nominatim.url, tmp_path / "c.sqlite", FakeClock(), max_retries=1)
    assert r2.lookup("Zorblatt Bay") == (None, "failed")
    assert r2.lookup("Zorblatt Bay")[1] == "found"  # the failure was not cached: asked again


def test_refuses_generic_user_agent_and_a_fast_public_server(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--user-agent"):
        NominatimResolver(user_agent="python-requests/2", url="http://127.0.0.1:9", cache_path=tmp_path / "c")
    with pytest.raises(InputError, match="1 request/s"):
        NominatimResolver(user_agent=UA, min_interval_s=0.2, cache_path=tmp_path / "c")
    with pytest.raises(InputError, match="Nominatim URL"):
        NominatimResolver(user_agent=UA, url="ftp://x", cache_path=tmp_path / "c")


def test_parse_cli_online_flag(nominatim: FakeNominatim, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from georeset.cli import app

    text = "Flooding hit the town of Zorblattville in Ohio."
    base = ["geoparse", "parse", text, "--json", "--min-population", "15000"]
    off = CliRunner().invoke(app, base)
    assert off.exit_code == 0, off.output
    offline = json.loads(off.stdout.strip().splitlines()[-1])["toponyms"]
    unresolved = {t["surface"] for t in offline if t["place_id"] is None}
    assert "Zorblattville" in unresolved and not nominatim.log  # off by default: nothing asked
    args = [*base, "--online", "nominatim", "--nominatim-url", nominatim.url, "--user-agent", UA,
            "--online-cache", str(tmp_path / "c.sqlite")]
    on = CliRunner().invoke(app, args)
    assert on.exit_code == 0, on.output
    online = {t["surface"]: t for t in json.loads(on.stdout.strip().splitlines()[-1])["toponyms"]}
    assert online["Zorblattville"]["place_id"] == "nominatim:node/5151" and online["Zorblattville"]["lat"] == 40.61
    assert sorted(e["q"] for e in nominatim.log) == sorted(unresolved)  # only the unresolved were asked
    for t in offline:
        if t["place_id"] is not None:
            assert online[t["surface"]]["place_id"] == t["place_id"]
    bad = CliRunner().invoke(app, [*base, "--online", "nominatim", "--nominatim-url", nominatim.url])
    assert bad.exit_code == 2 and "--user-agent" in bad.output
