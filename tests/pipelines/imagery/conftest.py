"""Fixtures: a tiny simulated S2/S1 world as COGs + STAC items, served by ``rustac serve`` on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from imagery_fixture_world import write_fixture_world  # noqa: E402
from stac_server import serve  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"


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
