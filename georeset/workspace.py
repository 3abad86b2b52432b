"""Where a run keeps its things: one work directory holds the catalogue, staging, data, shards and runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        """The catalogue handle that ``--db`` and the readers take: names this work directory (the catalogue itself
        is the DuckLake under ``lake/``, see :attr:`lake`); kept under its old name for callers."""
        return self.root / "georeset.duckdb"

    @property
    def lake(self) -> Any:
        """Where the catalogue lake lives (:class:`georeset.data_catalog.lake.LakeSettings`)."""
        from georeset.data_catalog.connect import lake_settings

        return lake_settings(self.root)

    @property
    def index_path(self) -> Path:
        """The derived search index (BM25 + HNSW), rebuilt from a named lake snapshot."""
        return self.root / "index" / "search.duckdb"

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
