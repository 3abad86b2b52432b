"""One tiny sample world per test session (builds in a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from georeset.pipelines.sample_world import SampleWorld, build_sample_world


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    root: Path = tmp_path_factory.mktemp("sample_world") / "tiny"
    return build_sample_world(root, seed=0, scale="tiny", progress=False)
