"""What `search_items` sends: the cloud limit per optical collection as CQL2 `filter` when the API conforms to
Filter (SAR collections searched without it), `sortby` when it conforms to Sort, client-side otherwise (rustac
serve conforms to neither), and a warning when `max_items` truncates."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from georeset.pipelines.imagery.stac import LAST_SEARCH, SearchTruncatedWarning, search_items

FILTER_URIS = ["http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
               "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter", "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
               "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2", "https://api.stacspec.org/v1.0.0/item-search#sort"]  # fmt: skip


@contextlib.contextmanager
def conformant_front(upstream: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A front for ``upstream`` (rustac) that declares Filter / CQL2 / Sort conformance and records each POST /search
    body; it forwards the search without filter / sortby (which rustac would not apply)."""
    bodies: list[dict[str, Any]] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, data: bytes) -> None:
            data = data.replace(upstream.encode(), f"http://127.0.0.1:{srv.server_address[1]}".encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            with urllib.request.urlopen(upstream + self.path) as r:
                body = json.loads(r.read())
            if self.path.split("?")[0] in {"/", "", "/conformance"}:
                body["conformsTo"] = body.get("conformsTo", []) + FILTER_URIS
            self._reply(json.dumps(body).encode())

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            fwd = {k: v for k, v in body.items() if k not in {"filter", "filter-lang", "sortby"}}
            req = urllib.request.Request(upstream + self.path, data=json.dumps(fwd).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(req) as r:
                self._reply(r.read())

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", bodies
    finally:
        srv.shutdown()
        srv.server_close()


def test_cloud_filter_sent_per_optical_collection_as_cql2(stac_url: str) -> None:
    with conformant_front(stac_url) as (url, bodies):
        items = search_items(url, collections=["sentinel-2-l2a", "sentinel-1-grd"], max_cloud=10,
                             sortby="-eo:cloud_cover,datetime")  # fmt: skip
    by_coll = {tuple(b["collections"]): b for b in bodies}
    s2, s1 = by_coll[("sentinel-2-l2a",)], by_coll[("sentinel-1-grd",)]
    assert s2["filter"] == {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10.0]}
    assert s2["filter-lang"] == "cql2-json" and "query" not in s2
    assert "filter" not in s1 and "query" not in s1  # SAR items have no cloud cover
    assert s2["sortby"] == [{"field": "properties.eo:cloud_cover", "direction": "desc"},
                            {"field": "properties.datetime", "direction": "asc"}]  # fmt: skip
    # the front did not filter: the client-side filter still keeps only the clear S2 scene (and S1)
    assert sorted(i.id for i in items) == ["S1A_FIXTURE_20240605", "S2B_FIXTURE_20240620"]


def test_non_conformant_api_filters_and_sorts_client_side(stac_url: str) -> None:
    items = search_items(stac_url, collections=["sentinel-2-l2a", "sentinel-1-grd"], max_cloud=60, sortby="-eo:cloud_cover")
    assert all("filter" not in s and "query" not in s and "sortby" not in s for s in LAST_SEARCH)
    assert [s["collections"] for s in LAST_SEARCH] == [["sentinel-2-l2a"], ["sentinel-1-grd"]]
    # descending cloud cover, items without one (S1) last
    assert [i.id for i in items] == ["S2A_FIXTURE_20240601", "S2B_FIXTURE_20240620", "S1A_FIXTURE_20240605"]
    asc = search_items(stac_url, collections=["sentinel-2-l2a"], sortby="datetime")
    assert [i.id for i in asc] == ["S2A_FIXTURE_20240601", "S2B_FIXTURE_20240620"]


def test_max_items_truncation_warns(stac_url: str) -> None:
    with pytest.warns(SearchTruncatedWarning, match="max_items=1"):
        items = search_items(stac_url, collections=["sentinel-2-l2a"], max_items=1)
    assert len(items) == 1
