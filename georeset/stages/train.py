"""Train stage: the encoder on a shard snapshot (torchrun here, or a launcher such as a Kubernetes Job).

The run id is ONE formula for every path (CLI, demo, DAGs): it covers the snapshot, the settings, the model
config's contents and the token-embedding version, so a checkpoint made by an older encoder is never reused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.stages import writer
from georeset.stages._base import naive_utc, now
from georeset.stages.export import read_snapshot
from georeset.workspace import Workspace

__all__ = ["training_run_id", "train", "record_run", "train_stage", "code_version"]

Launcher = Callable[..., None]


def code_version() -> str:
    """The package version plus the git commit when run from a checkout (recorded in every `runs` row)."""
    from georeset import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return f"{__version__}+g{sha}"
    except (OSError, subprocess.CalledProcessError):
        return __version__


def training_run_id(*, snapshot_id: str, config: str, nproc: int, steps: int, seed: int = 0, batch_size: int = 16,
                    nnodes: int = 1) -> str:
    """The run id of a training run (the same for the CLI, the demo and the DAGs)."""
    from georeset.models.config import load_config
    from georeset.models.token_embed import TOKEN_EMBEDDING_VERSION

    arch = json.dumps({"config": load_config(config).to_dict(), "tokens": TOKEN_EMBEDDING_VERSION}, sort_keys=True)
    nodes = f"|{nnodes}" if nnodes != 1 else ""
    return hashlib.sha1(
        f"{snapshot_id}|{config}|{nproc}|{steps}|{seed}|{batch_size}|{arch}{nodes}".encode()).hexdigest()[:16]


def train(
    ws: Workspace, *, config: str = "tiny", snapshot_id: str | None = None, nproc: int = 2, nnodes: int = 1,
    steps: int = 60, seed: int = 0, batch_size: int = 16, launcher: Launcher | None = None,
) -> dict[str, Any]:
    """Train on the shard snapshot of the workspace (which must be ``snapshot_id`` when given).

    A finished run with the same id is reused. ``launcher`` is called with ``manifest, out, config, nproc, nnodes,
    steps, batch_size, extra_args`` and must leave ``out/train_summary.json`` and ``out/checkpoint.pt``; without
    one, training runs here under ``torchrun`` (one node).
    """
    manifest = ws.shards_dir / "manifest.json"
    current = read_snapshot(manifest)
    if current is None:
        raise InputError(f"{manifest} is missing or unreadable", hint="run `georeset export` (or build_shards) first")
    if snapshot_id and snapshot_id != current:
        raise InputError(f"shard snapshot {snapshot_id} is not the one in {manifest} ({current})",
                         hint="leave the snapshot Param empty to train on the current one, or re-export it")
    if nnodes != 1 and launcher is None:
        raise InputError(f"nnodes={nnodes} needs the kubernetes launcher", hint="set launcher=kubernetes")
    run_id = training_run_id(snapshot_id=current, config=config, nproc=nproc, steps=steps, seed=seed,
                             batch_size=batch_size, nnodes=nnodes)
    out = ws.runs_dir / run_id
    summary_path, ckpt = out / "train_summary.json", out / "checkpoint.pt"
    base = {"run_id": run_id, "snapshot_id": current, "checkpoint": str(ckpt), "manifest": str(manifest),
            "config": {"config": config, "nproc": nproc, "nnodes": nnodes, "steps": steps, "seed": seed,
                       "batch_size": batch_size}}
    if summary_path.is_file() and ckpt.is_file():
        return {**base, "reused": True, "summary": json.loads(summary_path.read_text())}
    extra = ("--seed", str(seed))
    if launcher is None:
        from georeset.models.launch import run_training

        summary = run_training(manifest=manifest, out=out, config=config, nproc=nproc, steps=steps,
                               batch_size=batch_size, extra_args=extra)
    else:
        launcher(manifest=manifest, out=out, config=config, nproc=nproc, nnodes=nnodes, steps=steps,
                 batch_size=batch_size, extra_args=extra)
        if not summary_path.is_file():
            raise InputError(f"the launcher finished but {summary_path} is missing",
                             hint="the training pods must mount the same data volume as the Airflow workers")
        summary = json.loads(summary_path.read_text())
    return {**base, "reused": False, "summary": dict(summary)}


def record_run(ws: Workspace, run: Mapping[str, Any], *, started_at: dt.datetime) -> None:
    """Upsert the ``runs`` row of a :func:`train` result; ``finished_at`` is when the summary was written, so a
    retried record writes the same row. Metrics already recorded (e.g. an evaluation) are kept."""
    summary_file = Path(run["checkpoint"]).parent / "train_summary.json"
    finished = dt.datetime.fromtimestamp(summary_file.stat().st_mtime, dt.UTC).replace(tzinfo=None, microsecond=0)

    def upsert(con: Any) -> None:
        con.execute(
            "INSERT INTO runs (run_id, kind, snapshot_id, config, code_version, started_at, finished_at, status, "
            "metrics, checkpoint) VALUES (?, 'train', ?, ?, ?, ?, ?, 'finished', ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, "
            "metrics = CASE WHEN runs.metrics IS NULL THEN excluded.metrics ELSE runs.metrics END",
            [run["run_id"], run["snapshot_id"], json.dumps(run["config"], sort_keys=True), code_version(),
             naive_utc(started_at), finished, json.dumps(run["summary"], default=str), str(run["checkpoint"])],
        )

    writer.write(ws, upsert)


def train_stage(
    ws: Workspace, *, config: str = "tiny", nproc: int = 2, steps: int = 60, seed: int = 0, batch_size: int = 16,
) -> dict[str, Any]:
    """Train (or reuse the finished run with the same id) and record the run."""
    started = now()
    run = train(ws, config=config, nproc=nproc, steps=steps, seed=seed, batch_size=batch_size)
    record_run(ws, run, started_at=started)
    return {"run_id": run["run_id"], "snapshot_id": run["snapshot_id"], "reused": run["reused"],
            "checkpoint": run["checkpoint"], **run["summary"]}
