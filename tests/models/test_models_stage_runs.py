"""The train stage records every attempt in ``runs`` (failed ones too) and reuses only a complete run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from georeset.data_catalog import open_catalog
from georeset.models.launch import TrainingError
from georeset.stages import train_stage
from georeset.workspace import Workspace


@pytest.mark.slow
def test_failed_attempt_is_recorded_then_the_retry_finishes_and_is_reused(synthetic_manifest: Path,
                                                                          tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path / "w")
    shutil.copytree(synthetic_manifest.parent, ws.shards_dir)
    shard = sorted(ws.shards_dir.glob("shard-*.parquet"))[0]
    good = shard.read_bytes()
    shard.write_bytes(good + b"corrupt")  # rank 0 verifies the shards' sha256 and fails
    with pytest.raises(TrainingError):
        train_stage(ws, nproc=1, steps=2, batch_size=4)

    def runs() -> list[tuple[str, str]]:
        con = open_catalog(str(ws.db_path))
        try:
            return [(str(a), str(b)) for a, b in con.execute("SELECT run_id, status FROM runs").fetchall()]
        finally:
            con.close()

    [(run_id, status)] = runs()
    assert status == "failed"
    shard.write_bytes(good)
    done = train_stage(ws, nproc=1, steps=2, batch_size=4)
    assert done["run_id"] == run_id and done["reused"] is False and done["complete"] is True
    assert runs() == [(run_id, "finished")]
    again = train_stage(ws, nproc=1, steps=2, batch_size=4)
    assert again["reused"] is True and again["step"] == 2
