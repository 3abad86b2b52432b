"""A local server speaking the slice of the Kubernetes REST API the training launcher uses (Services, Jobs, their
status, pods by label, pod logs, deletes), on 127.0.0.1, with a bearer token. A Job succeeds after ``ticks``
status reads, or fails when its name contains ``fail``."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["FakeKube", "kube_api"]
TOKEN = "test-token"


class FakeKube:
    def __init__(self, ticks: int = 2) -> None:
        self.ticks = ticks
        self.services: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.reads: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []
        self.url = ""

    def status(self, name: str) -> dict[str, Any]:
        job = self.jobs[name]
        self.reads[name] = self.reads.get(name, 0) + 1
        n = int(job["spec"]["completions"])
        if self.reads[name] < self.ticks:
            return {"active": n}
        if "fail" in name:
            return {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}
        return {"succeeded": n, "conditions": [{"type": "Complete", "status": "True"}]}


def _handler(kube: FakeKube) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        def _send(self, code: int, body: Any) -> None:
            raw = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _route(self, method: str) -> None:
            kube.calls.append((method, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"kind": "Status", "message": "Unauthorized"})
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] == ["api", "v1"] and parts[4:5] == ["services"]:
                store, kind = kube.services, "Service"
            elif parts[:3] == ["apis", "batch", "v1"] and parts[5:6] == ["jobs"]:
                store, kind = kube.jobs, "Job"
                parts = parts[1:]
            elif parts[4:5] == ["pods"]:
                if len(parts) == 5:
                    name = self.path.split("app.kubernetes.io%2Fname%3D")[-1]
                    pods = [] if name not in kube.jobs else [
                        {"metadata": {"name": f"{name}-{i}"}} for i in range(int(kube.jobs[name]["spec"]["completions"]))]
                    return self._send(200, {"kind": "PodList", "items": pods})
                return self._send(200, f"rank {parts[5]}: loss nan at step 7\nTraceback: boom\n")
            else:
                return self._send(404, {"kind": "Status", "message": "no route"})
            name = parts[5] if len(parts) > 5 else None
            if method == "POST":
                name = body["metadata"]["name"]
                if name in store:
                    return self._send(409, {"kind": "Status", "message": f"{kind} {name} already exists"})
                store[name] = body
                return self._send(201, body)
            if name not in store:
                return self._send(404, {"kind": "Status", "message": f"{kind} {name} not found"})
            if method == "DELETE":
                store.pop(name)
                kube.reads.pop(name, None)
                return self._send(200, {"kind": "Status", "status": "Success"})
            obj = dict(store[name])
            if kind == "Job":
                obj["status"] = kube.status(name)
            return self._send(200, obj)

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._route("DELETE")

        def log_message(self, *a: Any) -> None:
            pass

    return H


@contextlib.contextmanager
def kube_api(ticks: int = 2) -> Iterator[FakeKube]:
    kube = FakeKube(ticks)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(kube))
    kube.url = f"http://127.0.0.1:{srv.server_port}"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield kube
    finally:
        srv.shutdown()
        srv.server_close()
