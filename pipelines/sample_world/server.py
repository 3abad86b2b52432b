"""Serve the sample world's STAC collections with ``rustac serve`` on 127.0.0.1 (a free port)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from georeset.errors import InputError, ServiceUnavailableError

__all__ = ["serve_stac", "rustac_binary", "stac_files"]


def rustac_binary() -> Path:
    """The ``rustac`` executable: next to ``sys.executable`` (the venv), else on PATH."""
    here = Path(sys.executable).parent / "rustac"
    if here.is_file() and os.access(here, os.X_OK):
        return here
    found = shutil.which("rustac")
    if found:
        return Path(found)
    raise ServiceUnavailableError(
        "cannot find the `rustac` executable (the rustac package's CLI)",
        hint="install the pinned dependencies (pip install rustac==0.9.17) into the environment running GEO-ReSeT",
    )


def stac_files(stac_dir: Path) -> list[Path]:
    """``*/collection.json`` files first, then the ``*/items.json`` FeatureCollections."""
    stac_dir = Path(stac_dir)
    colls = sorted(stac_dir.glob("*/collection.json"))
    items = sorted(stac_dir.glob("*/items.json"))
    if not colls or not items:
        raise InputError(
            f"no STAC collections to serve in {stac_dir} (expected <collection>/collection.json and items.json)",
            hint="build the sample world first: georeset.pipelines.sample_world.build_sample_world(root)",
        )
    return colls + items


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:  # noqa: S310 - loopback only
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
    else:  # leader gone; make sure no child of the group survives
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def serve_stac(stac_dir: Path, *, timeout: float = 30.0, attempts: int = 3) -> Iterator[str]:
    """Start ``rustac serve`` over ``stac_dir`` on 127.0.0.1 and yield its URL; always stop it on exit."""
    files = stac_files(stac_dir)
    exe = rustac_binary()
    last_err = ""
    for _ in range(attempts):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [str(exe), "serve", "--addr", f"127.0.0.1:{port}", *map(str, files)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we can stop it and any children together
        )
        try:
            deadline = time.monotonic() + timeout
            up = False
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if _answers(url + "/"):
                    up = True
                    break
                time.sleep(0.05)
            if not up:
                _stop(proc)
                log.seek(0)
                last_err = log.read().decode(errors="replace")[-2000:]
                if proc.returncode is not None and "in use" in last_err.lower():
                    continue  # port race: try another one
                raise ServiceUnavailableError(
                    f"`rustac serve` did not answer at {url}/ within {timeout:.0f} s "
                    f"(exit code {proc.returncode}); output:\n{last_err}",
                    hint=f"check the STAC files in {stac_dir} (rebuild the sample world) and that rustac runs: "
                    f"{exe} --help",
                )
            try:
                yield url
            finally:
                _stop(proc)
            return
        finally:
            if proc.poll() is None:
                _stop(proc)
            log.close()
    raise ServiceUnavailableError(
        f"`rustac serve` could not bind a free port on 127.0.0.1 after {attempts} tries:\n{last_err}",
        hint="free some local ports or retry",
    )
