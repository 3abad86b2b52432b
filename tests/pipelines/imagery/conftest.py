"""Fixtures: a tiny simulated S2/S1 world as COGs + STAC items, served by ``rustac serve`` on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from imagery_fixture_world import write_fixture_world  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"


def _rustac() -> str:
    exe = Path(sys.executable).parent / "rustac"
    return str(exe) if exe.exists() else (shutil.which("rustac") or "rustac")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(paths: list[Path]) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [_rustac(), "serve", "--addr", f"127.0.0.1:{port}", *map(str, paths)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"rustac serve did not start: {err}") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def fixture_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_fixture_world(tmp_path_factory.mktemp("imagery_world"))


@pytest.fixture(scope="session")
def stac_url(fixture_world: dict[str, Any]) -> Iterator[str]:
    with serve(fixture_world["serve_paths"]) as url:
        yield url


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.resolve().is_dir():
        pytest.skip("../shared is absent")
    return SHARED.resolve()
