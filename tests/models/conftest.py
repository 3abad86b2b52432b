"""Fixtures of the model tests: tiny synthetic shards and one torchrun training run shared by several tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shard_factory import write_synthetic_shards  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="session")
def trained_run(synthetic_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``run_training(nproc=2, steps=3)`` under real torchrun (gloo), keeping a checkpoint per step (for the resume
    test); returns the summary plus ``out``."""
    from georeset.models.launch import run_training

    out = tmp_path_factory.mktemp("run")
    summary = run_training(manifest=synthetic_manifest, out=out, config="tiny", nproc=2, steps=3, batch_size=8,
                           stream=False, extra_args=("--save-every", "1", "--keep-checkpoints"))
    return {**summary, "out": out}
