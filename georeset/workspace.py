"""Where a run keeps its things: one work directory holds the catalogue, staging, data, shards and runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Workspace"]


@dataclass(frozen=True)
class Workspace:
    """Paths under one work directory. Every stage reads and writes only here, so any stage can be re-run alone."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Workspace:
        ws = cls(Path(root).expanduser().resolve())
        for d in (ws.root, ws.staging_dir, ws.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        return ws

    @property
    def db_path(self) -> Path:
        return self.root / "georeset.duckdb"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def world_dir(self) -> Path:
        return self.root / "world"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def report_path(self) -> Path:
        return self.root / "report.md"
