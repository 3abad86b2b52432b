"""Fault injection with figures: ``georeset reliability`` runs each scenario against local servers on 127.0.0.1
and a scratch catalogue, and returns one summary (faults injected, runs, rows lost, duplicates).

Scenarios (each reuses the project's own clients and stages):

``mediawiki_transient``  429 with ``Retry-After``, 500, 503, a timeout, a ``maxlag`` error, a connection dropped
                         halfway through the body and a 502 on the first calls of a MediaWiki replay server;
                         ``harvest_wikipedia`` (wikipedia-api underneath) must retry each one and return every page.
``mediawiki_bad_json``   truncated and invalid (HTML) JSON answered with HTTP 200; the client retries a truncated JSON
                         body itself and reports an HTML page as ``ServiceUnavailableError`` (a wrong endpoint), the
                         stage is re-run and must then stage every page, with nothing half-written in between.
``overpass_faults``      429 with ``Retry-After``, 503, 504, truncated JSON and a ``runtime error`` remark from an
                         Overpass server: the client retries each and every feature arrives; then an HTML page
                         (a wrong endpoint) fails the stage with a clear error, the retried stage completes and a
                         re-run merges nothing new.
``stac_down``            the STAC API is a closed port, then a server answering 503: ``fetch_patches`` must fail
                         with an error naming the API and leave the catalogue unchanged.
``imagery_faults``       a truncated COG and a missing asset in the tiny sample world: the failures are recorded with
                         their reason, the rest is fetched; after repair the re-run fills the gap (no row lost).
``merge_killed``         a merge process SIGKILLed between its INSERT and its COMMIT: counts unchanged, staged files
                         kept, the retried merge completes, a second merge adds nothing.
``rerun_idempotent``     harvest (Wikipedia) and imagery stages run twice over the same inputs: no row count
                         changes, no duplicate key.

``rows_lost`` sums expected-minus-present rows after each scenario's recovery; ``duplicates`` sums
``count(*) - count(DISTINCT key)`` over the catalogue tables touched. Both must be 0.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from georeset.errors import GeoResetError

__all__ = ["MediaWikiFaultServer", "run_reliability", "SCENARIOS", "duplicates"]

UA = "georeset-reliability/1.0 (https://example.org/georeset; reliability@example.org)"
BBOX = (24.936, 60.165, 24.952, 60.178)  # inside the tiny sample world
KEYS = {"documents": "doc_id", "scenes": "scene_id", "patches": "patch_id", "pairs": "pair_id",
        "toponyms": "toponym_id", "places": "place_id", "embeddings": "owner_kind, owner_id, run_id"}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def duplicates(con: Any, tables: tuple[str, ...] = ("documents", "scenes", "patches", "pairs")) -> int:
    """Rows beyond the first per natural key, summed over ``tables`` (0 in a healthy catalogue)."""
    total = 0
    for t in tables:
        n = con.execute(f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {KEYS[t]} FROM {t})) FROM {t}"
                        ).fetchone()[0]
        total += int(n)
    return total


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# -- local servers that misbehave on purpose --------------------------------------------------------------------------
class _FaultServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) whose ``faults`` are consumed one per request."""

    path = "/"

    def __init__(self, faults: list[tuple[Any, ...]] | None = None) -> None:
        self.faults = list(faults or [])
        self.requests = 0
        self.injected = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class MediaWikiFaultServer(_FaultServer):
    """``api.php`` serving ``n_pages`` geotagged pages.

    A fault is ``("status", code, headers)``, ``("body", text)`` (HTTP 200 with a broken body),
    ``("api_error", code, headers)`` (HTTP 200 with a MediaWiki ``error`` object, e.g. ``maxlag``), ``("cut",)``
    (the connection drops halfway through the body) or
    ``("sleep", seconds)`` (answers late, after the client's timeout).
    """

    path = "/w/api.php"

    def __init__(self, n_pages: int = 12, faults: list[tuple[Any, ...]] | None = None) -> None:
        self.n_pages = n_pages
        super().__init__(faults)

    def page(self, i: int) -> dict[str, Any]:
        lon = BBOX[0] + (BBOX[2] - BBOX[0]) * (i + 0.5) / self.n_pages
        lat = BBOX[1] + (BBOX[3] - BBOX[1]) * ((i * 7) % self.n_pages + 0.5) / self.n_pages
        return {"pageid": 1000 + i, "ns": 0, "title": f"Reliability page {i}", "lat": lat, "lon": lon}

    def answer(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("list") == "geosearch":
            return {"batchcomplete": True, "query": {"geosearch": [
                {**self.page(i), "dist": 1.0, "primary": True} for i in range(self.n_pages)]}}
        ids = [int(x) for x in params.get("pageids", "").split("|") if x]
        pages = []
        for pid in ids:
            p = self.page(pid - 1000)
            pages.append({"pageid": pid, "ns": 0, "title": p["title"],
                          "extract": f"{p['title']} is a place near the harbour of Helsinki used in fault tests.",
                          "coordinates": [{"lat": p["lat"], "lon": p["lon"], "primary": True, "globe": "earth"}],
                          "fullurl": f"https://en.wikipedia.org/?curid={pid}", "lastrevid": 1,
                          "pageprops": {"wikibase_item": f"Q{pid}"}})
        return {"batchcomplete": True, "query": {"pages": pages}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                with srv._lock:
                    srv.requests += 1
                    fault = srv.faults.pop(0) if srv.faults else None
                    if fault is not None:
                        srv.injected += 1
                status, headers, body = 200, {"Content-Type": "application/json"}, json.dumps(srv.answer(params))
                if fault is not None and fault[0] == "status":
                    status, headers, body = fault[1], {**headers, **fault[2]}, '{"error": "injected"}'
                elif fault is not None and fault[0] == "body":
                    body = fault[1]
                cut = 0
                if fault is not None and fault[0] == "cut":  # the connection drops halfway through the body
                    cut = len(body) // 2
                elif fault is not None and fault[0] == "api_error":  # HTTP 200 with an error object (maxlag ...)
                    headers = {**headers, **fault[2]}
                    body = json.dumps({"error": {"code": fault[1], "info": f"{fault[1]} (injected)"}})
                elif fault is not None and fault[0] == "sleep":
                    time.sleep(fault[1])
                data = body.encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:cut] if cut else data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if cut:
                    self.close_connection = True

        return Handler


@contextmanager
def _status_server(status: int) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)


def _closed_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client(url: str) -> Any:
    from georeset.pipelines.harvest.mediawiki import MediaWikiClient

    return MediaWikiClient(url, user_agent=UA, timeout_s=0.5, max_retries=8, retry_wait_s=0.01)


def _harvest(url: str, client: Any = None) -> list[dict[str, Any]]:
    from georeset.pipelines.harvest.wikipedia import harvest_wikipedia

    return harvest_wikipedia(bbox=BBOX, user_agent=UA, retrieved_at=_now(), client=client or _client(url))


# -- scenarios ------------------------------------------------------------------------------------------------------
def scenario_mediawiki_transient(root: Path) -> dict[str, Any]:
    faults = [("status", 429, {"Retry-After": "0"}), ("status", 500, {}), ("status", 503, {"Retry-After": "0"}),
              ("sleep", 1.0), ("api_error", "maxlag", {"Retry-After": "0"}), ("cut",), ("status", 502, {})]
    with MediaWikiFaultServer(n_pages=12, faults=faults) as srv:
        client = _client(srv.url)
        rows = _harvest(srv.url, client)
        injected, expected = srv.injected, srv.n_pages
    return {"faults": injected, "runs": 1, "rows_lost": expected - len({r["doc_id"] for r in rows}),
            "duplicates": len(rows) - len({r["doc_id"] for r in rows}), "retries": client.retries,
            "ok": len(rows) == expected and client.retries == injected}


def scenario_mediawiki_bad_json(root: Path) -> dict[str, Any]:
    from georeset.data_catalog import merge, open_catalog, stage
    from georeset.errors import ServiceUnavailableError

    staging = root / "staging"
    con = open_catalog(str(root / "catalog.duckdb"))
    errors, runs, injected = [], 0, 0
    try:
        with MediaWikiFaultServer(n_pages=8, faults=[("body", '{"batchcomplete": true, "query": {"geos'),
                                                     ("body", "<html><body>502 Bad Gateway</body></html>")]) as srv:
            rows: list[dict[str, Any]] = []
            for _ in range(4):  # the stage is retried as a whole (what Airflow's task retries do)
                runs += 1
                try:
                    rows = _harvest(srv.url)
                    break
                except ServiceUnavailableError as exc:
                    errors.append(exc.message)
                    assert _count(con, "documents") == 0  # nothing half-written
            injected = srv.injected
            stage(rows, table="documents", staging_dir=staging, name="wikipedia-reliability")
            merge(con, table="documents", staging_dir=staging)
            lost = srv.n_pages - _count(con, "documents")
            dup = duplicates(con, ("documents",))
    finally:
        con.close()
    return {"faults": injected, "runs": runs, "rows_lost": lost, "duplicates": dup, "errors_reported": errors,
            "ok": lost == 0 and len(errors) == 1}  # only the HTML page surfaces; the truncation is retried


class OverpassFaultServer(_FaultServer):
    """``/api/interpreter`` (POST) and ``/api/status`` serving ``n`` named nodes inside ``BBOX``; faults are
    consumed one per interpreter request: ``("status", code, headers)`` or ``("body", text)`` (HTTP 200)."""

    path = "/api/interpreter"

    def __init__(self, n: int = 10, faults: list[tuple[Any, ...]] | None = None) -> None:
        self.n = n
        super().__init__(faults)

    def body(self) -> bytes:
        els = [{"type": "node", "id": 5000 + i, "lat": BBOX[1] + (BBOX[3] - BBOX[1]) * (i + 0.5) / self.n,
                "lon": BBOX[0] + (BBOX[2] - BBOX[0]) * ((i * 3) % self.n + 0.5) / self.n,
                "tags": {"name": f"Reliability cafe {i}", "amenity": "cafe"}} for i in range(self.n)]
        return json.dumps({"version": 0.6, "osm3s": {"timestamp_osm_base": "2026-11-27T00:00:00Z"},
                           "elements": els}).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None,
                      ctype: str = "application/json") -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._send(200, b"Connected as: 1\nRate limit: 2\n2 slots available now.\n", ctype="text/plain")

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with srv._lock:
                    srv.requests += 1
                    fault = srv.faults.pop(0) if srv.faults else None
                    srv.injected += fault is not None
                if fault is None:
                    self._send(200, srv.body())
                elif fault[0] == "status":
                    self._send(fault[1], b"busy", fault[2], ctype="text/plain")
                else:
                    self._send(200, fault[1].encode(), ctype="text/html" if fault[1].startswith("<") else
                               "application/json")

        return Handler


def scenario_overpass_faults(root: Path) -> dict[str, Any]:
    from georeset.data_catalog import merge, open_catalog, stage
    from georeset.errors import ServiceUnavailableError
    from georeset.pipelines.harvest.overpass import OverpassClient, harvest_overpass

    faults = [("status", 429, {"Retry-After": "0"}), ("status", 503, {}), ("status", 504, {}),
              ("body", '{"version": 0.6, "elements": [{"type": "no'),
              ("body", '{"version": 0.6, "elements": [], "remark": "runtime error: Query timed out"}'),
              ("body", "<html><body>404 Not Found</body></html>")]
    staging = root / "staging"
    con = open_catalog(str(root / "catalog.duckdb"))
    errors: list[str] = []
    runs, sleeps = 0, list[float]()
    try:
        with OverpassFaultServer(n=10, faults=faults) as srv:
            def run() -> list[dict[str, Any]]:
                client = OverpassClient(srv.url, user_agent=UA, max_retries=6, backoff_s=0.01, min_interval_s=0.0,
                                        sleep=sleeps.append)
                return harvest_overpass(bbox=BBOX, user_agent=UA, retrieved_at=_now(), client=client)[0]

            rows: list[dict[str, Any]] = []
            for _ in range(3):  # the stage is retried as a whole (Airflow task retries)
                runs += 1
                try:
                    rows = run()
                    break
                except ServiceUnavailableError as exc:
                    errors.append(exc.message)
                    assert _count(con, "documents") == 0  # nothing half-written
            stage(rows, table="documents", staging_dir=staging, name="overpass-reliability")
            merge(con, table="documents", staging_dir=staging)
            first = _count(con, "documents")
            runs += 1  # a re-run over the same inputs adds nothing
            stage(run(), table="documents", staging_dir=staging, name="overpass-reliability")
            again = merge(con, table="documents", staging_dir=staging)
            injected = srv.injected
            lost = srv.n - _count(con, "documents")
            dup = duplicates(con, ("documents",))
    finally:
        con.close()
    return {"faults": injected, "runs": runs, "rows_lost": lost, "duplicates": dup, "errors_reported": errors,
            "retries_slept": len(sleeps),
            "ok": lost == 0 and dup == 0 and len(errors) == 1 and first == 10 and again.inserted == 0
            and again.updated == 0}


def _fetch(con: Any, url: str, root: Path, locations: list[tuple[float, float]], **kw: Any) -> Any:
    from georeset.pipelines.imagery import fetch_patches

    return fetch_patches(con, stac_url=url, locations=locations, collections=["sentinel-2-l2a", "sentinel-1-grd"],
                         datetime="2024-06-01T00:00:00Z/2024-07-31T23:59:59Z", staging_dir=root / "staging",
                         data_dir=root / "data", gsd=10.0, size=16, progress=False, search_cache=False, **kw)


def scenario_stac_down(root: Path) -> dict[str, Any]:
    from georeset.data_catalog import open_catalog

    con = open_catalog(str(root / "catalog.duckdb"))
    errors: list[str | None] = []
    try:
        before = {t: _count(con, t) for t in ("scenes", "patches")}
        targets = [f"http://127.0.0.1:{_closed_port()}"]
        with _status_server(503) as url503:
            targets.append(url503)
            for url in targets:
                try:
                    _fetch(con, url, root, [(24.94, 60.17)])
                    errors.append(None)
                except GeoResetError as exc:
                    errors.append(f"{type(exc).__name__}: {exc.message}")
                except Exception as exc:  # noqa: BLE001 - an unclear error is itself a finding
                    errors.append(f"UNCLEAR {type(exc).__name__}: {exc}")
        after = {t: _count(con, t) for t in ("scenes", "patches")}
        staged = list((root / "staging").rglob("*.parquet")) if (root / "staging").exists() else []
    finally:
        con.close()
    clear = all(e is not None and not e.startswith("UNCLEAR") for e in errors)
    return {"faults": len(targets), "runs": len(targets), "rows_lost": 0, "duplicates": 0, "errors_reported": errors,
            "catalog_unchanged": before == after and not staged, "ok": clear and before == after and not staged}


def _tiny_world(root: Path) -> Any:
    from georeset.pipelines.sample_world import build_sample_world

    return build_sample_world(root / "world", scale="tiny", progress=False)


def _locations(world: Any, n: int = 6) -> list[tuple[float, float]]:
    minx, miny, maxx, maxy = world.bbox
    return [(minx + (maxx - minx) * (i + 0.5) / n, miny + (maxy - miny) * ((i * 5) % n + 0.5) / n) for i in range(n)]


def scenario_imagery_faults(root: Path) -> dict[str, Any]:
    import warnings

    from georeset.data_catalog import merge, open_catalog
    from georeset.pipelines.sample_world import serve_stac

    world = _tiny_world(root)
    cogs = Path(world.root) / "cogs"
    s2 = sorted((cogs / "sentinel-2-l2a").iterdir())
    s1 = sorted((cogs / "sentinel-1-grd").iterdir())
    broken = [s2[0] / "B04.tif", *(d / "vv.tif" for d in s1)]  # one truncated COG, VV missing everywhere
    backup = root / "backup"
    backup.mkdir()
    for i, p in enumerate(broken):
        shutil.copy2(p, backup / f"{i}.tif")
    data = broken[0].read_bytes()
    broken[0].write_bytes(data[: len(data) * 2 // 3])  # truncated COG: header intact, tiles cut
    for p in broken[1:]:
        p.unlink()  # missing asset
    locs = _locations(world)
    clean = root / "clean"
    con = open_catalog(str(root / "catalog.duckdb"))
    con_clean = open_catalog(str(clean / "catalog.duckdb"))
    try:
        with serve_stac(world.stac_dir) as url, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res1 = _fetch(con, url, root, locs)
            for t in ("scenes", "patches"):
                merge(con, table=t, staging_dir=root / "staging")
            first = _count(con, "patches")
            for i, p in enumerate(broken):  # repair, then re-run: the gap is filled, nothing duplicated
                shutil.copy2(backup / f"{i}.tif", p)
            res2 = _fetch(con, url, root, locs)
            for t in ("scenes", "patches"):
                merge(con, table=t, staging_dir=root / "staging")
            res_clean = _fetch(con_clean, url, clean, locs)  # reference: the same run with no fault
            for t in ("scenes", "patches"):
                merge(con_clean, table=t, staging_dir=clean / "staging")
        expected_ids = {r[0] for r in con_clean.execute("SELECT patch_id FROM patches").fetchall()}
        got_ids = {r[0] for r in con.execute("SELECT patch_id FROM patches").fetchall()}
        got_sensor_cells = {r for r in con.execute("SELECT sensor, lon, lat FROM patches").fetchall()}
        exp_sensor_cells = {r for r in con_clean.execute("SELECT sensor, lon, lat FROM patches").fetchall()}
        dup = duplicates(con, ("scenes", "patches"))
    finally:
        con.close()
        con_clean.close()
    kinds = sorted({f.kind for f in res1.failures})
    lost = len(exp_sensor_cells - got_sensor_cells)
    return {"faults": len(broken), "runs": 2, "rows_lost": lost, "duplicates": dup,
            "failures_recorded": len(res1.failures), "failure_kinds": kinds,
            "reasons": sorted({f.reason[:90] for f in res1.failures})[:4],
            "patches_first_run": first, "patches_after_repair": len(got_ids), "patches_clean_run": len(expected_ids),
            "rerun_read": res2.patches_read, "rerun_skipped": res2.patches_skipped,
            "clean_read": res_clean.patches_read,
            "ok": lost == 0 and dup == 0 and {"corrupt", "not_found"} <= set(kinds) and len(got_ids) > first}


_KILL_CHILD = r"""
import sys, time
from pathlib import Path
from georeset.data_catalog import merge, open_catalog
db, staging, marker = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
con = open_catalog(db)
class Slow:
    def __init__(self, con): self._con = con
    def execute(self, sql, *a):
        if sql.strip().upper() == "COMMIT":
            marker.write_text("in transaction")
            time.sleep(120)
        return self._con.execute(sql, *a)
merge(Slow(con), table="documents", staging_dir=staging)
"""


def scenario_merge_killed(root: Path, n_rows: int = 20000) -> dict[str, Any]:
    from georeset.data_catalog import merge, open_catalog, stage
    from georeset.pipelines.harvest._common import document_row

    db, staging = root / "catalog.duckdb", root / "staging"
    retrieved = _now()
    base = [document_row(source="file", source_id=f"base/{i}", title=f"base {i}", text=f"base document {i}",
                         lon=24.9 + i * 1e-5, lat=60.17, licence="CC0-1.0", retrieved_at=retrieved) for i in range(100)]
    con = open_catalog(str(db))
    stage(base, table="documents", staging_dir=staging, name="base")
    merge(con, table="documents", staging_dir=staging)
    before = _count(con, "documents")
    con.close()
    new = [document_row(source="file", source_id=f"new/{i}", title=f"new {i}", text=f"new document {i}",
                        lon=24.9 + (i % 1000) * 1e-5, lat=60.18, licence="CC0-1.0", retrieved_at=retrieved)
           for i in range(n_rows)]
    stage(new, table="documents", staging_dir=staging, name="new")
    marker = root / "in_transaction"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_CHILD, str(db), str(staging), str(marker)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed_in_tx = marker.exists() and proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    err = proc.stderr.read().decode()[-400:] if proc.stderr else ""
    con = open_catalog(str(db))
    try:
        after_kill = _count(con, "documents")
        staged_kept = len(list((staging / "documents").glob("*.parquet")))
        r1 = merge(con, table="documents", staging_dir=staging)
        after_retry = _count(con, "documents")
        stage(new, table="documents", staging_dir=staging, name="new")  # the same input once more
        r2 = merge(con, table="documents", staging_dir=staging)
        after_again = _count(con, "documents")
        dup = duplicates(con, ("documents",))
    finally:
        con.close()
    expected = before + n_rows
    return {"faults": 1, "runs": 3, "rows_lost": max(0, expected - after_retry), "duplicates": dup,
            "killed_inside_transaction": killed_in_tx, "count_before": before, "count_after_kill": after_kill,
            "staged_files_kept": staged_kept, "retry_inserted": r1.inserted, "second_merge_inserted": r2.inserted,
            "count_after_retry": after_retry, "count_after_second_merge": after_again,
            "child_stderr": err if not killed_in_tx else "",
            "ok": killed_in_tx and after_kill == before and after_retry == expected and after_again == expected
            and r2.inserted == 0 and dup == 0}


def scenario_rerun_idempotent(root: Path) -> dict[str, Any]:
    from georeset import stages
    from georeset.data_catalog import open_catalog
    from georeset.pipelines.sample_world import serve_stac
    from georeset.workspace import Workspace

    ws = Workspace.at(root / "ws")
    world = _tiny_world(root)
    counts: list[dict[str, int]] = []
    with MediaWikiFaultServer(n_pages=10) as srv, serve_stac(world.stac_dir) as url:
        for _ in range(2):
            stages.harvest_wikipedia_stage(ws, api_url=srv.url, bbox=BBOX, user_agent=UA)
            stages.imagery_stage(ws, stac_url=url, datetime="2024-06-01T00:00:00Z/2024-07-31T23:59:59Z", gsd=10.0,
                                 size=16, max_cells=20, progress=False)
            stages.pair_stage(ws)
            con = open_catalog(str(ws.db_path))
            try:
                counts.append({t: _count(con, t) for t in ("documents", "scenes", "patches", "pairs")})
                dup = duplicates(con)
            finally:
                con.close()
    changed = {t: counts[1][t] - counts[0][t] for t in counts[0] if counts[1][t] != counts[0][t]}
    return {"faults": 0, "runs": 2, "rows_lost": sum(max(0, -v) for v in changed.values()), "duplicates": dup,
            "counts": counts[0], "changed_on_rerun": changed, "ok": not changed and dup == 0 and counts[0]["patches"] > 0}


SCENARIOS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "mediawiki_transient": scenario_mediawiki_transient,
    "mediawiki_bad_json": scenario_mediawiki_bad_json,
    "overpass_faults": scenario_overpass_faults,
    "stac_down": scenario_stac_down,
    "imagery_faults": scenario_imagery_faults,
    "merge_killed": scenario_merge_killed,
    "rerun_idempotent": scenario_rerun_idempotent,
}
SLOW = ("imagery_faults", "rerun_idempotent")


def run_reliability(*, workdir: Path | None = None, quick: bool = False, only: list[str] | None = None
                    ) -> dict[str, Any]:
    """Run the scenarios; returns ``{"faults_injected", "runs", "rows_lost", "duplicates", "unexpected",
    "scenarios": {...}, "seconds"}``. A scenario that raises is recorded as unexpected (not re-raised)."""
    t0 = time.perf_counter()
    names = only or [n for n in SCENARIOS if not (quick and n in SLOW)]
    own = workdir is None
    base = Path(tempfile.mkdtemp(prefix="georeset-reliability-")) if own else Path(workdir)  # type: ignore[arg-type]
    base.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    try:
        for name in names:
            d = base / name
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            t = time.perf_counter()
            try:
                res = SCENARIOS[name](d)
            except Exception as exc:  # noqa: BLE001 - reported in the summary
                res = {"faults": 0, "runs": 0, "rows_lost": 0, "duplicates": 0, "ok": False,
                       "error": f"{type(exc).__name__}: {exc}"}
            res["seconds"] = round(time.perf_counter() - t, 2)
            results[name] = res
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)
    return {
        "faults_injected": sum(r["faults"] for r in results.values()),
        "runs": sum(r["runs"] for r in results.values()),
        "rows_lost": sum(r["rows_lost"] for r in results.values()),
        "duplicates": sum(r["duplicates"] for r in results.values()),
        "unexpected": sorted(n for n, r in results.items() if not r["ok"]),
        "scenarios": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }
