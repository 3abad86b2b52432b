"""A local MediaWiki replay server (127.0.0.1, free port) serving what tests/data/mediawiki/make_responses.py
generates."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

GENERATOR = Path(__file__).resolve().parents[2] / "data" / "mediawiki" / "make_responses.py"


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_mediawiki_responses", GENERATOR)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Replay:
    url: str
    rules: list[dict[str, Any]]
    pages: dict[str, Any]
    log: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[int, int] = field(default_factory=dict)

    def statuses(self) -> list[int]:
        return [e["status"] for e in self.log]


def _matches(rule: dict[str, Any], params: dict[str, str]) -> bool:
    return all((params.get(k) is None) if v is None else params.get(k) == v for k, v in rule["match"].items())


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            parsed = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(parsed.query))
            with lock:
                idx = next((i for i, r in enumerate(replay.rules) if _matches(r, params)), None)
                if idx is None:
                    resp: dict[str, Any] = {"status": 200, "headers": {},
                                            "body": {"error": {"code": "unmatched", "info": f"no rule for {params}"}}}
                else:
                    n = replay.counters.get(idx, 0)
                    replay.counters[idx] = n + 1
                    seq = replay.rules[idx]["responses"]
                    resp = seq[min(n, len(seq) - 1)]
                replay.log.append({"params": params, "headers": dict(self.headers.items()), "status": resp["status"],
                                   "rule": idx})
            body = resp["body"]
            data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
            self.send_response(resp["status"])
            for k, v in resp["headers"].items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture()
def mediawiki(tmp_path: Path) -> Iterator[Replay]:
    out = load_generator().make_responses(tmp_path / "mediawiki", seed=0)
    rules = json.loads((out / "responses.json").read_text(encoding="utf-8"))
    pages = json.loads((out / "pages.json").read_text(encoding="utf-8"))
    replay = Replay(url="", rules=rules, pages=pages)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(replay))
    replay.url = f"http://127.0.0.1:{server.server_address[1]}/w/api.php"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- a simulated MediaWiki (computes geosearch / prop=info / details from a page set; fault injection) ----------
SIM_AREA = (24.80, 60.10, 25.20, 60.30)  # about 22 x 22 km around Helsinki: several 10 km tiles


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    import math

    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def sim_pages(langs: tuple[str, ...] = ("en", "de"), n: int = 90, seed: int = 0) -> dict[str, dict[int, dict[str, Any]]]:
    """FAKE pages (GEO-ReSeT test data, not Wikipedia content): per language, page id -> page, spread over a
    little more than SIM_AREA (some fall outside it)."""
    import random

    rng = random.Random(seed)
    minlon, minlat, maxlon, maxlat = SIM_AREA
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for li, lang in enumerate(langs):
        pages = {}
        for i in range(n):
            pid = 7_000_000 + li * 100_000 + i
            lon = round(rng.uniform(minlon - 0.03, maxlon + 0.03), 6)
            lat = round(rng.uniform(minlat - 0.015, maxlat + 0.015), 6)
            pages[pid] = {"pageid": pid, "title": f"GEO-ReSeT {lang} test page {i:03d}", "lat": lat, "lon": lon,
                          "lastrevid": 5_000_000 + i, "wikibase_item": f"Q8{i:05d}",
                          "extract": f"TEST DATA ({lang}), not a Wikipedia article: fictional place {i} near Helsinki."}
        out[lang] = pages
    return out


@dataclass
class SimWiki:
    url: str  # with {lang}: http://127.0.0.1:PORT/{lang}/w/api.php
    pages: dict[str, dict[int, dict[str, Any]]]
    log: list[dict[str, Any]] = field(default_factory=list)
    fail_after: int | None = None  # answer 503 to every request after this many

    def api(self, lang: str) -> str:
        return self.url.replace("{lang}", lang)

    def requests(self, kind: str | None = None) -> list[dict[str, str]]:
        def k(p: dict[str, str]) -> str:
            return "geosearch" if p.get("list") == "geosearch" else ("info" if p.get("prop") == "info" else "pages")
        return [e["params"] for e in self.log if e["status"] == 200 and (kind is None or k(e["params"]) == kind)]

    def revise(self, lang: str, pageid: int) -> None:
        p = self.pages[lang][pageid]
        p["lastrevid"] += 1000
        p["extract"] += " Revised."

    def answer(self, lang: str, q: dict[str, str]) -> dict[str, Any]:
        pages = self.pages.get(lang, {})
        if q.get("list") == "geosearch":
            lat, lon = (float(v) for v in q["gscoord"].split("|"))
            radius, limit = float(q["gsradius"]), int(q["gslimit"])
            if not 10 <= radius <= 10000 or not 1 <= limit <= 500:
                return {"error": {"code": "invalid-radius", "info": "bad gsradius/gslimit"}}
            hits = sorted(({"pageid": p["pageid"], "ns": 0, "title": p["title"], "lat": p["lat"], "lon": p["lon"],
                            "dist": round(_haversine_m(lat, lon, p["lat"], p["lon"]), 1), "primary": True}
                           for p in pages.values()), key=lambda h: (h["dist"], h["pageid"]))
            return {"batchcomplete": True, "query": {"geosearch": [h for h in hits if h["dist"] <= radius][:limit]}}
        ids = [int(v) for v in q["pageids"].split("|")]
        if len(ids) > 50:
            return {"error": {"code": "toomanyvalues", "info": "at most 50 page ids"}}
        if q.get("prop") == "info":
            return {"batchcomplete": True, "query": {"pages": [
                {"pageid": i, "ns": 0, "title": pages[i]["title"], "lastrevid": pages[i]["lastrevid"]}
                if i in pages else {"pageid": i, "missing": True} for i in ids]}}
        start = int(q.get("excontinue", 0))
        out = []
        for j, i in enumerate(ids):
            if i not in pages:
                out.append({"pageid": i, "missing": True})
                continue
            p = pages[i]
            d: dict[str, Any] = {"pageid": i, "ns": 0, "title": p["title"]}
            if start == 0:
                d.update({"lastrevid": p["lastrevid"], "fullurl": f"https://{lang}.wikipedia.org/wiki/X{i}",
                          "pageprops": {"wikibase_item": p["wikibase_item"]},
                          "coordinates": [{"lat": p["lat"], "lon": p["lon"], "primary": True, "globe": "earth"}]})
            if start <= j < start + 20:  # TextExtracts: at most 20 intro extracts a call
                d["extract"] = p["extract"]
            out.append(d)
        body: dict[str, Any] = {"query": {"pages": out}}
        if start + 20 < len(ids):
            body["continue"] = {"excontinue": start + 20, "continue": "||coordinates|pageprops|info"}
        else:
            body["batchcomplete"] = True
        return body


def _sim_handler(sim: SimWiki) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            parsed = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(parsed.query))
            lang = parsed.path.strip("/").split("/")[0]
            with lock:
                n_ok = sum(1 for e in sim.log if e["status"] == 200)
                failing = sim.fail_after is not None and n_ok >= sim.fail_after
                status = 503 if failing else 200
                sim.log.append({"params": q, "lang": lang, "status": status,
                                "ua": self.headers.get("User-Agent", "")})
                body = b"<html>503 (test)</html>" if failing else json.dumps(sim.answer(lang, q)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if failing else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def simwiki() -> Iterator[SimWiki]:
    sim = SimWiki(url="", pages=sim_pages())
    for server in _serve(_sim_handler(sim)):
        sim.url = f"http://127.0.0.1:{server.server_address[1]}/{{lang}}/w/api.php"
        yield sim


# -- an Overpass API replay server (interpreter + status; scripted faults) ---------------------------------------
@dataclass
class OverpassReplay:
    url: str
    body: bytes  # the JSON reply of a successful query
    faults: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)  # served first, in order
    status_text: str = "Connected as: 1\nRate limit: 2\n2 slots available now.\nCurrently running queries:\n"
    log: list[dict[str, Any]] = field(default_factory=list)


def _overpass_handler(rep: OverpassReplay) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                rep.log.append({"path": self.path, "ua": self.headers.get("User-Agent", "")})
            if self.path.endswith("/api/status"):
                self._reply(200, {"Content-Type": "text/plain"}, rep.status_text.encode())
            else:
                self._reply(404, {}, b"not found")

        def do_POST(self) -> None:  # noqa: N802
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            query = dict(urllib.parse.parse_qsl(data.decode())).get("data", "")
            with lock:
                fault = rep.faults.pop(0) if rep.faults else None
                rep.log.append({"path": self.path, "query": query, "ua": self.headers.get("User-Agent", ""),
                                "status": fault[0] if fault else 200})
            if fault:
                self._reply(*fault)
            else:
                self._reply(200, {"Content-Type": "application/json"}, rep.body)

    return Handler


@pytest.fixture()
def overpass() -> Iterator[OverpassReplay]:
    rep = OverpassReplay(url="", body=b'{"elements": []}')
    for server in _serve(_overpass_handler(rep)):
        rep.url = f"http://127.0.0.1:{server.server_address[1]}/api/interpreter"
        yield rep
