"""Test-wide set-up: no socket may leave the loopback interface; offline model hubs; a private Airflow home."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
SHARED_DATA = SHARED / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


class NetworkBlocked(RuntimeError):
    """Raised when a test tries to reach a non-loopback address."""


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
    elif isinstance(address, str | bytes):  # AF_UNIX path
        return True
    else:
        return False
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkBlocked(f"test tried to open a non-loopback socket to {address!r}")
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkBlocked(f"test tried to open a non-loopback socket to {address!r}")
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def _block_network() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def _lake_backend() -> Iterator[None]:
    """GEORESET_TEST_LAKE=pg-s3 runs every test on PostgreSQL metadata + S3 data (servers started once on 127.0.0.1,
    a schema and a prefix per workdir; tests/data_catalog/lake_servers.py); unset or embedded: the default."""
    kind = os.environ.get("GEORESET_TEST_LAKE", "embedded")
    if kind == "embedded":
        yield
        return
    import sys

    sys.path.insert(0, str(REPO / "tests" / "data_catalog"))
    from lake_servers import require_servers, test_lake_env

    require_servers()
    with test_lake_env(kind) as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=f"{SHARED_DATA} is absent (real-data tests need ../shared next to the repo)")
    for item in items:
        if "shared" in item.keywords and not SHARED_DATA.exists():
            item.add_marker(skip)
