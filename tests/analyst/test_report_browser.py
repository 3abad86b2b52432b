"""The report opens in a real headless browser (Debian's chromium, driven over the DevTools protocol): the map
renders, zooms, a footprint click shows its thumbnail and texts, no console error, and no request leaves the file.

Skipped when chromium is not installed (`.ci/run` installs it: apt-get install chromium).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from georeset.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


class DevTools:
    """A minimal Chrome DevTools Protocol client over the page's websocket."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == my_id:
                assert "error" not in msg, msg
                return dict(msg.get("result", {}))
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def js(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture()
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    profile = tmp_path / "chromium-profile"
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "--remote-allow-origins=*", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 90
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, "chromium exited at start"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        page = next(t for t in targets if t["type"] == "page")
        dt = DevTools(page["webSocketDebuggerUrl"])
        try:
            yield dt
        finally:
            dt.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_report_map_renders_offline_in_chromium(embedded, browser: DevTools) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(app, ["report", "--workdir", str(embedded.root)])
    assert res.exit_code == 0, res.output
    page = (embedded.root / "report.html").resolve()
    url = page.as_uri()
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=url)
    browser.wait_event("Page.loadEventFired")

    rendered = browser.js("document.getElementById('georeset-map').dataset.rendered")
    assert int(rendered) > 0
    n_paths = browser.js("document.querySelectorAll('#georeset-map path.leaflet-interactive').length")
    assert n_paths >= 6 + 6  # 6 footprints + 6 pair links (the documents are circle markers, also paths)
    zoom0 = browser.js("georesetMap.getZoom()")
    browser.js("new Promise(r => { georesetMap.once('zoomend', () => r(1)); georesetMap.zoomIn(1, {animate: false}); })")
    assert browser.js("georesetMap.getZoom()") == zoom0 + 1
    # click a footprint: its popup shows the thumbnail and the paired text
    popup = browser.js("""new Promise(r => {
        let target = null;
        georesetMap.eachLayer(l => { if (!target && l instanceof L.Polygon) target = l; });
        georesetMap.once('popupopen', e => r(e.popup.getContent()));
        target.fire('click', {latlng: target.getBounds().getCenter()});
    })""")
    assert "data:image/png;base64," in popup and "<li>" in popup and "point_in_patch" in popup
    assert browser.js("document.querySelector('.leaflet-popup-content img.thumb').naturalWidth") > 0
    layers = browser.js("[...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
                        ".map(l => l.textContent.trim())")
    assert {"documents", "S2 patches", "S1 patches", "pairs: point_in_patch"} <= set(layers)

    time.sleep(0.5)
    browser.call("Runtime.evaluate", expression="1")  # drain pending events
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning"))]
    assert errors == []
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert url in requests
    leaving = [u for u in requests if u != url and not u.startswith("data:")]
    assert leaving == []
    failed = [e for e in browser.events if e.get("method") == "Network.loadingFailed"]
    assert failed == []
