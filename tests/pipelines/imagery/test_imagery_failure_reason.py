"""A failed asset is recorded with the reason the server or file gave, never with digits of its own href.

Real GDAL reads (``/vsicurl/``) against a local HTTP server: an asset of 2024-04-03 (``..._20240403_...``) that
is corrupt is corrupt, not "forbidden"; one whose tile name has ``0404`` is not "not found"."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import rasterio

from georeset.pipelines.imagery.read import failure_reason


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/<status>/...`` answers that status; ``/200/...`` answers 64 bytes that are no raster."""

    def do_HEAD(self) -> None:
        status = int(self.path.split("/")[1])
        self.send_response(status)
        self.send_header("Content-Length", "64" if status == 200 else "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.do_HEAD()
        if self.path.startswith("/200/"):
            self.wfile.write(b"x" * 64)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def _reason(url: str) -> str:
    with rasterio.Env(GDAL_HTTP_MAX_RETRY=0, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        with pytest.raises(rasterio.errors.RasterioIOError) as info:
            rasterio.open(url)
    return failure_reason(info.value)


@pytest.mark.parametrize("name", ["S2B_T10SEG_20240403_0_L2A/B04.tif", "S2B_T10SEG_20240404_0_L2A/B04.tif",
                                  "S2B_T10SEG_20240401_0_L2A/B04.tif"])
@pytest.mark.parametrize(("status", "reason"), [(200, "corrupt"), (500, "read_error"), (404, "not_found"),
                                                (403, "forbidden"), (401, "forbidden")])
def test_reason_is_the_answer_not_the_href(server: str, name: str, status: int, reason: str) -> None:
    assert _reason(f"{server}/{status}/{name}") == reason


@pytest.mark.parametrize(("message", "reason"), [
    ("HTTP response code: 404", "not_found"), ("(HTTP 403 Forbidden)", "forbidden"), ("HTTP 404, retry", "not_found"),
    ("Operation timed out after 30000 ms reading https://h:40377/x_20240403.tif", "timeout"),
    ("Could not connect to server: https://h:40401/T04/404/x.tif", "read_error"),
])
def test_reason_of_a_message(message: str, reason: str) -> None:
    assert failure_reason(OSError(message)) == reason
