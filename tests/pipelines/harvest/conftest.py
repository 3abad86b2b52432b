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
