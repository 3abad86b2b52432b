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
from georeset.stages._base import now
from georeset.stages.export import read_snapshot
from georeset.timeutil import naive_utc
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
                    nnodes: int = 1, lr: float | None = None) -> str:
    """The run id of a training run (the same for the CLI, the demo and the DAGs); it covers the band registry
    version too, so a checkpoint of another registry is never reused."""
    from georeset.bands import BAND_REGISTRY_VERSION
    from georeset.models.config import load_config
    from georeset.models.token_embed import TOKEN_EMBEDDING_VERSION

    arch = json.dumps({"config": load_config(config).to_dict(), "tokens": TOKEN_EMBEDDING_VERSION,
                       "bands": BAND_REGISTRY_VERSION}, sort_keys=True)
    nodes = f"|{nnodes}" if nnodes != 1 else ""
    lr_key = f"|lr={lr!r}" if lr is not None else ""
    return hashlib.sha1(
        f"{snapshot_id}|{config}|{nproc}|{steps}|{seed}|{batch_size}|{arch}{nodes}{lr_key}".encode()).hexdigest()[:16]


def train(
    ws: Workspace, *, config: str = "tiny", snapshot_id: str | None = None, nproc: int = 2, nnodes: int = 1,
    steps: int = 60, seed: int = 0, batch_size: int = 16, launcher: Launcher | None = None, resume: bool = True,
    save_every: int | None = None, lr: float | None = None,
) -> dict[str, Any]:
    """Train on the shard snapshot of the workspace (which must be ``snapshot_id`` when given).

    A finished run with the same id is reused (only a *complete* one: :func:`georeset.models.launch.finished_run`);
    an interrupted or failed attempt is continued from its last checkpoint when ``resume`` (an Airflow retry, a
    re-run after a kill). ``launcher`` is called with ``manifest, out, config, nproc, nnodes,
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
                             batch_size=batch_size, nnodes=nnodes, lr=lr)
    out = ws.runs_dir / run_id
    summary_path, ckpt = out / "train_summary.json", out / "checkpoint.pt"
    base = {"run_id": run_id, "snapshot_id": current, "checkpoint": str(ckpt), "manifest": str(manifest),
            "config": {"config": config, "nproc": nproc, "nnodes": nnodes, "steps": steps, "seed": seed,
                       "batch_size": batch_size, **({"lr": lr} if lr is not None else {})}}
    from georeset.models.launch import finished_run

    done = finished_run(out, steps=steps)  # an interrupted attempt's checkpoint is resumed, never reused
    if done is not None:
        return {**base, "reused": True, "summary": done}
    extra = ("--seed", str(seed), *(["--lr", repr(float(lr))] if lr is not None else []),
             "--save-every", str(save_every if save_every is not None else max(1, steps // 10)))
    if launcher is None:
        from georeset.models.launch import run_training

        summary = run_training(manifest=manifest, out=out, config=config, nproc=nproc, steps=steps,
                               batch_size=batch_size, extra_args=extra, resume=resume)
    else:
        launcher(manifest=manifest, out=out, config=config, nproc=nproc, nnodes=nnodes, steps=steps,
                 batch_size=batch_size, extra_args=extra)
        if not summary_path.is_file():
            raise InputError(f"the launcher finished but {summary_path} is missing",
                             hint="the training pods must mount the same data volume as the Airflow workers")
        summary = json.loads(summary_path.read_text())
    return {**base, "reused": False, "summary": dict(summary)}


def _lake_snapshot_of(ws: Workspace) -> int | None:
    """The DuckLake snapshot the workspace's shards were exported at (their manifest's ``lake_snapshot_id``)."""
    try:
        value = json.loads((ws.shards_dir / "manifest.json").read_text()).get("lake_snapshot_id")
    except (OSError, ValueError):
        return None
    return int(value) if value is not None else None


def record_run(ws: Workspace, run: Mapping[str, Any], *, started_at: dt.datetime, status: str = "finished") -> None:
    """Upsert the ``runs`` row of a :func:`train` result; ``finished_at`` is when the summary was written, so a
    retried record writes the same row. Metrics already recorded (e.g. an evaluation) are kept, except that a
    finished run replaces the error of an earlier failed or interrupted attempt. ``status``: ``finished``,
    ``interrupted`` or ``failed`` (then ``run["summary"]`` holds the error)."""
    summary_file = Path(run["checkpoint"]).parent / "train_summary.json"
    if status == "finished":
        finished = dt.datetime.fromtimestamp(summary_file.stat().st_mtime, dt.UTC).replace(tzinfo=None, microsecond=0)
    else:
        finished = naive_utc(now())

    metrics = dict(run["summary"])
    lake_snap = _lake_snapshot_of(ws)
    if lake_snap is not None:
        metrics.setdefault("lake_snapshot_id", lake_snap)  # the lineage: the shards' rows AT (VERSION => id)

    def upsert(con: Any) -> None:  # DuckLake has no ON CONFLICT: the run row is replaced in the one transaction
        old = con.execute("SELECT started_at, metrics, status FROM runs WHERE run_id = ?", [run["run_id"]]).fetchone()
        new_metrics = json.dumps(metrics, default=str)
        started = naive_utc(started_at)
        if old is not None:
            started = old[0] if old[0] is not None else started
            if old[1] is not None and old[2] == "finished":
                new_metrics = old[1]
            con.execute("DELETE FROM runs WHERE run_id = ?", [run["run_id"]])
        con.execute(
            "INSERT INTO runs (run_id, kind, snapshot_id, config, code_version, started_at, finished_at, status, "
            "metrics, checkpoint) VALUES (?, 'train', ?, ?, ?, ?, ?, ?, ?, ?)",
            [run["run_id"], run["snapshot_id"], json.dumps(run["config"], sort_keys=True), code_version(),
             started, finished, status, new_metrics, str(run["checkpoint"])],
        )

    writer.write(ws, upsert)


def train_stage(
    ws: Workspace, *, config: str = "tiny", nproc: int = 2, steps: int = 60, seed: int = 0, batch_size: int = 16,
    resume: bool = True, save_every: int | None = None, lr: float | None = None,
) -> dict[str, Any]:
    """Train (or reuse the finished run with the same id, or continue an interrupted one) and record the run; an
    attempt that fails or is interrupted is recorded too, with its status, before the error propagates."""
    from georeset.models.launch import TrainingError, TrainingInterrupted

    started = now()
    try:
        run = train(ws, config=config, nproc=nproc, steps=steps, seed=seed, batch_size=batch_size, resume=resume,
                    save_every=save_every, lr=lr)
    except (TrainingError, KeyboardInterrupt) as exc:
        manifest = ws.shards_dir / "manifest.json"
        snapshot = read_snapshot(manifest) or ""
        run_id = training_run_id(snapshot_id=snapshot, config=config, nproc=nproc, steps=steps, seed=seed,
                                 batch_size=batch_size, lr=lr)
        status = "interrupted" if isinstance(exc, TrainingInterrupted | KeyboardInterrupt) else "failed"
        failed = {"run_id": run_id, "snapshot_id": snapshot, "checkpoint": str(ws.runs_dir / run_id / "checkpoint.pt"),
                  "config": {"config": config, "nproc": nproc, "nnodes": 1, "steps": steps, "seed": seed,
                             "batch_size": batch_size, **({"lr": lr} if lr is not None else {})},
                  "summary": {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}}
        record_run(ws, failed, started_at=started, status=status)
        raise
    record_run(ws, run, started_at=started)
    return {"run_id": run["run_id"], "snapshot_id": run["snapshot_id"], "reused": run["reused"],
            "checkpoint": run["checkpoint"], **run["summary"]}
