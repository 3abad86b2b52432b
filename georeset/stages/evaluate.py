"""Evaluate stage: recall@k both ways on the held-out split, plus zero-shot land cover where the sample world
gives labels; written next to the checkpoint and into the run's ``metrics``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.fileio import atomic_write_bytes
from georeset.stages import writer
from georeset.workspace import Workspace

__all__ = ["latest_run", "evaluate_run", "record_evaluation", "evaluate_stage"]


def latest_run(ws: Workspace) -> str:
    """The most recently finished training run under ``<workdir>/runs``."""
    done = sorted(ws.runs_dir.glob("*/train_summary.json"), key=lambda f: (f.stat().st_mtime, f.parent.name))
    if not done:
        raise InputError(f"no finished training run under {ws.runs_dir}",
                         hint="train first (georeset train / train_encoder), or name the run id")
    return done[-1].parent.name


def evaluate_run(ws: Workspace, *, run_id: str, checkpoint: Path | str | None = None) -> dict[str, Any]:
    """Metrics of the run's checkpoint on the workspace's shards; also written to ``runs/<id>/evaluation.json``."""
    from georeset.models.evaluate import evaluate

    ckpt = Path(checkpoint) if checkpoint is not None else ws.runs_dir / run_id / "checkpoint.pt"
    if not ckpt.is_file():
        raise InputError(f"{ckpt} does not exist", hint="train first (georeset train) or check the run id")
    world = ws.world_dir if (ws.world_dir / "world.json").exists() else None  # zero-shot land-cover labels
    metrics = dict(evaluate(checkpoint=ckpt, manifest=ws.shards_dir / "manifest.json", world=world,
                            variance=True))
    atomic_write_bytes(ckpt.parent / "evaluation.json", json.dumps(metrics, indent=1, default=str).encode())
    return metrics


def record_evaluation(ws: Workspace, *, run_id: str, metrics: Mapping[str, Any]) -> None:
    """Store ``metrics`` under ``evaluation`` in the run's ``metrics``."""

    def update(con: Any) -> None:
        row = con.execute("SELECT metrics FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise InputError(f"no run {run_id!r} in the catalogue", hint="record the training run first")
        merged = json.loads(row[0]) if row[0] else {}
        merged["evaluation"] = dict(metrics)
        con.execute("UPDATE runs SET metrics = ? WHERE run_id = ?", [json.dumps(merged, default=str), run_id])

    writer.write(ws, update)


def evaluate_stage(ws: Workspace, *, run_id: str | None = None, checkpoint: Path | str | None = None
                   ) -> dict[str, Any]:
    """Evaluate the run (default: the latest) and record the metrics."""
    rid = run_id or latest_run(ws)
    metrics = evaluate_run(ws, run_id=rid, checkpoint=checkpoint)
    record_evaluation(ws, run_id=rid, metrics=metrics)
    return metrics
