"""Durable progress of one Wikipedia harvest, so an interrupted harvest resumes where it stopped.

Layout, under ``<state_dir>/<harvest key>/``:

- ``journal.jsonl``: the run in progress, one JSON record a line, appended and fsynced after every step
  (a geosearch tile done with its hits and split children, a batch of revision ids checked, a batch of pages
  staged). An append-only journal costs O(1) a step, where rewriting one state file after every tile would cost
  O(pages found) a step and grow quadratic on a country. A last line cut short by a crash is dropped on load.
- ``revisions.json``: written atomically when a run completes: page id -> ``lastrevid`` of every page harvested so
  far (which makes the next run incremental) and the number of completed runs. The journal is removed after it;
  a journal whose run number is already counted as completed is stale and dropped on load.

The harvest key hashes what defines the result (endpoint, language, area, tile radius, limits), so a different
area or language never picks up another harvest's progress.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.fileio import atomic_write_bytes

__all__ = ["FORMAT", "HarvestProgress", "harvest_key"]

FORMAT = "georeset-wikipedia-harvest/1"
TileBox = tuple[float, float, float, float]


def harvest_key(params: Mapping[str, Any]) -> str:
    """A short, stable id of a harvest's defining parameters."""
    blob = json.dumps(dict(params), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class HarvestProgress:
    """What a harvest has done so far; ``directory=None`` keeps it in memory only (nothing resumable).

    Public state: ``pending`` (tiles still to search, a queue), ``tiles_done``, ``found`` (page id -> geosearch
    hit, in discovery order), ``checked`` (page id -> current ``lastrevid`` from ``prop=info``), ``fetched``
    (page id -> ``lastrevid`` of the pages staged this run), ``batches`` (staged batches this run), ``known``
    (page id -> ``lastrevid`` from completed runs), ``run`` (number of this run, from 1), ``resumed``.
    """

    def __init__(self, directory: Path | None, *, params: Mapping[str, Any]) -> None:
        self.params = dict(params)
        self.key = harvest_key(self.params)
        self.dir = Path(directory) / self.key if directory is not None else None
        self.pending: deque[TileBox] | None = None
        self.tiles_done: set[TileBox] = set()
        self.found: dict[int, dict[str, Any]] = {}
        self.checked: dict[int, int | None] = {}
        self.fetched: dict[int, int | None] = {}
        self.batches = 0
        self.known: dict[int, int | None] = {}
        self.run = 1
        self.resumed = False
        if self.dir is not None:
            self._load()

    # -- files -------------------------------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path | None:
        return self.dir / "journal.jsonl" if self.dir else None

    @property
    def revisions_path(self) -> Path | None:
        return self.dir / "revisions.json" if self.dir else None

    def _load(self) -> None:
        assert self.revisions_path is not None and self.journal_path is not None
        if self.revisions_path.exists():
            try:
                saved = json.loads(self.revisions_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise InputError(f"harvest state {self.revisions_path} is corrupt: {exc}",
                                 hint="delete that file to harvest the area again from scratch") from exc
            if saved.get("format") != FORMAT:
                raise InputError(f"harvest state {self.revisions_path} has format {saved.get('format')!r}",
                                 hint=f"expected {FORMAT}; delete the file to start over")
            self.known = {int(k): v for k, v in saved.get("pages", {}).items()}
            self.run = int(saved.get("runs_completed", 0)) + 1
        if not self.journal_path.exists():
            return
        raw = self.journal_path.read_bytes()
        lines = raw.split(b"\n")
        good: list[dict[str, Any]] = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                good.append(json.loads(line))
            except ValueError:
                if i < len(lines) - 1 and any(x.strip() for x in lines[i + 1:]):
                    raise InputError(f"harvest journal {self.journal_path} is corrupt at line {i + 1}",
                                     hint="delete the file to restart this run (staged rows are kept)") from None
        if good and good[0].get("t") == "start" and int(good[0]["run"]) < self.run:
            self.journal_path.unlink()  # stopped between saving the revisions and removing the journal: run over
            return
        clean = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in good)
        if clean != raw:  # drop a torn last line before appending after it
            atomic_write_bytes(self.journal_path, clean)
        for rec in good:
            self._apply(rec)
        self.resumed = bool(good)

    def _apply(self, rec: dict[str, Any]) -> None:
        kind = rec.get("t")
        if kind == "start":
            self.run = int(rec["run"])
        elif kind == "plan":
            self.pending = deque(tuple(t) for t in rec["tiles"])  # type: ignore[misc]
        elif kind == "tile":
            tile: TileBox = tuple(rec["tile"])  # type: ignore[assignment]
            if self.pending is not None and tile in self.pending:
                self.pending.remove(tile)
            self.tiles_done.add(tile)
            for pid, title, lat, lon in rec["hits"]:
                self.found.setdefault(int(pid), {"pageid": int(pid), "title": title, "lat": lat, "lon": lon})
            if self.pending is not None:
                self.pending.extend(tuple(t) for t in rec["split"])  # type: ignore[misc]
        elif kind == "revs":
            self.checked.update({int(k): v for k, v in rec["revs"].items()})
        elif kind == "batch":
            self.fetched.update({int(k): v for k, v in rec["pages"].items()})
            self.batches = max(self.batches, int(rec["n"]) + 1)

    def _append(self, rec: dict[str, Any]) -> None:
        self._apply(rec)
        if self.journal_path is None:
            return
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.journal_path.exists() and rec.get("t") != "start":
            self._append({"t": "start", "run": self.run, "format": FORMAT, "params": self.params,
                          "started_at": datetime.now(UTC).isoformat()})
        with open(self.journal_path, "ab") as fh:
            fh.write(json.dumps(rec, separators=(",", ":"), default=str).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    # -- steps -------------------------------------------------------------------------------------------------
    def plan(self, tiles: Iterable[TileBox]) -> None:
        """Record the initial tiles (once per run)."""
        self._append({"t": "plan", "tiles": [list(t) for t in tiles]})

    def tile_done(self, tile: TileBox, hits: Iterable[dict[str, Any]], split: Iterable[TileBox]) -> None:
        """A tile was searched: its kept hits and the child tiles that replace it when it came back full."""
        self._append({"t": "tile", "tile": list(tile),
                      "hits": [[int(h["pageid"]), h.get("title"), h.get("lat"), h.get("lon")] for h in hits],
                      "split": [list(t) for t in split]})

    def revisions_checked(self, revs: Mapping[int, int | None]) -> None:
        self._append({"t": "revs", "revs": {str(k): v for k, v in revs.items()}})

    def batch_staged(self, pages: Mapping[int, int | None], *, name: str) -> None:
        self._append({"t": "batch", "n": self.batches, "file": name, "pages": {str(k): v for k, v in pages.items()}})

    def complete(self) -> None:
        """Fold this run into the known revisions (atomic write), then drop the journal."""
        self.known.update(self.checked)
        self.known.update(self.fetched)
        if self.dir is None or self.revisions_path is None or self.journal_path is None:
            return
        doc = {"format": FORMAT, "key": self.key, "params": self.params, "runs_completed": self.run,
               "completed_at": datetime.now(UTC).isoformat(), "pages": {str(k): v for k, v in self.known.items()}}
        atomic_write_bytes(self.revisions_path, json.dumps(doc, sort_keys=True, default=str).encode())
        self.journal_path.unlink(missing_ok=True)
