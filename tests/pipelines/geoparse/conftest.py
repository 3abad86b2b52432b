"""Session-wide gazetteer (cities >= 15000, for speed) and geoparser."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def gazetteer() -> tuple[Any, Any]:
    from georeset.pipelines.geoparse import gazetteer_rows

    return gazetteer_rows(15000)


@pytest.fixture(scope="session")
def geoparser(gazetteer: tuple[Any, Any]) -> Any:
    from georeset.pipelines.geoparse import Geoparser

    return Geoparser.from_rows(*gazetteer)
