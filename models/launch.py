"""Run training under ``torchrun`` from Python (what ``georeset train``, the demo and the Airflow task call).

- **Resume by default.** :func:`run_training` passes ``--resume auto``: a run folder that holds the checkpoint of
  an interrupted or failed attempt (a killed demo, an Airflow retry, a replaced Kubernetes Job) continues from its
  last checkpoint; ``resume=False`` starts afresh (the old checkpoint and metrics are removed first).
- **Finished means finished.** :func:`finished_run` accepts a run folder only when its summary and its
  checkpoint both say ``complete`` (the run reached its ``--steps``); an interrupted checkpoint is never reused as
  a finished run.
- **No orphans.** torchrun runs in its own process group; when the caller is interrupted (Ctrl-C, SIGTERM, an
  exception) the whole group is terminated (SIGTERM, then SIGKILL after a grace period), and on Linux torchrun gets
  SIGTERM when its parent dies, even by SIGKILL (its workers do the same towards torchrun).
- :class:`TrainingInterrupted` (exit status :data:`~georeset.models.train.EXIT_INTERRUPTED`) and
  :class:`TrainingError` (any other failure) name the log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import georeset
from georeset.errors import GeoResetError
from georeset.models.config import load_config
from georeset.models.data import read_manifest

__all__ = ["EXIT_INTERRUPTED", "TrainingError", "TrainingInterrupted", "die_with_parent", "finished_run",
           "torchrun_command", "run_training"]

EXIT_INTERRUPTED = 3  # exit status of georeset.models.train when it stopped before --steps
_GRACE_S = 30.0


class TrainingError(GeoResetError):
    """The training subprocess failed; the message names its log."""


class TrainingInterrupted(TrainingError):
    """Training stopped before its last step (signal or kill); its last checkpoint can be resumed."""


def finished_run(out: Path, *, steps: int | None = None) -> dict[str, Any] | None:
    """The summary of a run folder whose training is complete (summary and checkpoint agree), else None."""
    out = Path(out)
    summary_path, ckpt = out / "train_summary.json", out / "checkpoint.pt"
    if not (summary_path.is_file() and ckpt.is_file()):
        return None
    try:
        summary: dict[str, Any] = json.loads(summary_path.read_text())
    except ValueError:
        return None
    if not summary.get("complete") or summary.get("interrupted") or (steps is not None and summary.get("step") != steps):
        return None
    import torch

    try:
        meta = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
    except (OSError, RuntimeError, EOFError):
        return None
    if not (isinstance(meta, dict) and meta.get("complete") and meta.get("step") == summary.get("step")):
        return None
    return summary


def torchrun_command(*, manifest: Path, out: Path, config: str = "tiny", nproc: int = 2, steps: int = 20,
                     batch_size: int = 16, extra_args: Sequence[str] = (), resume: bool = True,
                     save_every: int | None = None, lr: float | None = None) -> list[str]:
    """The ``python -m torch.distributed.run ...`` command line that :func:`run_training` executes."""
    flags = [*(["--resume", "auto"] if resume else []),
             "--save-every", str(save_every if save_every is not None else max(1, steps // 10)),
             *(["--lr", repr(float(lr))] if lr is not None else [])]
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
        "-m", "georeset.models.train", "--config", config, "--manifest", str(manifest), "--out", str(out),
        "--steps", str(steps), "--batch-size", str(batch_size), *flags, *extra_args,
    ]


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux ``PR_SET_PDEATHSIG``; no-op
    elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig), 0, 0, 0)  # 1 == PR_SET_PDEATHSIG
    except OSError:
        pass


def _preexec() -> None:  # runs in the child between fork and exec
    die_with_parent()


def _terminate(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the process group (torchrun forwards it to its workers), SIGKILL after the grace period."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, _GRACE_S), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while training runs, so the caller's cleanup runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_training(*, manifest: Path, out: Path, config: str = "tiny", nproc: int = 2, steps: int = 20,
                 batch_size: int = 16, extra_args: Sequence[str] = (), stream: bool = True, resume: bool = True,
                 save_every: int | None = None, lr: float | None = None) -> dict[str, Any]:
    """Train with ``nproc`` local processes; output is streamed and appended to ``out/train.log``.

    ``resume`` continues from ``out/checkpoint.pt`` when there is one (``--resume auto``); ``save_every``
    checkpoints every N steps (default: every ``max(1, steps // 10)``); ``lr`` overrides the config's. Returns the
    parsed ``out/train_summary.json``; raises :class:`~georeset.errors.InputError` for a missing manifest or
    config, :class:`TrainingInterrupted` when training stopped early, :class:`TrainingError` naming the log when
    the processes fail.
    """
    read_manifest(Path(manifest))  # fail fast, before starting processes, on a missing or foreign manifest
    load_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        for stale in ("checkpoint.pt", "metrics.jsonl"):
            (out / stale).unlink(missing_ok=True)
    log_path = out / "train.log"
    cmd = torchrun_command(manifest=manifest, out=out, config=config, nproc=nproc, steps=steps,
                           batch_size=batch_size, extra_args=extra_args, resume=resume, save_every=save_every, lr=lr)
    env = dict(os.environ)
    repo_root = str(Path(georeset.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, nproc))))
    summary_path = out / "train_summary.json"
    summary_path.unlink(missing_ok=True)
    with log_path.open("a") as log, _sigterm_as_interrupt():
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True, preexec_fn=_preexec)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if stream:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            rc = proc.wait()
        except BaseException:
            _terminate(proc)
            raise
    tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
    if rc == EXIT_INTERRUPTED:
        raise TrainingInterrupted(
            f"training stopped before step {steps}; its last checkpoint is {out / 'checkpoint.pt'}; full log: "
            f"{log_path}\n--- last lines ---\n{tail}",
            hint="run the same command again (it resumes from the last checkpoint)",
        )
    if rc != 0 or not summary_path.is_file():
        raise TrainingError(
            f"training failed (exit code {rc}); full log: {log_path}\n--- last lines ---\n{tail}",
            hint=f"read {log_path}; re-run the command at its top with --nproc_per_node 1 to debug",
        )
    result: dict[str, Any] = json.loads(summary_path.read_text())
    return result
