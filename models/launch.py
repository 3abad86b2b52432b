"""Run training under ``torchrun`` from Python (what ``georeset train`` and the demo call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import georeset
from georeset.errors import GeoResetError
from georeset.models.config import load_config
from georeset.models.data import read_manifest

__all__ = ["TrainingError", "torchrun_command", "run_training"]


class TrainingError(GeoResetError):
    """The training subprocess failed; the message names its log."""


def torchrun_command(*, manifest: Path, out: Path, config: str = "tiny", nproc: int = 2, steps: int = 20,
                     batch_size: int = 16, extra_args: Sequence[str] = ()) -> list[str]:
    """The ``python -m torch.distributed.run ...`` command line that :func:`run_training` executes."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
        "-m", "georeset.models.train", "--config", config, "--manifest", str(manifest), "--out", str(out),
        "--steps", str(steps), "--batch-size", str(batch_size), *extra_args,
    ]


def run_training(*, manifest: Path, out: Path, config: str = "tiny", nproc: int = 2, steps: int = 20,
                 batch_size: int = 16, extra_args: Sequence[str] = (), stream: bool = True) -> dict[str, Any]:
    """Train with ``nproc`` local processes; output is streamed and kept in ``out/train.log``.

    Returns the parsed ``out/train_summary.json``; raises :class:`~georeset.errors.InputError` for a missing
    manifest or config, and :class:`TrainingError` naming the log when the processes fail.
    """
    read_manifest(Path(manifest))  # fail fast, before starting processes, on a missing or foreign manifest
    load_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train.log"
    cmd = torchrun_command(manifest=manifest, out=out, config=config, nproc=nproc, steps=steps,
                           batch_size=batch_size, extra_args=extra_args)
    env = dict(os.environ)
    repo_root = str(Path(georeset.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, nproc))))
    summary_path = out / "train_summary.json"
    summary_path.unlink(missing_ok=True)
    with log_path.open("w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if stream:
                sys.stdout.write(line)
                sys.stdout.flush()
        rc = proc.wait()
    if rc != 0 or not summary_path.is_file():
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise TrainingError(
            f"training failed (exit code {rc}); full log: {log_path}\n--- last lines ---\n{tail}",
            hint=f"read {log_path}; re-run the command at its top with --nproc_per_node 1 to debug",
        )
    result: dict[str, Any] = json.loads(summary_path.read_text())
    return result
