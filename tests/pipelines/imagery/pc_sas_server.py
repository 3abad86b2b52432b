"""A local stand-in for the Planetary Computer's SAS token API and its Azure Blob Storage, on 127.0.0.1.

- ``GET /api/sas/v1/token/<account>/<container>``: ``{"msft:expiry": ..., "token": "st=..&se=..&sp=rl&sv=..&sr=c&sig=.."}``
  (the response the ``planetary-computer`` package parses; point it here with ``PC_SDK_SAS_URL``).
- Any ``http://<account>.blob.core.windows.net/<container>/<path>?<token>`` request sent through it as an HTTP proxy
  (GDAL: ``GDAL_HTTP_PROXY``): served from ``<root>/<host>/<container>/<path>`` with byte ranges, 403 unless the query
  carries the token issued for that container (as a container SAS on Azure would).

Every request is recorded in ``server.log`` as (kind, account, container, path, signed).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

__all__ = ["sas_server"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.tokens: dict[tuple[str, str], str] = {}
        self.log: list[tuple[str, str, str, str, bool]] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._handle(body=True)

    def _send(self, code: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _handle(self, body: bool) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/api/sas/v1/token/"):
            account, container = url.path.rstrip("/").split("/")[-2:]
            sig = self.server.tokens.setdefault((account, container), secrets.token_hex(12))
            now = datetime.now(UTC)
            expiry = now + timedelta(hours=1)
            token = (f"st={quote(now.strftime('%Y-%m-%dT%H:%M:%SZ'))}&se={quote(expiry.strftime('%Y-%m-%dT%H:%M:%SZ'))}"
                     f"&sp=rl&sv=2021-06-08&sr=c&skoid=local&sig={sig}")  # fmt: skip
            self.server.log.append(("token", account, container, "", False))
            payload = {"msft:expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token}
            self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, body)
            return
        host = url.netloc or self.headers.get("Host", "")
        account = host.split(".")[0]
        container, _, rest = url.path.lstrip("/").partition("/")
        signed = parse_qs(url.query).get("sig", [""])[0] == self.server.tokens.get((account, container))
        self.server.log.append(("blob", account, container, rest, signed))
        if not host.endswith(".blob.core.windows.net") or not signed:
            self._send(403, b"AuthenticationFailed", {"Content-Type": "text/plain"}, body)
            return
        path = self.server.root / host / container / rest
        if not path.is_file():
            self._send(404, b"BlobNotFound", {"Content-Type": "text/plain"}, body)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
            self._send(206, data[start : end + 1], {"Content-Range": f"bytes {start}-{end}/{len(data)}",
                                                     "Accept-Ranges": "bytes", "Content-Type": "image/tiff"}, body)  # fmt: skip
            return
        self._send(200, data, {"Accept-Ranges": "bytes", "Content-Type": "image/tiff"}, body)


@contextlib.contextmanager
def sas_server(root: Path) -> Iterator[_Server]:
    """Serve blobs under ``root`` (``root/<account>.blob.core.windows.net/<container>/...``); ``server.url`` is the
    base URL (token endpoint: ``server.url + '/api/sas/v1/token'``; proxy: ``127.0.0.1:<port>``)."""
    srv = _Server(Path(root))
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
